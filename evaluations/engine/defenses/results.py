"""The result of adversarial training: the hardened model, before/after robustness, history, provenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from evaluations.engine.defenses.training import EpochRecord
from evaluations.engine.models.classifier import TorchClassifier
from evaluations.engine.robustness import PGDConfig, RobustnessResult

if TYPE_CHECKING:
    from evaluations.engine.defenses.adversarial_training import AdversarialTrainingConfig

__all__ = ["AdversarialTrainingResult"]


def _attack_dict(config: PGDConfig) -> dict[str, Any]:
    return {"attack": "pgd", **asdict(config), "step_size": config.resolved_step_size}


@dataclass(frozen=True, eq=False)
class AdversarialTrainingResult:
    """A hardened model and the evidence: accuracy before/after, history, and provenance.

    ``before`` and ``after`` are robustness sweeps of the original and the trained model on the test set
    with the evaluation attack at ``config.eps`` (same seed, so the same random starts). ``module`` and
    ``safetensors`` (its state dict, with the architecture and hyperparameters in the metadata) are the
    new model; ``model_sha256_after`` is the SHA-256 of those bytes.
    """

    config: AdversarialTrainingConfig
    architecture: str
    hyperparams: dict[str, Any]
    input_shape: tuple[int, ...]
    bounds: tuple[float, float]
    num_classes: int
    before: RobustnessResult
    after: RobustnessResult
    history: list[EpochRecord]
    seed: int
    device: str
    model_sha256_before: str | None
    model_sha256_after: str
    train_data_sha256: str
    test_data_sha256: str
    n_train: int
    n_test: int
    library_versions: dict[str, str]
    train_seconds: float
    total_seconds: float
    module: nn.Module = field(repr=False)
    safetensors: bytes = field(repr=False)

    @property
    def clean_accuracy_before(self) -> float:
        """Clean test accuracy of the original model."""
        return self.before.clean_accuracy

    @property
    def robust_accuracy_before(self) -> float:
        """Robust test accuracy of the original model under the evaluation attack."""
        return self.before.points[0].robust_accuracy

    @property
    def clean_accuracy_after(self) -> float:
        """Clean test accuracy of the trained model."""
        return self.after.clean_accuracy

    @property
    def robust_accuracy_after(self) -> float:
        """Robust test accuracy of the trained model under the evaluation attack."""
        return self.after.points[0].robust_accuracy

    def classifier(self, device: torch.device | str | None = None) -> TorchClassifier:
        """The trained model as a :class:`TorchClassifier` (same input shape, bounds and classes as the original)."""
        return TorchClassifier(
            self.module,
            input_shape=self.input_shape,
            bounds=self.bounds,
            num_classes=self.num_classes,
            device=device or self.device,
            sha256=self.model_sha256_after,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the module and weight bytes; their hash identifies them)."""
        return {
            "defense": "adversarial_training",
            "method": self.config.method,
            "config": self.config.to_dict(),
            "training_attack": _attack_dict(self.config.training_attack),
            "evaluation_attack": _attack_dict(self.config.evaluation_attack),
            "architecture": self.architecture,
            "hyperparams": dict(self.hyperparams),
            "input_shape": list(self.input_shape),
            "bounds": list(self.bounds),
            "num_classes": self.num_classes,
            "clean_accuracy_before": self.clean_accuracy_before,
            "robust_accuracy_before": self.robust_accuracy_before,
            "clean_accuracy_after": self.clean_accuracy_after,
            "robust_accuracy_after": self.robust_accuracy_after,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "history": [record.to_dict() for record in self.history],
            "seed": self.seed,
            "device": self.device,
            "model_sha256_before": self.model_sha256_before,
            "model_sha256_after": self.model_sha256_after,
            "model_size_bytes": len(self.safetensors),
            "train_data_sha256": self.train_data_sha256,
            "test_data_sha256": self.test_data_sha256,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "library_versions": dict(self.library_versions),
            "timings": {"train_seconds": self.train_seconds, "total_seconds": self.total_seconds},
        }
