"""Poison detection end to end: extract penultimate features, run both detectors, combine their verdicts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from evaluations.engine.common import CancelCheck, InvalidConfigError, ProgressCallback, library_versions
from evaluations.engine.datasets.base import Dataset
from evaluations.engine.models.classifier import TorchClassifier
from evaluations.engine.poisoning._runner import check_seed
from evaluations.engine.poisoning.activation_clustering import ActivationClusteringConfig, activation_clustering
from evaluations.engine.poisoning.features import extract_features
from evaluations.engine.poisoning.input_space import InputSpaceConfig, detect_patch_triggers, excluded_fraction
from evaluations.engine.poisoning.recipe import module_sha256
from evaluations.engine.poisoning.results import ClassDecision, DetectionResult, detection_metrics
from evaluations.engine.poisoning.spectral import SpectralSignatureConfig, spectral_signatures
from evaluations.engine.poisoning.text_triggers import TextTriggerConfig, detect_token_triggers_in_model

__all__ = ["DetectionConfig", "combine_results", "detect_poison", "detect_poison_in_model"]

Method = Literal["spectral_signatures", "activation_clustering", "union", "consensus"]
_METHODS = ("spectral_signatures", "activation_clustering", "union", "consensus")
Images = Literal["input_space", "union", "features"]
_IMAGES = ("input_space", "union", "features")


@dataclass(frozen=True)
class DetectionConfig:
    """Which detector(s) to run and how to combine them.

    Attributes:
        method: one detector, or both: ``'union'`` flags a class when either detector does (taking the
            samples of the detector(s) that flagged it, intersected when both did); ``'consensus'`` only
            when both do (the samples both flagged).
        spectral, clustering: the detectors' own settings.
        text: settings of the token-trigger detector that :func:`detect_poison_in_model` runs instead of the
            feature-space ones when the data are token ids (``method`` does not apply there).
        images: what :func:`detect_poison_in_model` runs on float images ``(N, C, H, W)``:
            ``'input_space'`` (default) the patch-trigger detector
            (:func:`~evaluations.engine.poisoning.input_space.detect_patch_triggers`), which decides each
            class by reconstructing a trigger and checking the model obeys it; ``'union'`` also runs the
            feature-space detectors (``method``) and flags a class when either does (the input-space members
            where it found a trigger); ``'features'`` the feature-space detectors only. The default leaves
            the feature space out because on the digits benchmark it missed 5% poison on 2 of 3 seeds and
            flagged a natural sub-cluster of clean 9s (which 'union' still flags: those 9s also look like
            another class in input space, so the exclusion check cannot veto them).
        input_space: settings of the patch-trigger detector.
    """

    method: Method = "union"
    spectral: SpectralSignatureConfig = field(default_factory=SpectralSignatureConfig)
    clustering: ActivationClusteringConfig = field(default_factory=ActivationClusteringConfig)
    text: TextTriggerConfig = field(default_factory=TextTriggerConfig)
    images: Images = "input_space"
    input_space: InputSpaceConfig = field(default_factory=InputSpaceConfig)

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise InvalidConfigError(f"method must be one of {', '.join(_METHODS)}; got {self.method!r}.")
        if self.images not in _IMAGES:
            raise InvalidConfigError(f"images must be one of {', '.join(_IMAGES)}; got {self.images!r}.")
        if not isinstance(self.input_space, InputSpaceConfig):
            raise InvalidConfigError(f"input_space must be an InputSpaceConfig; got {type(self.input_space).__name__}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "method": self.method,
            "spectral": self.spectral.to_dict(),
            "clustering": self.clustering.to_dict(),
            "text": self.text.to_dict(),
            "images": self.images,
            "input_space": self.input_space.to_dict(),
        }


def combine_results(
    spectral: DetectionResult,
    clustering: DetectionResult,
    *,
    method: Literal["union", "consensus"],
    config: dict[str, Any],
    poison_indices: np.ndarray | None,
    labels: np.ndarray,
    sample_ids: Sequence[Any] | None,
) -> DetectionResult:
    """Merge two detectors' per-class verdicts over the same samples (see :class:`DetectionConfig`)."""
    n = spectral.n_samples
    by_spectral = {c.label: c for c in spectral.classes}
    flagged = np.zeros(n, dtype=bool)
    decisions: list[ClassDecision] = []
    in_spectral = np.zeros(n, dtype=bool)
    in_spectral[spectral.flagged_indices] = True
    in_clustering = np.zeros(n, dtype=bool)
    in_clustering[clustering.flagged_indices] = True
    for decision in clustering.classes:
        other = by_spectral[decision.label]
        mask = labels == decision.label
        votes = [name for name, d in (("spectral_signatures", other), ("activation_clustering", decision)) if d.flagged]
        if len(votes) == 2:
            chosen = in_spectral & in_clustering & mask
        elif votes and method == "union":
            chosen = (in_spectral if votes[0] == "spectral_signatures" else in_clustering) & mask
        else:
            chosen = np.zeros(n, dtype=bool)
        flagged |= chosen
        reason = (
            f"flagged by {' and '.join(votes)}"
            if chosen.any()
            else "not flagged by " + ("both detectors" if method == "consensus" and votes else "either detector")
        )
        decisions.append(
            ClassDecision(
                label=decision.label,
                n_samples=decision.n_samples,
                flagged=bool(chosen.any()),
                n_flagged=int(chosen.sum()),
                statistics={"spectral_signatures": other.statistics, "activation_clustering": decision.statistics},
                reason=reason,
            )
        )
    positions = np.flatnonzero(flagged)
    ids = list(range(n)) if sample_ids is None else list(sample_ids)
    return replace(
        spectral,
        method=method,
        config=config,
        flagged_indices=positions,
        flagged_ids=[ids[i] for i in positions.tolist()],
        scores=np.maximum(_unit(spectral.scores, labels), clustering.scores),
        classes=decisions,
        metrics=None if poison_indices is None else detection_metrics(positions, poison_indices, labels),
        seconds=spectral.seconds + clustering.seconds,
        components={"spectral_signatures": spectral, "activation_clustering": clustering},
    )


