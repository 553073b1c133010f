"""Adversarial robustness: FGSM, PGD, APGD-CE, Square, a greedy text attack, the sweep and its sanity checks."""

from __future__ import annotations

from evaluations.engine.robustness.apgd import APGDConfig, apgd
from evaluations.engine.robustness.fgsm import FGSMConfig, fgsm
from evaluations.engine.robustness.pgd import PGDConfig, pgd
from evaluations.engine.robustness.results import AdversarialSample, EpsilonResult, RobustnessResult, SanityFlag
from evaluations.engine.robustness.sanity import SanityConfig, SanityReport, run_sanity_checks, sanity_report
from evaluations.engine.robustness.square import SquareConfig, SquareResult, square
from evaluations.engine.robustness.sweep import AttackSpec, robustness_sweep
from evaluations.engine.robustness.text import TextAttackConfig, TextAttackResult, text_attack

__all__ = [
    "APGDConfig",
    "AdversarialSample",
    "AttackSpec",
    "EpsilonResult",
    "FGSMConfig",
    "PGDConfig",
    "RobustnessResult",
    "SanityConfig",
    "SanityFlag",
    "SanityReport",
    "SquareConfig",
    "SquareResult",
    "TextAttackConfig",
    "TextAttackResult",
    "apgd",
    "fgsm",
    "pgd",
    "robustness_sweep",
    "run_sanity_checks",
    "sanity_report",
    "square",
    "text_attack",
]
