"""Input-space backdoor detection for image patch triggers: reconstruct the trigger, then exclude its carriers.

The feature-space detectors (spectral signatures, activation clustering) need the poison to form its own
cluster in the penultimate features; a handful of poisoned copies often does not. This detector works on
the INPUTS and the trained model instead, in the spirit of Neural Cleanse (Wang et al., 'Neural Cleanse:
Identifying and Mitigating Backdoor Attacks in Neural Networks', IEEE S&P 2019: a backdoored class is one
reachable from other classes through an abnormally small input region) followed by exclusionary
reclassification (Chen et al. 2018: a poisoned sample leaves its labelled class once the trigger is
taken away). See :func:`detect_patch_triggers`.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from evaluations.engine.common import (
    CancelCheck,
    EmptyDatasetError,
    InvalidConfigError,
    ProgressCallback,
    ShapeMismatchError,
    library_versions,
    resolve_device,
    sha256_arrays,
)
from evaluations.engine.datasets.base import Dataset
from evaluations.engine.models.classifier import TorchClassifier
from evaluations.engine.poisoning._runner import check_seed
from evaluations.engine.poisoning.errors import DetectionCancelled
from evaluations.engine.poisoning.recipe import module_sha256
from evaluations.engine.poisoning.results import ClassDecision, DetectionResult, detection_metrics

__all__ = ["InputSpaceConfig", "detect_patch_triggers", "excluded_fraction"]

METHOD = "patch_trigger"


@dataclass(frozen=True)
class InputSpaceConfig:
    """Settings of :func:`detect_patch_triggers`.

    Attributes:
        window_sizes: square window sides (pixels) scanned as trigger candidates.
        max_area_fraction: windows covering more than this fraction of the image are skipped. A trigger is
            a small part of the input (the Neural Cleanse premise); on 8x8 digits 0.07 keeps windows of at
            most 4 pixels, because a 3x3 window (14% of the image) already rewrites strokes and turns 5s
            into 9s on clean models.
        tolerance: a sample carries a reconstructed pattern when every pixel of its window is within
            this many input units of it (a fraction of the input range is typical: 0.1 of [0, 1]).
        min_transfer: a candidate is a trigger only if pasting it onto clean, correctly classified
            samples of its source class sends at least this fraction of them to the target class. On the
            digits benchmark's models (3 seeds, 0-33% poison) planted 4-pixel triggers transferred at
            0.93-1.00 and the best natural look-alike window at 0.73; 0.8 sits between with room both sides.
        min_members: ... and at least this many training samples of the target class carry it AND leave
            the class when it is taken away. A backdoor needs several poisoned copies to be learned; on
            clean digits models, look-alike groups that also transfer held at most 2 such samples.
        min_excluded: ... and at least this fraction of its members must be excluded from the target
            class once the window is ignored: their ``neighbours`` nearest training samples (Euclidean over
            the other pixels, members left out) mostly carry another label. Poisoned copies look like their
            source class apart from the trigger (1.0 of them on the benchmark); clean samples whose
            class hinges on a few pixels (5s vs 9s on 8x8 digits) still look like their class (0.0-0.33).
        min_purity: ... and at least this fraction of the target-class samples carrying the pattern must
            leave the class without it: a planted trigger explains every sample that carries it (0.86-1.0
            on the digits checks), while a natural look-alike, such as the blank left edge that separates
            a 3 from a 5, is carried by most of the class and matters to few of them (0.12).
        neighbours: nearest neighbours that vote in that test.
        max_transfer_samples: source samples a candidate is pasted onto (a seeded draw) at most.
        batch_size: samples per forward pass.
    """

    window_sizes: tuple[int, ...] = (1, 2, 3)
    max_area_fraction: float = 0.07
    tolerance: float = 0.1
    min_transfer: float = 0.8
    min_members: int = 5
    max_transfer_samples: int = 256
    min_excluded: float = 0.5
    min_purity: float = 0.5
    neighbours: int = 5
    batch_size: int = 2048

    def __post_init__(self) -> None:
        sizes = tuple(self.window_sizes) if isinstance(self.window_sizes, list | tuple) else None
        if not sizes or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in sizes):
            raise InvalidConfigError(
                f"window_sizes must be a non-empty sequence of integers >= 1 (pixels); got {self.window_sizes!r}."
            )
        object.__setattr__(self, "window_sizes", tuple(sorted(set(sizes))))
        for name, upper in (
            ("max_area_fraction", 1.0),
            ("min_transfer", 1.0),
            ("min_excluded", 1.0),
            ("min_purity", 1.0),
        ):
            value = getattr(self, name)
            if not _real(value) or not 0 < value <= upper:
                raise InvalidConfigError(f"{name} must be a number in (0, {upper:g}]; got {value!r}.")
        if not _real(self.tolerance) or self.tolerance < 0:
            raise InvalidConfigError(f"tolerance must be a finite number >= 0 (input units); got {self.tolerance!r}.")
        for name in ("min_members", "max_transfer_samples", "neighbours", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(f"{name} must be an integer >= 1; got {value!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "window_sizes": list(self.window_sizes)}


def _real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


@dataclass
class _Candidate:
    target: int
    source: int
    size: int
    row: int
    col: int
    pattern: Tensor
    members: np.ndarray
    transfer: float | None = None
    excluded: float | None = None
    purity: float = 0.0
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def n_members(self) -> int:
        return int(self.members.sum())


def _predict(module: nn.Module, x: Tensor, batch_size: int, device: torch.device) -> Tensor:
    out = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            out.append(module(x[start : start + batch_size].to(device)).argmax(dim=1).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


def _where(row: int, col: int, size: int, height: int, width: int) -> str:
    vertical = "top" if row + size / 2 <= height / 3 else "bottom" if row + size / 2 >= 2 * height / 3 else "middle"
    horizontal = "left" if col + size / 2 <= width / 3 else "right" if col + size / 2 >= 2 * width / 3 else "centre"
    if vertical == "middle" and horizontal == "centre":
        return "centre"
    if vertical == "middle":
        return f"middle-{horizontal} edge" if horizontal != "centre" else "centre"
    if horizontal == "centre":
        return f"{vertical} edge"
    return f"{vertical}-{horizontal} corner"


def detect_patch_triggers(
    model: nn.Module | TorchClassifier,
    data: Dataset,
    config: InputSpaceConfig | None = None,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    poison_indices: np.ndarray | Sequence[int] | None = None,
    sample_ids: Sequence[Any] | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> DetectionResult:
    r"""Find patch (BadNets-style) backdoors in image training data by reconstructing the trigger.

    For images ``x`` ``(N, C, H, W)`` labelled ``y`` and the model trained on them:

    1. **Scan**: every square window (sides ``window_sizes``, area at most ``max_area_fraction`` of the
       image) is filled, in every sample at once, with the per-pixel median training image. Samples the
       model classified as their label that now fall into another class ``s`` form a group ``(t, s, window)``.
    2. **Reconstruct**: the group's median pixels in the window are the candidate trigger pattern ``p``;
       the class-``t`` samples carrying it (every pixel within ``tolerance``) that leave class ``t`` when
       the window is filled are its *members* (exclusionary reclassification of Chen et al. 2018).
    3. **Confirm** (the Neural Cleanse test, per (source, target) pair, so source-specific backdoors count):
       ``p`` pasted at the window onto clean, correctly classified class-``s`` samples must send at least
       ``min_transfer`` of them to ``t`` — a natural feature of ``t`` this small rarely does — and the
       candidate needs ``min_members`` members.
    4. **Exclude** (exclusionary reclassification without retraining): at least ``min_excluded`` of the
       members must, with the window's pixels ignored, have nearest training neighbours (members left
       out) mostly of another class: poisoned copies are source-class images apart from the trigger; and
       at least ``min_purity`` of the class-``t`` samples carrying the pattern must be members.

    A class with a confirmed candidate is flagged, with the members of all its confirmed candidates; the
    best one (most members, then highest transfer) is the reported trigger.

    Clean classes flag nothing: their small-window look-alikes do not transfer, are carried by one or two
    ambiguous samples, or are carried by samples that still look like their own class. Limits: the trigger
    must be a fixed patch no larger than the biggest window and differ from the median image there; blended
    full-image triggers are not found here (``DetectionConfig(images='union')`` adds the feature-space
    detectors for them). Cost: one forward pass over the training set per window (113 windows on 8x8).

    Arguments:
        model: the model trained on ``data`` (``nn.Module`` or :class:`TorchClassifier`), run in eval mode.
        data: float images ``(N, C, H, W)`` and labels (the possibly poisoned training set).
        config: :class:`InputSpaceConfig` (defaults if None).
        seed: seeds the draw of source samples a candidate is pasted onto.
        device: where to run the model (CPU default, or the classifier's device).
        poison_indices, sample_ids: as in :func:`spectral_signatures`.
        progress: called with the fraction done; should_cancel: checked before each window and class,
            raising :class:`DetectionCancelled` holding the classes judged so far.

    Returns:
        :class:`DetectionResult` (``method='patch_trigger'``); each class's statistics hold the trigger's
        window, size, pattern, source class, transfer rate and member count; ``scores`` are 1 for flagged
        samples and, elsewhere, the fraction of the best window's pixels a sample matches.
    """
    started = time.perf_counter()
    config = config or InputSpaceConfig()
    check_seed(seed)
    module = model.module if isinstance(model, TorchClassifier) else model
    if not isinstance(module, nn.Module):
        raise InvalidConfigError(f"model must be a torch nn.Module or TorchClassifier; got {type(model).__name__}.")
    if not isinstance(data, Dataset):
        raise InvalidConfigError(f"data must be an evaluations.engine.datasets.Dataset; got {type(data).__name__}.")
    if len(data) == 0:
        raise EmptyDatasetError("There are no samples to inspect.")
    if data.x.ndim != 4 or not np.issubdtype(data.x.dtype, np.floating):
        raise ShapeMismatchError(
            f"detect_patch_triggers needs float images of shape (N, C, H, W); got {data.x.shape} {data.x.dtype}."
        )
    run_device = resolve_device(device, model.device if isinstance(model, TorchClassifier) else "cpu")
    x = torch.tensor(np.asarray(data.x), dtype=torch.float32)
    y = torch.tensor(np.asarray(data.y), dtype=torch.int64)
    n, channels, height, width = x.shape
    ids = list(range(n)) if sample_ids is None else list(sample_ids)
    if len(ids) != n:
        raise ShapeMismatchError(f"sample_ids has {len(ids)} entries but there are {n} samples.")
    poison = None
    if poison_indices is not None:
        poison = np.unique(np.asarray(poison_indices, dtype=np.int64).reshape(-1))
        if poison.size and (poison[0] < 0 or poison[-1] >= n):
            raise ShapeMismatchError(f"poison_indices must be positions in [0, {n}).")
    labels_np = y.numpy()
    classes = sorted(set(labels_np.tolist()))
    windows = [
        (k, r, c)
        for k in config.window_sizes
        if k <= min(height, width) and k * k <= config.max_area_fraction * height * width
        for r in range(height - k + 1)
        for c in range(width - k + 1)
    ]
    flagged = np.zeros(n, dtype=bool)
    scores = np.zeros(n, dtype=np.float64)
    decisions: list[ClassDecision] = []
    provenance = {"data": data.sha256, "labels": sha256_arrays(labels_np)}

    def finish(*, complete: bool) -> DetectionResult:
        positions = np.flatnonzero(flagged)
        return DetectionResult(
            method=METHOD,
            config={**config.to_dict(), "complete": complete},
            flagged_indices=positions,
            flagged_ids=[ids[i] for i in positions.tolist()],
            scores=scores,
            classes=list(decisions),
            metrics=None if poison is None or not complete else detection_metrics(positions, poison, labels_np),
            seed=seed,
            n_samples=n,
            feature_dim=channels * height * width,
            features_sha256=provenance["data"],
            labels_sha256=provenance["labels"],
            library_versions=library_versions(),
            seconds=time.perf_counter() - started,
            model_sha256=module.sha256 if hasattr(module, "sha256") else module_sha256(module),
            data_sha256=data.sha256,
        )

    def cancel(stage: str) -> None:
        if should_cancel is not None and should_cancel():
            raise DetectionCancelled(f"Detection was cancelled {stage}.", finish(complete=False))

    was_training = module.training
    module.to(run_device).eval()
    try:
        fill = x.median(dim=0).values
        predicted = _predict(module, x, config.batch_size, run_device)
        correct = predicted == y
        candidates: dict[int, list[_Candidate]] = {c: [] for c in classes}
        for done, (k, r, c) in enumerate(windows):
            cancel(f"after scanning {done} of {len(windows)} windows")
            patch = x[:, :, r : r + k, c : c + k].reshape(n, -1)
            changed = (patch != fill[:, r : r + k, c : c + k].reshape(1, -1)).any(dim=1)
            moved = predicted.clone()  # samples that already hold the fill there are unchanged
            if changed.any():
                filled = x[changed].clone()
                filled[:, :, r : r + k, c : c + k] = fill[:, r : r + k, c : c + k]
                moved[changed] = _predict(module, filled, config.batch_size, run_device)
            left = moved != y
            flips = correct & left
            if flips.any():
                pairs = torch.unique(torch.stack([y[flips], moved[flips]], dim=1), dim=0).tolist()
                for target, source in pairs:
                    group = flips & (y == target) & (moved == source)
                    pattern = patch[group].median(dim=0).values
                    carries = (patch - pattern).abs().amax(dim=1) <= config.tolerance
                    carriers = carries & (y == target)
                    members = (carriers & left).numpy()
                    if members.sum() >= config.min_members:
                        candidate = _Candidate(target, source, k, r, c, pattern, members)
                        candidate.purity = float(members.sum() / int(carriers.sum()))
                        candidates[target].append(candidate)
            if progress is not None:
                progress(0.8 * (done + 1) / len(windows))
        generator = np.random.default_rng(seed)
        for done, label in enumerate(classes):
            cancel(f"after judging {done} of {len(classes)} classes")
            decision, members = _judge(
                module, x, y, correct, label, candidates[label], config, generator, run_device, (height, width)
            )
            decisions.append(decision)
            flagged |= members
            if progress is not None:
                progress(0.8 + 0.2 * (done + 1) / len(classes))
    finally:
        module.train(was_training)
    scores[flagged] = 1.0
    return finish(complete=True)


def excluded_fraction(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    members: np.ndarray,
    label: int,
    neighbours: int,
    window: tuple[int, int, int] | None = None,
) -> float:
    """Exclusionary reclassification in input space, without retraining (after Chen et al. 2018): the
    fraction of ``members`` (a boolean mask over the samples, all labelled ``label``) whose ``neighbours``
    nearest other training samples (Euclidean over the pixels, the square ``window`` ``(size, row, col)``
    left out when given, the members themselves excluded) mostly carry another label."""
    x = x.float() if isinstance(x, Tensor) else torch.tensor(np.asarray(x), dtype=torch.float32)
    y = y.long() if isinstance(y, Tensor) else torch.tensor(np.asarray(y), dtype=torch.int64)
    mask = torch.as_tensor(np.asarray(members, dtype=bool))
    if not mask.any() or mask.all():
        return 0.0
    keep = torch.ones(x.shape[1:], dtype=torch.bool)
    if window is not None:
        k, r, c = window
        keep[:, r : r + k, c : c + k] = False
    flat = x[:, keep] if x.dim() == 4 else x.reshape(x.shape[0], -1)
    others, other_labels = flat[~mask], y[~mask]
    nearest = torch.cdist(flat[mask], others).topk(min(neighbours, others.shape[0]), largest=False).indices
    own = (other_labels[nearest] == label).float().mean(dim=1)
    return float((own < 0.5).float().mean())


def _judge(
    module: nn.Module,
    x: Tensor,
    y: Tensor,
    correct: Tensor,
    label: int,
    candidates: list[_Candidate],
    config: InputSpaceConfig,
    generator: np.random.Generator,
    device: torch.device,
    shape: tuple[int, int],
) -> tuple[ClassDecision, np.ndarray]:
    """Transfer-test one class's candidates (most members first) and return its decision and flagged mask."""
    n_class = int((y == label).sum())
    members = np.zeros(y.shape[0], dtype=bool)
    confirmed: list[_Candidate] = []
    tested = 0
    for candidate in sorted(candidates, key=lambda c: -c.n_members):
        k, r, c = candidate.size, candidate.row, candidate.col
        patch = x[:, :, r : r + k, c : c + k].reshape(x.shape[0], -1)
        carries = (patch - candidate.pattern).abs().amax(dim=1) <= config.tolerance
        pool = np.flatnonzero(((y == candidate.source) & correct & ~carries).numpy())
        if pool.size == 0:
            candidate.transfer = 0.0
            continue
        if pool.size > config.max_transfer_samples:
            pool = np.sort(generator.choice(pool, size=config.max_transfer_samples, replace=False))
        pasted = x[pool].clone()
        pasted[:, :, r : r + k, c : c + k] = candidate.pattern.reshape(x.shape[1], k, k)
        candidate.transfer = float((_predict(module, pasted, config.batch_size, device) == label).float().mean())
        tested += 1
        if candidate.transfer >= config.min_transfer:
            candidate.excluded = excluded_fraction(
                x, y, candidate.members, label, config.neighbours, (candidate.size, candidate.row, candidate.col)
            )
            if candidate.excluded >= config.min_excluded and candidate.purity >= config.min_purity:
                confirmed.append(candidate)
    best_tested = max(candidates, key=lambda c: (c.transfer or 0.0, c.n_members), default=None)
    transferring = [c for c in candidates if c.excluded is not None]
    stats: dict[str, Any] = {
        "n_candidates": len(candidates),
        "n_confirmed": len(confirmed),
        "best_transfer": None if best_tested is None else best_tested.transfer,
        "best_excluded": max((c.excluded for c in transferring), default=None),
    }
    if not confirmed:
        if not candidates:
            reason = (
                f"no small window is carried by {config.min_members} or more samples that leave the class "
                "when it is removed: no trigger reconstructed"
            )
        elif transferring:
            reason = (
                f"a window transfers from another class, but its carriers still look like class {label} without "
                f"it (at most {100 * stats['best_excluded']:.0f}% excluded, < {100 * config.min_excluded:.0f}%): "
                "a natural feature, not a trigger"
            )
        else:
            reason = (
                f"{len(candidates)} candidate window(s) carried by {config.min_members}+ samples, but pasting them "
                f"moves at most {100 * (best_tested.transfer or 0.0):.0f}% of their source class here "
                f"(< {100 * config.min_transfer:.0f}%): natural features, not a trigger"
            )
        return ClassDecision(label, n_class, False, 0, stats, reason), members
    best = max(confirmed, key=lambda c: (c.n_members, c.transfer))
    for candidate in confirmed:  # e.g. a 1-pixel trigger is also found by the 2x2 windows around it
        members = members | candidate.members
    k, r, c = best.size, best.row, best.col
    where = _where(r, c, k, *shape)
    pixels = k * k * x.shape[1]
    stats.update(
        {
            "trigger_size": k,
            "trigger_pixels": pixels,
            "trigger_rows": [r, r + k - 1],
            "trigger_cols": [c, c + k - 1],
            "trigger_location": where,
            "trigger_pattern": [round(float(v), 4) for v in best.pattern.tolist()],
            "source_class": best.source,
            "transfer_rate": best.transfer,
            "excluded_fraction": best.excluded,
            "purity": best.purity,
            "n_members": best.n_members,
        }
    )
    reason = (
        f"reconstructed {pixels}-pixel ({k}x{k}) trigger in the {where} (rows {r}-{r + k - 1}, cols "
        f"{c}-{c + k - 1}): pasted onto class {best.source} it sends {100 * best.transfer:.0f}% of them to class "
        f"{label}; {best.n_members} samples carry it and leave the class when it is removed ({100 * best.purity:.0f}% "
        f"of its carriers here), and apart from it {100 * best.excluded:.0f}% of them look like another class"
    )
    return ClassDecision(label, n_class, True, int(members.sum()), stats, reason), members
