"""Spectral signatures (Tran, Li & Madry, 'Spectral Signatures in Backdoor Attacks', NeurIPS 2018)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from evaluations.engine.common import CancelCheck, InvalidConfigError, ProgressCallback
from evaluations.engine.poisoning._geometry import (
    SPACES,
    ClassGeometry,
    Space,
    refine_minority,
    split_statistics,
    top_direction,
)
from evaluations.engine.poisoning._runner import run_per_class
from evaluations.engine.poisoning.results import ClassDecision, DetectionResult

_StepResult = tuple[ClassDecision, np.ndarray, np.ndarray]

__all__ = ["SpectralSignatureConfig", "spectral_signatures"]


def _check_positive(name: str, value: Any, *, upper: float | None = None) -> None:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value) and value > 0
    if not ok or (upper is not None and value > upper):
        bound = f"in (0, {upper}]" if upper is not None else "> 0"
        raise InvalidConfigError(f"{name} must be a finite number {bound}; got {value!r}.")


def _check_common(config: Any) -> None:
    if config.space not in SPACES:
        raise InvalidConfigError(f"space must be one of {', '.join(SPACES)}; got {config.space!r}.")
    for name in ("min_class_size", "max_dims"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise InvalidConfigError(f"{name} must be an integer >= 2; got {value!r}.")
    _check_positive("ridge", config.ridge, upper=1.0)


@dataclass(frozen=True)
class SpectralSignatureConfig:
    """Settings of :func:`spectral_signatures`.

    Attributes:
        space: ``'raw'`` is the paper's (centred penultimate features); ``'whitened'`` first whitens
            each class by the other classes' pooled covariance; ``'discriminant'`` (default) also keeps
            only the directions towards the other class centres (with two classes: the single one).
        min_separation: a class is flagged when the 2-means split of its projections puts the two
            medians at least this many robust standard deviations (1.4826 MAD) of the majority apart.
        max_fraction: ... and the minority side holds at most this fraction of the class.
        min_class_size: classes with fewer samples are not judged.
        ridge: whitening floor, as a fraction of the largest covariance eigenvalue.
        max_dims: most discriminant directions kept.
        refine_k: in a flagged class, the flagged samples are those beyond the majority's median by
            ``refine_k`` robust standard deviations along the line between the two groups (a robust cut
            instead of the 2-means boundary); None keeps the 2-means minority.
    """

    space: Space = "discriminant"
    min_separation: float = 7.0
    max_fraction: float = 0.45
    min_class_size: int = 10
    ridge: float = 1e-3
    max_dims: int = 32
    refine_k: float | None = 3.0

    def __post_init__(self) -> None:
        _check_common(self)
        if self.refine_k is not None:
            _check_positive("refine_k", self.refine_k)
        _check_positive("min_separation", self.min_separation)
        _check_positive("max_fraction", self.max_fraction, upper=0.5)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def spectral_signatures(
    features: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    config: SpectralSignatureConfig | None = None,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    poison_indices: np.ndarray | Sequence[int] | None = None,
    sample_ids: Sequence[Any] | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> DetectionResult:
    r"""Spectral-signature poison detection on penultimate features.

    Per class (Tran, Li & Madry 2018): centre the class's representations, take the top right singular
    vector ``v`` of the centred matrix, and score each sample by its squared projection
    ``((r_i - mean) . v)^2``; poisoned samples, a sub-population the model separates, load on ``v``.
    Instead of removing a fixed ``1.5 * eps`` fraction, a class is judged poisoned only when the
    projections split (exact 1-D 2-means) into two groups whose medians lie ``min_separation`` robust
    standard deviations apart with the minority at most ``max_fraction`` of the class; its minority
    side is flagged. Clean classes, whose projections are unimodal, flag nothing.

    Arguments:
        features: ``(N, D)`` penultimate activations (see :func:`extract_features`).
        labels: ``(N,)`` training labels (the possibly poisoned ones).
        config: :class:`SpectralSignatureConfig` (defaults if None).
        seed: recorded for provenance (the method is deterministic).
        device: where to compute (CPU default); features are handled in float64.
        poison_indices: known poison positions, to report precision/recall.
        sample_ids: ids to report for flagged samples (default: positions).
        progress: called with the fraction of classes done.
        should_cancel: checked before each class; raises ``DetectionCancelled`` holding the partial result.

    Returns:
        :class:`DetectionResult`; ``scores`` are the squared projections.
    """
    config = config or SpectralSignatureConfig()

    def step(
        geometry: ClassGeometry, label: int, positions: np.ndarray
    ) -> tuple[ClassDecision, np.ndarray, np.ndarray]:
        n = positions.size
        if n < config.min_class_size:
            decision = ClassDecision(label, n, False, 0, {}, f"fewer than {config.min_class_size} samples: not judged")
            return decision, np.zeros(n, dtype=bool), np.zeros(n)
        z, _, _ = geometry.embed(label, config.space)
        direction, spectrum = top_direction(z)
        projection = ((z - z.mean(dim=0)) @ direction).cpu().numpy()
        minority, fraction, separation = split_statistics(projection)
        flagged = separation >= config.min_separation and 0 < fraction <= config.max_fraction
        stats = {
            "separation": separation,
            "minority_fraction": fraction,
            "top_eigenvalue": float(spectrum[0]),
            "eigenvalue_ratio": float(spectrum[0] / spectrum[1]) if spectrum.numel() > 1 and spectrum[1] > 0 else None,
            "dims": int(z.shape[1]),
        }
        if flagged:
            reason = (
                f"projections split into {int(minority.sum())} vs {n - int(minority.sum())} samples, "
                f"{separation:.1f} robust SDs apart (>= {config.min_separation})"
            )
        elif separation < config.min_separation:
            reason = f"no separated sub-population: separation {separation:.1f} < {config.min_separation}"
        else:
            reason = f"minority fraction {fraction:.2f} > {config.max_fraction}: not a planted minority"
        mask = np.zeros(n, dtype=bool)
        if flagged:
            mask = minority if config.refine_k is None else refine_minority(z, minority, config.refine_k)
        decision = ClassDecision(label, n, bool(flagged), int(mask.sum()), stats, reason)
        return decision, mask, projection**2

    return run_per_class(
        "spectral_signatures",
        config.to_dict(),
        features,
        labels,
        step,
        ridge=config.ridge,
        max_dims=config.max_dims,
        seed=seed,
        device=device,
        poison_indices=poison_indices,
        sample_ids=sample_ids,
        progress=progress,
        should_cancel=should_cancel,
    )
