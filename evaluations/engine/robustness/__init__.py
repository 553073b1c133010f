"""White-box adversarial robustness: FGSM, PGD (Linf/L2) and an epsilon sweep."""

from __future__ import annotations

from evaluations.engine.robustness.fgsm import FGSMConfig, fgsm
from evaluations.engine.robustness.pgd import PGDConfig, pgd
from evaluations.engine.robustness.results import AdversarialSample, EpsilonResult, RobustnessResult
from evaluations.engine.robustness.sweep import AttackSpec, robustness_sweep

__all__ = [
    "AdversarialSample",
    "AttackSpec",
    "EpsilonResult",
    "FGSMConfig",
    "PGDConfig",
    "RobustnessResult",
    "fgsm",
    "pgd",
    "robustness_sweep",
]
