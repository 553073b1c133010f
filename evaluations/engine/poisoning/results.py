"""Result dataclasses of poison detection, and precision/recall against known poison indices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ClassDecision", "ClassConfusion", "DetectionMetrics", "DetectionResult", "detection_metrics"]


@dataclass(frozen=True)
class ClassDecision:
    """One class's verdict: whether it holds a planted cluster, how many samples are flagged, and why.

    ``statistics`` holds the numbers the decision rests on (separation, cluster sizes, silhouette, ...),
    ``reason`` says in words which test passed or failed.
    """

    label: int
    n_samples: int
    flagged: bool
    n_flagged: int
    statistics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "label": self.label,
            "n_samples": self.n_samples,
            "flagged": self.flagged,
            "n_flagged": self.n_flagged,
            "statistics": dict(self.statistics),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ClassConfusion:
    """Flagged-vs-poisoned counts within one class."""

    label: int
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "label": self.label,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "true_negatives": self.true_negatives,
        }


@dataclass(frozen=True)
class DetectionMetrics:
    """Precision, recall and F1 of the flagged samples against the known poison, overall and per class.

    With nothing flagged precision is 1.0 (no false alarm); with no poison recall is 1.0 (nothing missed).
    """

    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    per_class: list[ClassConfusion]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "true_negatives": self.true_negatives,
            "per_class": [c.to_dict() for c in self.per_class],
        }


def detection_metrics(flagged: np.ndarray, poison: np.ndarray, labels: np.ndarray) -> DetectionMetrics:
    """Compare flagged positions with poisoned positions (both index ``labels``)."""
    n = labels.shape[0]
    is_flagged = np.zeros(n, dtype=bool)
    is_flagged[flagged] = True
    is_poison = np.zeros(n, dtype=bool)
    is_poison[poison] = True
    per_class = []
    for label in np.unique(labels).tolist():
        mask = labels == label
        per_class.append(
            ClassConfusion(
                label=int(label),
                true_positives=int(np.sum(is_flagged & is_poison & mask)),
                false_positives=int(np.sum(is_flagged & ~is_poison & mask)),
                false_negatives=int(np.sum(~is_flagged & is_poison & mask)),
                true_negatives=int(np.sum(~is_flagged & ~is_poison & mask)),
            )
        )
    tp = int(np.sum(is_flagged & is_poison))
    fp = int(np.sum(is_flagged & ~is_poison))
    fn = int(np.sum(~is_flagged & is_poison))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return DetectionMetrics(
        precision=precision,
        recall=recall,
        f1=f1,
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        true_negatives=n - tp - fp - fn,
        per_class=per_class,
    )


@dataclass(frozen=True, eq=False)
class DetectionResult:
    """What a detector found: flagged samples for review or quarantine, per-class verdicts, provenance.

    Attributes:
        method: ``'spectral_signatures'``, ``'activation_clustering'`` or a combination.
        config: the detector's config as a dict.
        flagged_indices: positions (into the features/labels given) of the flagged samples, sorted.
        flagged_ids: the caller's ``sample_ids`` at those positions (equal to the positions by default).
        scores: a per-sample outlier score ``(N,)`` (higher is more suspicious; comparable within a class).
        classes: one :class:`ClassDecision` per class present.
        metrics: precision/recall against ``poison_indices`` when they were given, else None.
    """

    method: str
    config: dict[str, Any]
    flagged_indices: np.ndarray
    flagged_ids: list[Any]
    scores: np.ndarray
    classes: list[ClassDecision]
    metrics: DetectionMetrics | None
    seed: int
    n_samples: int
    feature_dim: int
    features_sha256: str
    labels_sha256: str
    library_versions: dict[str, str]
    seconds: float
    model_sha256: str | None = None
    data_sha256: str | None = None
    feature_layer: dict[str, Any] | None = None
    components: dict[str, DetectionResult] = field(default_factory=dict)

    @property
    def flagged_classes(self) -> list[int]:
        """Labels of the classes judged to hold poison."""
        return [c.label for c in self.classes if c.flagged]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``scores`` included as a list)."""
        return {
            "method": self.method,
            "config": dict(self.config),
            "flagged_indices": self.flagged_indices.tolist(),
            "flagged_ids": list(self.flagged_ids),
            "n_flagged": int(self.flagged_indices.size),
            "flagged_classes": self.flagged_classes,
            "scores": self.scores.tolist(),
            "classes": [c.to_dict() for c in self.classes],
            "metrics": None if self.metrics is None else self.metrics.to_dict(),
            "seed": self.seed,
            "n_samples": self.n_samples,
            "feature_dim": self.feature_dim,
            "features_sha256": self.features_sha256,
            "labels_sha256": self.labels_sha256,
            "model_sha256": self.model_sha256,
            "data_sha256": self.data_sha256,
            "feature_layer": self.feature_layer,
            "library_versions": dict(self.library_versions),
            "seconds": self.seconds,
            "components": {name: result.to_dict() for name, result in self.components.items()},
        }
