"""Defenses that produce a hardened model: adversarial training (PGD, fast FGSM) and a plain training loop."""

from __future__ import annotations

from evaluations.engine.defenses.adversarial_training import (
    DIGITS_CONFIG,
    AdversarialTrainingConfig,
    AdversarialTrainingResult,
    adversarial_training,
)
from evaluations.engine.defenses.training import EpochRecord, TrainingConfig, train_module

__all__ = [
    "DIGITS_CONFIG",
    "AdversarialTrainingConfig",
    "AdversarialTrainingResult",
    "EpochRecord",
    "TrainingConfig",
    "adversarial_training",
    "train_module",
]
