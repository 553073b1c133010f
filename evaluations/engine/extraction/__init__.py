"""Model extraction: victim access, output defenses, attacker strategies, and extraction detection.

``victim`` (the query interface and the HTTP JSON schema), ``http_victim``, ``defenses`` (output
policies and their utility cost), ``strategies`` and ``attacks`` (surrogate training, fidelity curve,
transfer attacks), ``results`` and ``detection`` (PRADA, volume and entropy monitors).
"""

from __future__ import annotations

from evaluations.engine.extraction.attacks import ExtractionConfig, extract
from evaluations.engine.extraction.defenses import (
    DefenseUtility,
    GaussianNoise,
    LabelOnly,
    OutputDefense,
    ReverseSigmoid,
    Rounding,
    TopK,
    defense_utility,
    gaussian_noise,
    label_only,
    reverse_sigmoid,
    round_probabilities,
    top_k,
)
from evaluations.engine.extraction.http_victim import HttpVictim
from evaluations.engine.extraction.results import BudgetPoint, ExtractionCancelled, ExtractionResult, TransferResult
from evaluations.engine.extraction.strategies import (
    ActiveLearning,
    JacobianAugmentation,
    NaturalPool,
    RandomQueries,
    Strategy,
)
from evaluations.engine.extraction.victim import (
    OUTPUTS,
    LocalVictim,
    QueryBudgetExhaustedError,
    Victim,
    VictimAnswer,
    VictimError,
    VictimRateLimitedError,
    VictimResponseError,
    VictimUnavailableError,
)

__all__ = [
    "OUTPUTS",
    "ActiveLearning",
    "BudgetPoint",
    "DefenseUtility",
    "ExtractionCancelled",
    "ExtractionConfig",
    "ExtractionResult",
    "GaussianNoise",
    "HttpVictim",
    "JacobianAugmentation",
    "LabelOnly",
    "LocalVictim",
    "NaturalPool",
    "OutputDefense",
    "QueryBudgetExhaustedError",
    "RandomQueries",
    "ReverseSigmoid",
    "Rounding",
    "Strategy",
    "TopK",
    "TransferResult",
    "Victim",
    "VictimAnswer",
    "VictimError",
    "VictimRateLimitedError",
    "VictimResponseError",
    "VictimUnavailableError",
    "defense_utility",
    "extract",
    "gaussian_noise",
    "label_only",
    "reverse_sigmoid",
    "round_probabilities",
    "top_k",
]