def _merge_input_space(
    patch: DetectionResult,
    features: DetectionResult,
    config: DetectionConfig,
    labels: np.ndarray,
    sample_ids: Sequence[Any] | None,
    poison_indices: np.ndarray | Sequence[int] | None,
    x: np.ndarray,
) -> DetectionResult:
    """``images='union'``: a class is flagged when the patch-trigger detector flags it (its trigger carriers),
    or when the feature-space detectors do and most of their flagged samples look like another class in input
    space (:func:`excluded_fraction`, Chen et al.'s exclusionary reclassification without retraining): a
    natural sub-population of a clean class looks like its class and is not flagged."""
    labels = np.asarray(labels, dtype=np.int64)
    by_features = {c.label: c for c in features.classes}
    flagged = np.zeros(patch.n_samples, dtype=bool)
    from_patch = np.zeros_like(flagged)
    from_patch[patch.flagged_indices] = True
    from_features = np.zeros_like(flagged)
    from_features[features.flagged_indices] = True
    decisions = []
    for decision in patch.classes:
        other = by_features.get(decision.label)
        mask = labels == decision.label
        if decision.flagged:
            chosen, reason = from_patch & mask, decision.reason
        elif other is not None and other.flagged:
            chosen = from_features & mask
            excluded = excluded_fraction(x, labels, chosen, decision.label, config.input_space.neighbours)
            if excluded >= config.input_space.min_excluded:
                reason = (
                    f"no trigger reconstructed, but {other.reason}; {100 * excluded:.0f}% of those samples look like "
                    "another class in input space (exclusionary reclassification)"
                )
            else:
                reason = (
                    f"feature space: {other.reason}; but only {100 * excluded:.0f}% of those samples look like another "
                    f"class in input space (< {100 * config.input_space.min_excluded:.0f}%): a natural sub-population"
                )
                chosen = np.zeros_like(flagged)
        else:
            chosen = np.zeros_like(flagged)
            reason = f"{decision.reason}; {other.reason if other is not None else 'not judged in feature space'}"
        flagged |= chosen
        statistics = {
            "patch_trigger": decision.statistics,
            "features": None if other is None else other.statistics,
        }
        decisions.append(
            ClassDecision(decision.label, decision.n_samples, bool(chosen.any()), int(chosen.sum()), statistics, reason)
        )
    positions = np.flatnonzero(flagged)
    ids = list(range(patch.n_samples)) if sample_ids is None else list(sample_ids)
    poison = None if poison_indices is None else np.unique(np.asarray(poison_indices, dtype=np.int64))
    return replace(
        patch,
        method="input_space+" + features.method,
        config={"detection": config.to_dict()},
        flagged_indices=positions,
        flagged_ids=[ids[i] for i in positions.tolist()],
        scores=np.maximum(patch.scores, _unit(features.scores, labels)),
        classes=decisions,
        metrics=None if poison is None else detection_metrics(positions, poison, labels),
        components={"patch_trigger": patch, "features": features},
    )


