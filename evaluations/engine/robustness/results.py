"""Result dataclasses of a robustness sweep; ``to_dict()`` gives JSON-serialisable dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AdversarialSample", "EpsilonResult", "RobustnessResult"]


@dataclass(frozen=True, eq=False)
class AdversarialSample:
    """One kept example: its dataset index, label, predictions and clean/adversarial inputs."""

    index: int
    label: int
    clean_prediction: int
    adversarial_prediction: int
    clean: np.ndarray
    adversarial: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (arrays as nested lists)."""
        return {
            "index": self.index,
            "label": self.label,
            "clean_prediction": self.clean_prediction,
            "adversarial_prediction": self.adversarial_prediction,
            "clean": self.clean.tolist(),
            "adversarial": self.adversarial.tolist(),
        }


@dataclass(frozen=True, eq=False)
class EpsilonResult:
    """Metrics at one perturbation budget.

    ``attack_success_rate`` is over the samples the model classified correctly when clean (None if
    there are none); norms are over all samples; ``per_class_robust_accuracy[c]`` is None when class
    ``c`` does not occur in the data.
    """

    epsilon: float
    attack_config: dict[str, Any]
    robust_accuracy: float
    attack_success_rate: float | None
    n_clean_correct: int
    mean_linf: float
    max_linf: float
    mean_l2: float
    max_l2: float
    per_class_robust_accuracy: list[float | None]
    samples: list[AdversarialSample] = field(default_factory=list)
    seconds: float = 0.0
    samples_per_second: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "epsilon": self.epsilon,
            "attack_config": dict(self.attack_config),
            "robust_accuracy": self.robust_accuracy,
            "attack_success_rate": self.attack_success_rate,
            "n_clean_correct": self.n_clean_correct,
            "mean_linf": self.mean_linf,
            "max_linf": self.max_linf,
            "mean_l2": self.mean_l2,
            "max_l2": self.max_l2,
            "per_class_robust_accuracy": list(self.per_class_robust_accuracy),
            "samples": [sample.to_dict() for sample in self.samples],
            "seconds": self.seconds,
            "samples_per_second": self.samples_per_second,
        }


@dataclass(frozen=True, eq=False)
class RobustnessResult:
    """A robustness curve with everything needed to reproduce and audit it."""

    attack: str
    norm: str
    config: dict[str, Any]
    clean_accuracy: float
    per_class_clean_accuracy: list[float | None]
    points: list[EpsilonResult]
    n_samples: int
    num_classes: int
    batch_size: int
    seed: int
    device: str
    model_sha256: str | None
    data_sha256: str
    library_versions: dict[str, str]
    clean_seconds: float
    total_seconds: float
    samples_per_second: float

    @property
    def epsilons(self) -> list[float]:
        """The budgets, in sweep order."""
        return [point.epsilon for point in self.points]

    @property
    def robust_accuracies(self) -> list[float]:
        """Robust accuracy at each budget, in sweep order."""
        return [point.robust_accuracy for point in self.points]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "attack": self.attack,
            "norm": self.norm,
            "config": dict(self.config),
            "epsilons": self.epsilons,
            "clean_accuracy": self.clean_accuracy,
            "per_class_clean_accuracy": list(self.per_class_clean_accuracy),
            "points": [point.to_dict() for point in self.points],
            "n_samples": self.n_samples,
            "num_classes": self.num_classes,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "device": self.device,
            "model_sha256": self.model_sha256,
            "data_sha256": self.data_sha256,
            "library_versions": dict(self.library_versions),
            "timings": {
                "clean_seconds": self.clean_seconds,
                "total_seconds": self.total_seconds,
                "samples_per_second": self.samples_per_second,
            },
        }
