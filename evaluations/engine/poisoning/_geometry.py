"""Shared, vectorised geometry of the detectors: input checks, class statistics, whitening, 1-D splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from evaluations.engine.common import (
    EmptyDatasetError,
    LabelOutOfRangeError,
    NonFiniteInputError,
    ShapeMismatchError,
    sha256_arrays,
)

Space = Literal["raw", "whitened", "discriminant"]
SPACES = ("raw", "whitened", "discriminant")
_MAD_TO_SD = 1.4826
_TINY = 1e-12


@dataclass(frozen=True, eq=False)
class Inputs:
    """Validated detector inputs: float64 features and int64 labels on the run device, plus ids and hashes."""

    features: Tensor
    labels: Tensor
    labels_np: np.ndarray
    poison: np.ndarray | None
    sample_ids: list[Any]
    features_sha256: str
    labels_sha256: str


def prepare_inputs(
    features: Any,
    labels: Any,
    *,
    poison_indices: Any = None,
    sample_ids: Sequence[Any] | None = None,
    device: torch.device,
) -> Inputs:
    """Check shapes, values and ids; raise named :class:`EngineInputError` subclasses saying what to fix."""
    f = features.detach().cpu().numpy() if isinstance(features, Tensor) else np.asarray(features)
    y = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if f.ndim == 0 or f.shape[0] == 0:
        raise EmptyDatasetError("There are no samples to inspect; pass features of shape (N, D) with N >= 1.")
    if f.ndim != 2 or f.shape[1] == 0:
        raise ShapeMismatchError(f"features must have shape (N, D); got {f.shape}. Flatten each sample's activations.")
    if not np.issubdtype(f.dtype, np.number) or np.issubdtype(f.dtype, np.complexfloating):
        raise ShapeMismatchError(f"features must be real numbers; got dtype {f.dtype}.")
    if not np.isfinite(f).all():
        rows = np.flatnonzero(~np.isfinite(f).all(axis=1))
        raise NonFiniteInputError(
            f"features contain NaN or infinite values in {rows.size} sample(s) (first at index {int(rows[0])}); "
            "check the model and its inputs."
        )
    if y.ndim != 1 or y.shape[0] != f.shape[0]:
        raise ShapeMismatchError(f"labels must have shape ({f.shape[0]},), one per feature row; got {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and int(y.min()) < 0):
        raise LabelOutOfRangeError("labels must be non-negative integer class indices; encode them as 0..C-1.")
    y = y.astype(np.int64)
    poison = None
    if poison_indices is not None:
        poison = np.unique(np.asarray(poison_indices, dtype=np.int64).reshape(-1))
        if poison.size and (poison[0] < 0 or poison[-1] >= f.shape[0]):
            raise ShapeMismatchError(
                f"poison_indices must be positions in [0, {f.shape[0]}); got values from {int(poison[0])} to "
                f"{int(poison[-1])}."
            )
    if sample_ids is None:
        ids: list[Any] = list(range(f.shape[0]))
    else:
        ids = list(sample_ids)
        if len(ids) != f.shape[0]:
            raise ShapeMismatchError(f"sample_ids has {len(ids)} entries but there are {f.shape[0]} samples.")
    return Inputs(
        features=torch.as_tensor(f, dtype=torch.float64, device=device),
        labels=torch.as_tensor(y, device=device),
        labels_np=y,
        poison=poison,
        sample_ids=ids,
        features_sha256=sha256_arrays(np.ascontiguousarray(f)),
        labels_sha256=sha256_arrays(y),
    )


class ClassGeometry:
    """Per-class centres (coordinate-wise medians) and scatter, to whiten one class against the others.

    Whitening class ``c`` by the pooled within-class covariance of the OTHER classes makes directions of
    ordinary within-class variation unit-scale, so a planted sub-population (variation no clean class
    shows) stands out; leaving ``c`` out keeps the poison from whitening itself away. The discriminant
    space keeps only the directions towards the other classes' centres, where source-class samples
    relabelled as ``c`` differ from genuine ``c`` samples.
    """

    def __init__(self, features: Tensor, labels: Tensor, *, ridge: float, max_dims: int) -> None:
        self.features = features
        self.labels = labels
        self.classes = torch.unique(labels).tolist()
        self.ridge = ridge
        self.max_dims = max_dims
        self.index = {c: torch.nonzero(labels == c).flatten() for c in self.classes}
        self.centre = {c: features[self.index[c]].median(dim=0).values for c in self.classes}
        self.scatter = {}
        for c in self.classes:
            centred = features[self.index[c]] - self.centre[c]
            self.scatter[c] = centred.T @ centred
        self.total_scatter = sum(self.scatter.values())

    def whitener(self, c: int) -> Tensor:
        """``(D, D)`` inverse square root of the other classes' pooled covariance (eigenvalues floored)."""
        others = self.features.shape[0] - self.index[c].numel()
        if len(self.classes) < 2 or others < 2:
            return torch.eye(self.features.shape[1], dtype=self.features.dtype, device=self.features.device)
        covariance = (self.total_scatter - self.scatter[c]) / others
        values, vectors = torch.linalg.eigh(covariance)
        values = values.clamp(min=max(float(values.max()) * self.ridge, _TINY))
        return (vectors * values.rsqrt()) @ vectors.T

    def embed(self, c: int, space: Space) -> tuple[Tensor, Tensor, Tensor | None]:
        """Class ``c``'s samples in ``space`` (rows centred on the class centre), the whitener, the basis."""
        x = self.features[self.index[c]]
        if space == "raw":
            return x - x.mean(dim=0), torch.eye(x.shape[1], dtype=x.dtype, device=x.device), None
        whitener = self.whitener(c)
        z = (x - self.centre[c]) @ whitener
        if space == "whitened" or len(self.classes) < 2:
            return z, whitener, None
        towards = torch.stack([(self.centre[k] - self.centre[c]) @ whitener for k in self.classes if k != c])
        _, _, vh = torch.linalg.svd(towards, full_matrices=False)
        basis = vh[: self.max_dims].T
        return z @ basis, whitener, basis


