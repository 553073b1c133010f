"""Result dataclasses of a robustness sweep; ``to_dict()`` gives JSON-serialisable dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AdversarialSample", "EpsilonResult", "RobustnessResult", "SanityFlag"]


@dataclass(frozen=True)
class SanityFlag:
    """A failed sanity check: a stable ``code``, a message saying what was seen, and the numbers behind it."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"code": self.code, "message": self.message, "details": dict(self.details)}


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
    ``c`` does not occur in the data. For token (text) attacks the Linf/L2 norms are None and
    ``mean_edits``/``max_edits`` count edited tokens instead; score-based attacks also report the model
    queries they used per sample (``mean_queries``/``max_queries``).
    """

    epsilon: float
    attack_config: dict[str, Any]
    robust_accuracy: float
    attack_success_rate: float | None
    n_clean_correct: int
    mean_linf: float | None
    max_linf: float | None
    mean_l2: float | None
    max_l2: float | None
    per_class_robust_accuracy: list[float | None]
    samples: list[AdversarialSample] = field(default_factory=list)
    seconds: float = 0.0
    samples_per_second: float | None = None
    mean_queries: float | None = None
    max_queries: int | None = None
    mean_edits: float | None = None
    max_edits: int | None = None

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
            "mean_queries": self.mean_queries,
            "max_queries": self.max_queries,
            "mean_edits": self.mean_edits,
            "max_edits": self.max_edits,
        }


@dataclass(frozen=True, eq=False)
class RobustnessResult:
    """A robustness curve with everything needed to reproduce and audit it.

    ``flags`` are the failed sanity checks (see :mod:`evaluations.engine.robustness.sanity`);
    ``sanity_checks`` names the checks that ran and ``sanity_skipped`` why the others did not.
    ``reliable`` is None when no check ran, else True exactly when there is no flag.
    """

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
    flags: list[SanityFlag] = field(default_factory=list)
    sanity_checks: list[str] = field(default_factory=list)
    sanity_skipped: dict[str, str] = field(default_factory=dict)
    sanity_seconds: float = 0.0

    @property
    def reliable(self) -> bool | None:
        """False when a sanity check failed, True when all that ran passed, None when none ran."""
        if self.flags:
            return False
        return True if self.sanity_checks else None

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
            "reliable": self.reliable,
            "flags": [flag.to_dict() for flag in self.flags],
            "sanity": {"checks": list(self.sanity_checks), "skipped": dict(self.sanity_skipped)},
            "timings": {
                "clean_seconds": self.clean_seconds,
                "sanity_seconds": self.sanity_seconds,
                "total_seconds": self.total_seconds,
                "samples_per_second": self.samples_per_second,
            },
        }