def _unit(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Scores divided by their class maximum, so both detectors' scores live in [0, 1]."""
    out = np.zeros_like(scores)
    for label in np.unique(labels):
        mask = labels == label
        top = scores[mask].max()
        out[mask] = scores[mask] / top if top > 0 else 0.0
    return out


def detect_poison(
    features: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    config: DetectionConfig | None = None,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    poison_indices: np.ndarray | Sequence[int] | None = None,
    sample_ids: Sequence[Any] | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> DetectionResult:
    """Run spectral signatures and/or activation clustering on ``features`` ``(N, D)`` and combine them.

    See :func:`spectral_signatures` (Tran et al. 2018) and :func:`activation_clustering` (Chen et al.
    2018). ``progress`` covers both detectors; cancellation raises ``DetectionCancelled``.
    """
    config = config or DetectionConfig()
    check_seed(seed)
    common = {
        "seed": seed,
        "device": device,
        "poison_indices": poison_indices,
        "sample_ids": sample_ids,
        "should_cancel": should_cancel,
    }
    if config.method == "spectral_signatures":
        return spectral_signatures(features, labels, config.spectral, progress=progress, **common)
    if config.method == "activation_clustering":
        return activation_clustering(features, labels, config.clustering, progress=progress, **common)
    first = None if progress is None else (lambda f: progress(0.5 * f))
    second = None if progress is None else (lambda f: progress(0.5 + 0.5 * f))
    spectral = spectral_signatures(features, labels, config.spectral, progress=first, **common)
    clustering = activation_clustering(features, labels, config.clustering, progress=second, **common)
    label_array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    poison = None if poison_indices is None else np.unique(np.asarray(poison_indices, dtype=np.int64))
    return combine_results(
        spectral,
        clustering,
        method=config.method,
        config=config.to_dict(),
        poison_indices=poison,
        labels=label_array.astype(np.int64),
        sample_ids=sample_ids,
    )


def detect_poison_in_model(
    model: nn.Module | TorchClassifier,
    data: Dataset,
    config: DetectionConfig | None = None,
    *,
    layer: str | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    poison_indices: np.ndarray | Sequence[int] | None = None,
    sample_ids: Sequence[Any] | None = None,
    batch_size: int = 512,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> DetectionResult:
    """Extract ``model``'s penultimate features on the training ``data`` and run :func:`detect_poison`.

    ``layer`` overrides the automatically found feature layer (see :func:`extract_features`). The
    result records the model's weight hash, the data hash and the feature layer.

    Text data (int64 token ids ``(N, L)``) go to the token-level trigger detector instead
    (:func:`~evaluations.engine.poisoning.text_triggers.detect_token_triggers_in_model`, ``config.text``):
    a mean-embedding model's penultimate features are nearly one-dimensional, so the feature-space
    detectors see nothing there; ``layer`` does not apply.

    Float images ``(N, C, H, W)`` go, by default (``config.images='input_space'``), to the input-space
    patch-trigger detector (:func:`~evaluations.engine.poisoning.input_space.detect_patch_triggers`,
    Neural Cleanse-style trigger reconstruction with exclusionary reclassification); ``'union'`` adds the
    feature-space verdicts, ``'features'`` uses only those.
    """
    started = time.perf_counter()
    if data.x.dtype == np.int64 and data.x.ndim == 2:
        return detect_token_triggers_in_model(
            model,
            data,
            (config or DetectionConfig()).text,
            seed=seed,
            device=device,
            poison_indices=poison_indices,
            sample_ids=sample_ids,
            progress=progress,
            should_cancel=should_cancel,
        )
    config = config or DetectionConfig()
    is_image = data.x.ndim == 4 and np.issubdtype(data.x.dtype, np.floating)
    patch_result = None
    if is_image and config.images != "features":
        share = 1.0 if config.images == "input_space" else 0.5
        patch_result = detect_patch_triggers(
            model,
            data,
            config.input_space,
            seed=seed,
            device=device,
            poison_indices=poison_indices,
            sample_ids=sample_ids,
            progress=None if progress is None else (lambda f: progress(share * f)),
            should_cancel=should_cancel,
        )
        if config.images == "input_space":
            return replace(patch_result, config={**patch_result.config, "detection": config.to_dict()})
        outer = progress
        progress = None if outer is None else (lambda f: outer(0.5 + 0.5 * f))
    extraction = extract_features(
        model,
        data,
        layer=layer,
        batch_size=batch_size,
        device=device,
        progress=None if progress is None else (lambda f: progress(0.3 * f)),
        should_cancel=should_cancel,
    )
    result = detect_poison(
        extraction.features,
        data.y,
        config,
        seed=seed,
        device=device,
        poison_indices=poison_indices,
        sample_ids=sample_ids,
        progress=None if progress is None else (lambda f: progress(0.3 + 0.7 * f)),
        should_cancel=should_cancel,
    )
    module = model.module if isinstance(model, TorchClassifier) else model
    sha = model.sha256 if isinstance(model, TorchClassifier) and model.sha256 else module_sha256(module)
    if patch_result is not None:
        result = _merge_input_space(patch_result, result, config, data.y, sample_ids, poison_indices, data.x)
    return replace(
        result,
        model_sha256=sha,
        data_sha256=data.sha256,
        feature_layer=extraction.to_dict(),
        library_versions=library_versions(),
        seconds=time.perf_counter() - started,
    )