def top_direction(z: Tensor) -> tuple[Tensor, Tensor]:
    """Top right singular vector of the centred rows of ``z`` and the singular values squared / n (descending)."""
    centred = z - z.mean(dim=0)
    values, vectors = torch.linalg.eigh(centred.T @ centred / max(z.shape[0], 1))
    return vectors[:, -1], values.flip(0)


def two_means_1d(values: np.ndarray) -> float:
    """The threshold of the optimal 2-means split of 1-D ``values`` (exact, by sorting and prefix sums)."""
    ordered = np.sort(values)
    n = ordered.size
    if n < 2:
        return float(ordered[0]) if n else 0.0
    prefix = np.cumsum(ordered)
    prefix_sq = np.cumsum(ordered * ordered)
    left_n = np.arange(1, n)
    left = prefix_sq[:-1] - prefix[:-1] ** 2 / left_n
    right = (prefix_sq[-1] - prefix_sq[:-1]) - (prefix[-1] - prefix[:-1]) ** 2 / (n - left_n)
    cut = int(np.argmin(left + right))
    return float((ordered[cut] + ordered[cut + 1]) / 2)


def robust_scale(values: np.ndarray) -> float:
    """``1.4826 * MAD`` (the standard deviation for Gaussian data), never zero."""
    if values.size == 0:
        return 1.0
    return max(_MAD_TO_SD * float(np.median(np.abs(values - np.median(values)))), _TINY)


def split_statistics(projection: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Split a 1-D projection into majority/minority by 2-means; return the minority mask, its fraction,
    and the separation: distance between the two medians in robust standard deviations of the majority."""
    threshold = two_means_1d(projection)
    upper = projection > threshold
    minority = upper if upper.sum() <= projection.size / 2 else ~upper
    if not minority.any() or minority.all():
        return np.zeros_like(minority), 0.0, 0.0
    majority_values = projection[~minority]
    separation = abs(float(np.median(projection[minority]) - np.median(majority_values))) / robust_scale(
        majority_values
    )
    return minority, float(minority.mean()), separation


def refine_minority(z: Tensor, minority: np.ndarray, k: float) -> np.ndarray:
    """Re-cut a flagged minority with a robust threshold along the line joining the two groups' medians.

    Samples whose projection lies more than ``k`` robust standard deviations of the majority beyond the
    majority's median, towards the minority, are flagged; this recovers poisons the 2-means cut left on
    the wrong side and drops clean samples it took. Falls back to ``minority`` if the cut is empty.
    """
    if not minority.any() or minority.all():
        return minority
    mask = torch.as_tensor(minority, device=z.device)
    direction = z[mask].median(dim=0).values - z[~mask].median(dim=0).values
    projection = (z @ direction).cpu().numpy()
    majority = projection[~minority]
    cut = projection > np.median(majority) + k * robust_scale(majority)
    return cut if cut.any() else minority
