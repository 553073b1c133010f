"""Activation clustering (Chen et al., 'Detecting Backdoor Attacks on Deep Neural Networks by Activation
Clustering', AAAI SafeAI workshop 2019; arXiv 2018)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from evaluations.engine.common import CancelCheck, InvalidConfigError, ProgressCallback
from evaluations.engine.poisoning._geometry import ClassGeometry, Space, refine_minority
from evaluations.engine.poisoning._runner import run_per_class
from evaluations.engine.poisoning.results import ClassDecision, DetectionResult
from evaluations.engine.poisoning.spectral import _check_common, _check_positive

_StepResult = tuple[ClassDecision, np.ndarray, np.ndarray]

__all__ = ["ActivationClusteringConfig", "activation_clustering"]

#: Silhouette is estimated on at most this many samples per class (it is quadratic in the sample count).
SILHOUETTE_SAMPLE = 2000


@dataclass(frozen=True)
class ActivationClusteringConfig:
    """Settings of :func:`activation_clustering`.

    Attributes:
        space: representation clustered (see :class:`SpectralSignatureConfig`); ``'discriminant'`` default.
        n_components: PCA dimensions the representation is reduced to before 2-means (the paper: 10).
        max_size: a class is flagged only if its smaller cluster holds at most this fraction of it.
        min_silhouette: ... and the 2-means silhouette score is at least this (well separated clusters).
        max_exclusion_ratio: ... and the smaller cluster's centre is closer to another class's centre than
            to the larger cluster's (ratio below this; 1.0 = closer): a cheap exclusionary
            reclassification, in whitened feature space, without retraining. None switches it off.
        n_init: k-means restarts.
        min_class_size, ridge, max_dims, refine_k: as in :class:`SpectralSignatureConfig`.
    """

    space: Space = "discriminant"
    n_components: int = 10
    max_size: float = 0.4
    min_silhouette: float = 0.43
    max_exclusion_ratio: float | None = 1.0
    n_init: int = 10
    min_class_size: int = 10
    ridge: float = 1e-3
    max_dims: int = 32
    refine_k: float | None = 3.0

    def __post_init__(self) -> None:
        _check_common(self)
        if self.refine_k is not None:
            _check_positive("refine_k", self.refine_k)
        for name in ("n_components", "n_init"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(f"{name} must be an integer >= 1; got {value!r}.")
        _check_positive("max_size", self.max_size, upper=0.5)
        if (
            isinstance(self.min_silhouette, bool)
            or not isinstance(self.min_silhouette, numbers.Real)
            or not -1 <= self.min_silhouette <= 1
        ):
            raise InvalidConfigError(f"min_silhouette must be in [-1, 1]; got {self.min_silhouette!r}.")
        if self.max_exclusion_ratio is not None:
            _check_positive("max_exclusion_ratio", self.max_exclusion_ratio)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _pca(z: torch.Tensor, n_components: int) -> torch.Tensor:
    centred = z - z.mean(dim=0)
    if centred.shape[1] <= n_components:
        return centred
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    return centred @ vectors[:, -n_components:].flip(1)


def activation_clustering(
    features: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    config: ActivationClusteringConfig | None = None,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    poison_indices: np.ndarray | Sequence[int] | None = None,
    sample_ids: Sequence[Any] | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> DetectionResult:
    r"""Activation-clustering poison detection on penultimate features.

    Per class (Chen et al. 2018): reduce the activations to ``n_components`` dimensions (PCA here; the
    paper uses ICA), split them with 2-means, and decide at the CLASS level whether the smaller cluster
    is poison: it must be small (relative size ``<= max_size``), well separated (silhouette
    ``>= min_silhouette``), and, in place of the paper's retrain-and-reclassify test, closer to another
    class's centre than to the rest of its own class. Only then is the smaller cluster flagged, so clean
    classes (whose 2-means split is arbitrary) flag nothing.

    Arguments and returns as :func:`spectral_signatures`; ``seed`` seeds k-means and the silhouette
    sample. ``scores`` are 1 for samples in a class's smaller cluster, scaled by the class's silhouette.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    config = config or ActivationClusteringConfig()

    def step(
        geometry: ClassGeometry, label: int, positions: np.ndarray
    ) -> tuple[ClassDecision, np.ndarray, np.ndarray]:
        n = positions.size
        if n < config.min_class_size:
            decision = ClassDecision(label, n, False, 0, {}, f"fewer than {config.min_class_size} samples: not judged")
            return decision, np.zeros(n, dtype=bool), np.zeros(n)
        z, whitener, _ = geometry.embed(label, config.space)
        reduced = _pca(z, config.n_components).cpu().numpy()
        kmeans = KMeans(n_clusters=2, n_init=config.n_init, random_state=seed).fit(reduced)
        assignment = kmeans.labels_
        small_label = int(np.argmin(np.bincount(assignment, minlength=2)))
        small = assignment == small_label
        size = float(small.mean())
        if small.all() or not small.any():
            silhouette = 0.0
        else:
            silhouette = float(
                silhouette_score(reduced, assignment, sample_size=min(n, SILHOUETTE_SAMPLE), random_state=seed)
            )
        ratio = _exclusion_ratio(geometry, label, whitener, small) if small.any() else None
        tests = {
            "size": size <= config.max_size,
            "silhouette": silhouette >= config.min_silhouette,
            "exclusion": config.max_exclusion_ratio is None
            or (ratio is not None and ratio < config.max_exclusion_ratio),
        }
        flagged = all(tests.values())
        stats = {
            "relative_size": size,
            "silhouette": silhouette,
            "exclusion_ratio": ratio,
            "cluster_sizes": [int(n - small.sum()), int(small.sum())],
            "dims": int(reduced.shape[1]),
        }
        failed = [name for name, passed in tests.items() if not passed]
        if flagged:
            reason = (
                f"smaller cluster ({int(small.sum())} samples, {size:.0%}) is well separated "
                f"(silhouette {silhouette:.2f}) and looks like another class (ratio {ratio:.2f})"
            )
        else:
            reason = "smaller cluster fails the " + ", ".join(failed) + " test" + ("s" if len(failed) > 1 else "")
        mask = np.zeros(n, dtype=bool)
        if flagged:
            mask = small if config.refine_k is None else refine_minority(z, small, config.refine_k)
        decision = ClassDecision(label, n, flagged, int(mask.sum()), stats, reason)
        return decision, mask, small * max(silhouette, 0.0)

    return run_per_class(
        "activation_clustering",
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


def _exclusion_ratio(geometry: ClassGeometry, label: int, whitener: torch.Tensor, small: np.ndarray) -> float | None:
    """Distance of the small cluster's centre to the nearest other class centre over its distance to the
    large cluster's centre, in whitened feature space (< 1: the cluster looks like another class)."""
    others = [k for k in geometry.classes if k != label]
    if not others or small.all():
        return None
    x = geometry.features[geometry.index[label]]
    mask = torch.as_tensor(small, device=x.device)
    small_centre = x[mask].median(dim=0).values @ whitener
    large_centre = x[~mask].median(dim=0).values @ whitener
    other_centres = torch.stack([geometry.centre[k] for k in others]) @ whitener
    to_other = torch.linalg.vector_norm(other_centres - small_centre, dim=1).min()
    to_own = torch.linalg.vector_norm(large_centre - small_centre).clamp(min=1e-12)
    return float(to_other / to_own)
