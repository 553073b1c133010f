"""The attacks the sweep and the sanity checks can run, behind one uniform interface."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from evaluations.engine.common import EngineInputError, EpsilonOutOfRangeError, InvalidConfigError
from evaluations.engine.models.classifier import Classifier
from evaluations.engine.robustness._checks import check_epsilon, require_white_box
from evaluations.engine.robustness.apgd import APGDConfig, apgd
from evaluations.engine.robustness.fgsm import FGSMConfig, fgsm
from evaluations.engine.robustness.pgd import PGDConfig, pgd
from evaluations.engine.robustness.square import SquareConfig, square
from evaluations.engine.robustness.text import TextAttackConfig, text_attack

AttackConfig = FGSMConfig | PGDConfig | APGDConfig | SquareConfig | TextAttackConfig
AttackSpec = AttackConfig | str
"""'fgsm', 'pgd', 'apgd', 'square', 'text' (defaults), or a config whose budget is replaced by each sweep budget."""

ATTACK_NAMES = ("fgsm", "pgd", "apgd", "square", "text")
_PLACEHOLDER_EPS = 1.0  # templates need a valid eps; the sweep replaces it


@dataclasses.dataclass(frozen=True)
class AttackOutput:
    """One batch's adversarial inputs plus what score-based attacks count per sample."""

    adversarial: Tensor
    queries: Tensor | None = None
    edits: Tensor | None = None


@dataclasses.dataclass(frozen=True)
class ResolvedAttack:
    """An attack resolved from an :data:`AttackSpec`: a config factory, a runner and its traits."""

    name: str
    norm: str  # 'linf', 'l2' or 'edits'
    template: AttackConfig
    white_box: bool
    cost: int  # forward-pass equivalents per sample (per position for text), for progress weighting

    @property
    def tokens(self) -> bool:
        """True for attacks on token ids rather than float inputs."""
        return self.norm == "edits"

    @property
    def recorded(self) -> dict[str, Any]:
        """The template's settings without its budget, as recorded in results."""
        budget = "max_edits" if self.tokens else "eps"
        settings = {k: v for k, v in dataclasses.asdict(self.template).items() if k != budget}
        if isinstance(settings.get("candidate_ids"), tuple):
            settings["candidate_ids"] = list(settings["candidate_ids"])
        return {"attack": self.name, **settings}

    def make_config(self, budget: float) -> AttackConfig:
        """The template with its budget (eps, or max_edits for text) set to ``budget``."""
        if self.tokens:
            return dataclasses.replace(self.template, max_edits=int(budget))
        if isinstance(self.template, FGSMConfig):
            return FGSMConfig(eps=budget)
        return dataclasses.replace(self.template, eps=budget)

    def check_model(self, classifier: Classifier) -> Classifier:
        """Raise unless ``classifier`` suits this attack (gradients, float or token inputs)."""
        if self.white_box:
            return require_white_box(classifier, self.name.upper())
        dtype = input_dtype(classifier)
        if self.tokens and dtype.is_floating_point:
            raise EngineInputError(
                "The text attack needs a classifier on int64 token ids (e.g. text_embeddingbag); "
                "this one takes float inputs. Use 'square' or a white-box attack."
            )
        if not self.tokens and not dtype.is_floating_point:
            raise EngineInputError(
                f"{self.name} perturbs float inputs but this classifier takes token ids; use attack='text'."
            )
        return classifier

    def check_budget(self, budget: float, classifier: Classifier) -> float:
        """``budget`` as a float within the attack's valid range (0 allowed: no attack)."""
        if not self.tokens:
            check_epsilon(budget, classifier, self.norm, allow_zero=True)
            return budget
        length = classifier.input_shape[-1]
        if not (math.isfinite(budget) and budget == int(budget) and 0 <= budget <= length):
            raise EpsilonOutOfRangeError(
                f"Text-attack budgets are edit counts: whole numbers from 0 to the sequence length {length}; "
                f"got {budget}."
            )
        return float(int(budget))

    def cost_per_sample(self, classifier: Classifier) -> int:
        """Forward-pass equivalents per sample, for progress weighting."""
        return self.cost * (classifier.input_shape[-1] if self.tokens else 1)

    def run(
        self, classifier: Classifier, x: Tensor, y: Tensor, config: AttackConfig, *, seed: int, device: torch.device
    ) -> AttackOutput:
        """Attack one batch."""
        if isinstance(config, FGSMConfig):
            return AttackOutput(fgsm(classifier, x, y, config, seed=seed, device=device))
        if isinstance(config, PGDConfig):
            return AttackOutput(pgd(classifier, x, y, config, seed=seed, device=device))
        if isinstance(config, APGDConfig):
            return AttackOutput(apgd(classifier, x, y, config, seed=seed, device=device))
        if isinstance(config, SquareConfig):
            result = square(classifier, x, y, config, seed=seed, device=device)
            return AttackOutput(result.adversarial, queries=result.queries)
        result = text_attack(classifier, x, y, config, seed=seed, device=device)
        return AttackOutput(result.adversarial, queries=result.queries, edits=result.edits)


def input_dtype(classifier: Classifier) -> torch.dtype:
    """The dtype ``classifier`` takes (float32 unless it declares otherwise)."""
    return getattr(classifier, "input_dtype", torch.float32)


def resolve_attack(attack: AttackSpec) -> ResolvedAttack:
    """Turn a name or config template into a :class:`ResolvedAttack`."""
    if isinstance(attack, str):
        defaults: dict[str, AttackConfig] = {
            "fgsm": FGSMConfig(eps=_PLACEHOLDER_EPS),
            "pgd": PGDConfig(eps=_PLACEHOLDER_EPS),
            "apgd": APGDConfig(eps=_PLACEHOLDER_EPS),
            "square": SquareConfig(eps=_PLACEHOLDER_EPS),
            "text": TextAttackConfig(),
        }
        if attack not in defaults:
            raise InvalidConfigError(
                f"Unknown attack {attack!r}; use 'fgsm', 'pgd', 'apgd', 'square', 'text', or pass one of their configs."
            )
        attack = defaults[attack]
    if isinstance(attack, FGSMConfig):
        return ResolvedAttack("fgsm", "linf", attack, True, 4)
    if isinstance(attack, PGDConfig):
        return ResolvedAttack("pgd", attack.norm, attack, True, attack.restarts * (3 * attack.steps + 1) + 1)
    if isinstance(attack, APGDConfig):
        return ResolvedAttack("apgd", attack.norm, attack, True, attack.restarts * 3 * (attack.steps + 1) + 1)
    if isinstance(attack, SquareConfig):
        return ResolvedAttack("square", attack.norm, attack, False, attack.n_queries)
    if isinstance(attack, TextAttackConfig):
        per_position = (attack.n_candidates if attack.candidate_ids is None else len(attack.candidate_ids)) + 2
        return ResolvedAttack("text", "edits", attack, False, per_position)
    raise InvalidConfigError(
        "attack must be 'fgsm', 'pgd', 'apgd', 'square', 'text' or one of FGSMConfig, PGDConfig, APGDConfig, "
        f"SquareConfig, TextAttackConfig; got {type(attack).__name__}."
    )


def attack_from_record(config: dict[str, Any]) -> ResolvedAttack:
    """Rebuild the attack of a result from its recorded ``config`` (``RobustnessResult.config``)."""
    settings = dict(config)
    name = settings.pop("attack", None)
    classes: dict[str, Callable[..., AttackConfig]] = {
        "fgsm": FGSMConfig,
        "pgd": PGDConfig,
        "apgd": APGDConfig,
        "square": SquareConfig,
    }
    try:
        if name == "text":
            if settings.get("candidate_ids") is not None:
                settings["candidate_ids"] = tuple(settings["candidate_ids"])
            return resolve_attack(TextAttackConfig(**settings))
        if name in classes:
            return resolve_attack(classes[name](eps=_PLACEHOLDER_EPS, **settings))
    except TypeError as exc:
        raise InvalidConfigError(f"The result's attack config {config!r} cannot be rebuilt: {exc}.") from None
    raise InvalidConfigError(f"The result names an unknown attack {name!r}; expected one of {', '.join(ATTACK_NAMES)}.")
