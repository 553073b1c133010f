"""Model extraction: train a surrogate on a victim's answers and measure how faithfully it copies the victim.

:func:`extract` runs one attacker strategy (:mod:`.strategies`) against a :class:`~.victim.Victim`
up to a query budget, and at every budget of ``config.budgets`` trains a fresh surrogate on all answers
so far and records:

* **fidelity**: top-1 agreement between surrogate and victim on held-out inputs (Jagielski et al.,
  USENIX Security 2020, "High Accuracy and High Fidelity Extraction of Neural Networks");
* **accuracy**: the surrogate's accuracy on the held-out labels;
* **queries used** (attack queries; evaluation queries are counted apart).

The surrogate learns from soft labels (the victim's probability vectors, or top-k mass) when the victim
reveals them and ``config.soft_labels`` is on, else from hard labels, so label-only and rounded victims
work too. Finally adversarial examples crafted on the surrogate (PGD or FGSM from
:mod:`evaluations.engine.robustness`) measure **transfer attack success**: the fraction of held-out
inputs, correctly classified by the victim, whose victim label they change (Papernot et al. 2017).
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from evaluations.engine.common import (
    CancelCheck,
    Cancelled,
    EngineInputError,
    InvalidConfigError,
    LabelOutOfRangeError,
    ProgressCallback,
    ShapeMismatchError,
    check_cancelled,
    library_versions,
    resolve_device,
    sha256_arrays,
)
from evaluations.engine.extraction._surrogate import (
    SurrogateTraining,
    as_classifier,
    build_surrogate,
    fit_surrogate,
    predict_probabilities,
)
from evaluations.engine.extraction.results import BudgetPoint, ExtractionCancelled, ExtractionResult, TransferResult
from evaluations.engine.extraction.strategies import Strategy
from evaluations.engine.extraction.victim import QueryBudgetExhaustedError, Victim, VictimAnswer
from evaluations.engine.models import get_architecture
from evaluations.engine.robustness import FGSMConfig, PGDConfig, fgsm, pgd

__all__ = [
    "BudgetPoint",
    "ExtractionCancelled",
    "ExtractionConfig",
    "ExtractionResult",
    "TransferResult",
    "extract",
]

logger = logging.getLogger(__name__)

DEFAULT_BUDGETS: tuple[int, ...] = (50, 100, 200, 500, 1000, 2000)


@dataclass(frozen=True)
class ExtractionConfig:
    """Settings shared by every strategy.

    Attributes:
        budgets: increasing attack-query budgets at which the surrogate is trained and measured; the
            last one is the total budget.
        surrogate: a registered architecture (``'mlp'``, ``'small_cnn'``, ...); input and class sizes
            are filled in from the victim.
        surrogate_hyperparams: extra constructor arguments (e.g. ``{"hidden": 128}``).
        epochs, min_steps, batch_size, lr: the surrogate's Adam training (``max(epochs * batches,
            min_steps)`` steps, so tiny budgets still get trained).
        soft_labels: learn from revealed probabilities / top-k mass; False uses the labels only.
        query_batch_size: inputs per call to ``victim.query``.
        transfer_attack: ``'pgd'``, ``'fgsm'`` or None (skip the transfer measurement).
        transfer_eps: Linf budget of the transfer attack, in input units.
        transfer_steps: PGD steps.
        transfer_samples: at most this many held-out inputs (those the victim classifies correctly).
    """

    budgets: tuple[int, ...] = DEFAULT_BUDGETS
    surrogate: str = "mlp"
    surrogate_hyperparams: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = 30
    min_steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    soft_labels: bool = True
    query_batch_size: int = 256
    transfer_attack: Literal["pgd", "fgsm"] | None = "pgd"
    transfer_eps: float = 0.1
    transfer_steps: int = 20
    transfer_samples: int = 200

    def __post_init__(self) -> None:
        budgets = self.budgets
        if isinstance(budgets, int | str) or not budgets:
            raise InvalidConfigError(f"budgets must be a non-empty sequence of query counts; got {budgets!r}.")
        budgets = tuple(budgets)
        for budget in budgets:
            if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
                raise InvalidConfigError(
                    f"Every budget must be an integer >= 1 (a budget of 0 queries extracts nothing); got {budget!r}."
                )
        if any(b >= c for b, c in zip(budgets, budgets[1:], strict=False)):
            raise InvalidConfigError(f"budgets must be strictly increasing, e.g. (50, 100, 200); got {budgets}.")
        object.__setattr__(self, "budgets", budgets)
        get_architecture(self.surrogate)  # raises ArchitectureError naming the known ones
        object.__setattr__(self, "surrogate_hyperparams", dict(self.surrogate_hyperparams))
        for name in ("epochs", "batch_size", "query_batch_size", "transfer_steps", "transfer_samples"):
            _check_int(name, getattr(self, name), 1)
        _check_int("min_steps", self.min_steps, 0)
        for name in ("lr", "transfer_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise InvalidConfigError(f"{name} must be a positive number; got {value!r}.")
        if not isinstance(self.soft_labels, bool):
            raise InvalidConfigError(f"soft_labels must be True or False; got {self.soft_labels!r}.")
        if self.transfer_attack not in ("pgd", "fgsm", None):
            raise InvalidConfigError(f"transfer_attack must be 'pgd', 'fgsm' or None; got {self.transfer_attack!r}.")

    @property
    def training(self) -> SurrogateTraining:
        """The surrogate's optimiser settings."""
        return SurrogateTraining(epochs=self.epochs, min_steps=self.min_steps, batch_size=self.batch_size, lr=self.lr)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["budgets"] = list(self.budgets)
        return data


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidConfigError(f"{name} must be an integer >= {low}; got {value!r}.")


# --- the run --------------------------------------------------------------------------------------


class _Run:
    """Answered queries so far and a surrogate cache; the planners' :class:`PlanContext`."""

    def __init__(
        self,
        victim: Victim,
        config: ExtractionConfig,
        pool: Tensor | None,
        seed: int,
        device: torch.device,
    ) -> None:
        self.victim = victim
        self.config = config
        self.pool = pool
        self.seed = seed
        self.device = device
        self.input_shape = victim.input_shape
        self.bounds = victim.bounds
        self.input_dtype = victim.input_dtype
        self._x: list[Tensor] = []
        self._answers: list[VictimAnswer] = []
        self._cache: tuple[int, nn.Module] | None = None
        self._queried: Tensor = torch.empty((0, *victim.input_shape), dtype=victim.input_dtype)
        self._labels = np.empty(0, dtype=np.int64)
        self.soft = False

    @property
    def used(self) -> int:
        return int(self._queried.shape[0])

    @property
    def queried(self) -> Tensor:
        return self._queried

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def add(self, x: Tensor, answer: VictimAnswer) -> None:
        self._x.append(x)
        self._answers.append(answer)
        self._queried = torch.cat([self._queried, x.to(self.input_dtype)])
        self._labels = np.concatenate([self._labels, answer.labels])

    def targets(self) -> Tensor:
        answer = VictimAnswer.concatenate(self._answers)
        self.soft = self.config.soft_labels and answer.output != "label"
        if self.soft:
            targets = answer.soft_targets(self.victim.num_classes)
        else:
            targets = np.zeros((len(answer), self.victim.num_classes))
            targets[np.arange(len(answer)), answer.labels] = 1.0
        return torch.as_tensor(targets, dtype=torch.float32)

    def surrogate(self) -> nn.Module:
        """A surrogate trained on every answer so far (cached until more answers arrive)."""
        if self._cache is not None and self._cache[0] == self.used:
            return self._cache[1]
        seed = int(np.random.SeedSequence([self.seed, self.used]).generate_state(1)[0])
        module = build_surrogate(
            self.config.surrogate, self.config.surrogate_hyperparams, self.input_shape, self.victim.num_classes, seed
        )
        fit_surrogate(module, self._queried, self.targets(), self.config.training, seed=seed, device=self.device)
        self._cache = (self.used, module)
        return module


def extract(
    victim: Victim,
    strategy: Strategy,
    x_eval: Tensor,
    y_eval: Tensor,
    config: ExtractionConfig | None = None,
    *,
    pool: Tensor | None = None,
    evaluation_victim: Victim | None = None,
    seed: int,
    device: torch.device | str | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> ExtractionResult:
    """Run ``strategy`` against ``victim`` up to ``config.budgets[-1]`` queries; return the fidelity curve.

    Arguments:
        victim: the black box; its ``queries_used`` grows by the attack and evaluation queries.
        strategy: :class:`RandomQueries`, :class:`NaturalPool`, :class:`JacobianAugmentation` or
            :class:`ActiveLearning`.
        x_eval: held-out inputs ``(M, *input_shape)`` to measure fidelity and accuracy on (queried
            once, counted as evaluation queries).
        y_eval: their true labels, int64 ``(M,)``.
        config: :class:`ExtractionConfig` (defaults when None).
        pool: the attacker's public inputs ``(P, *input_shape)``; needed by the natural-pool and
            active strategies, optional seed set for Jacobian augmentation.
        evaluation_victim: where the evaluation queries (held-out inputs, transfer examples) go; defaults
            to ``victim``. Pass a separate handle to the same model when ``victim`` is monitored
            (:class:`~.detection.MonitoredVictim`), so only attack traffic reaches the detector.
        seed: seeds query synthesis, pool order and surrogate initialisation and training.
        device: where the surrogate trains (default CPU).
        progress: called with the fraction done after each query batch and budget.
        should_cancel: checked between query batches; on cancellation :class:`ExtractionCancelled` is
            raised carrying the partial result.

    Raises:
        QueryBudgetExhaustedError: the victim's budget cannot cover the evaluation queries and one attack query.
        ShapeMismatchError: ``x_eval``, ``y_eval`` or ``pool`` do not fit the victim's input shape.
        VictimUnavailableError, VictimResponseError: the victim failed to answer.
    """
    started = time.perf_counter()
    config = config or ExtractionConfig()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    run_device = resolve_device(device)
    x_eval, y_eval = _check_eval(victim, x_eval, y_eval)
    if pool is not None:
        pool = _check_inputs(victim, pool, "pool")
    elif strategy.needs_pool:
        raise EngineInputError(
            f"The {strategy.name} strategy queries a pool of public inputs; pass pool=(P, "
            f"{', '.join(map(str, victim.input_shape))}) inputs."
        )
    _check_surrogate(config, victim)
    oracle = evaluation_victim or victim
    if oracle.input_shape != victim.input_shape or oracle.num_classes != victim.num_classes:
        raise ShapeMismatchError("evaluation_victim must take the same inputs and classes as victim.")
    needed = x_eval.shape[0] + (1 if oracle is victim else 0)
    if oracle.remaining is not None and oracle.remaining < needed:
        raise QueryBudgetExhaustedError(
            f"The victim's query budget has {oracle.remaining} queries left, but measuring fidelity needs "
            f"{x_eval.shape[0]} evaluation queries plus at least one attack query; raise max_queries or pass fewer "
            "held-out inputs."
        )
    if victim.remaining is not None and victim.remaining < 1:
        raise QueryBudgetExhaustedError(
            f"The victim's query budget is used up ({victim.queries_used} of {victim.max_queries}); raise max_queries."
        )

    before = victim.queries_used + (oracle.queries_used if oracle is not victim else 0)
    eval_answer = oracle.query(x_eval)
    victim_labels = eval_answer.labels
    run = _Run(victim, config, pool, seed, run_device)
    planner = strategy.planner(seed)
    total = config.budgets[-1]
    curve: list[BudgetPoint] = []
    stopped: str | None = None
    attack_share = 0.9 if config.transfer_attack else 1.0

    def result(*, complete: bool, transfer: TransferResult | None = None) -> ExtractionResult:
        return ExtractionResult(
            strategy=strategy.to_dict(),
            config=config.to_dict(),
            curve=list(curve),
            queries_used=run.used,
            evaluation_queries=victim.queries_used
            + (oracle.queries_used if oracle is not victim else 0)
            - before
            - run.used,
            victim=victim.describe(),
            victim_output=eval_answer.output,
            soft_labels_used=run.soft,
            victim_accuracy=float((victim_labels == y_eval.numpy()).mean()),
            transfer=transfer,
            complete=complete,
            stopped_reason=stopped,
            n_eval=int(x_eval.shape[0]),
            seed=seed,
            device=str(run_device),
            eval_sha256=sha256_arrays(x_eval, y_eval),
            pool_sha256=None if pool is None else sha256_arrays(pool),
            queries_sha256=sha256_arrays(run.queried) if run.used else None,
            library_versions=library_versions(),
            seconds=time.perf_counter() - started,
        )

    def measure(budget: int) -> None:
        point_started = time.perf_counter()
        probs = predict_probabilities(run.surrogate(), x_eval, device=run_device)
        predicted = probs.argmax(axis=1)
        curve.append(
            BudgetPoint(
                budget=budget,
                queries=run.used,
                fidelity=float((predicted == victim_labels).mean()),
                accuracy=float((predicted == y_eval.numpy()).mean()),
                seconds=time.perf_counter() - point_started,
            )
        )
        logger.debug("extraction %s: %d queries, fidelity %.3f", strategy.name, run.used, curve[-1].fidelity)

    try:
        for budget in config.budgets:
            while run.used < budget:
                check_cancelled(should_cancel)
                want = min(budget - run.used, config.query_batch_size)
                if victim.remaining is not None:
                    want = min(want, victim.remaining)
                if want == 0:
                    stopped = f"the victim's query budget ran out after {run.used} attack queries"
                    break
                x = planner.propose(want, run)
                if x is None or x.shape[0] == 0:
                    stopped = f"the attacker's pool was used up after {run.used} queries"
                    break
                run.add(x, victim.query(x))
                if progress is not None:
                    progress(attack_share * run.used / total)
            if stopped:
                break
            measure(budget)
        if stopped and run.used and (not curve or curve[-1].queries < run.used):
            measure(run.used)
        check_cancelled(should_cancel)
    except Cancelled:
        stopped = f"cancelled after {run.used} attack queries"
        raise ExtractionCancelled(
            f"The extraction run was cancelled after {run.used} attack queries.", partial=result(complete=False)
        ) from None

    transfer = None
    if config.transfer_attack and run.used:
        transfer = _transfer(run, oracle, x_eval, y_eval, victim_labels, config, seed)
    if progress is not None:
        progress(1.0)
    return result(complete=stopped is None, transfer=transfer)


def _transfer(
    run: _Run,
    victim: Victim,
    x_eval: Tensor,
    y_eval: Tensor,
    victim_labels: np.ndarray,
    config: ExtractionConfig,
    seed: int,
) -> TransferResult | None:
    """Craft adversarial examples on the surrogate and count how many also fool the victim."""
    steps = config.transfer_steps if config.transfer_attack == "pgd" else None
    if not victim.input_dtype.is_floating_point:
        return None  # no input gradients on token ids
    correct = np.flatnonzero(victim_labels == y_eval.numpy())[: config.transfer_samples]
    if victim.remaining is not None:
        correct = correct[: max(victim.remaining, 0)]
    if correct.size == 0:
        return TransferResult(config.transfer_attack or "", config.transfer_eps, steps, 0, None, None, 0)
    eps = min(config.transfer_eps, victim.bounds[1] - victim.bounds[0])
    surrogate = as_classifier(run.surrogate(), victim.input_shape, victim.bounds, victim.num_classes, run.device)
    index = torch.as_tensor(correct)
    x = x_eval[index].to(torch.float32)
    y = torch.as_tensor(victim_labels[correct], dtype=torch.int64)
    if config.transfer_attack == "pgd":
        x_adv = pgd(surrogate, x, y, PGDConfig(eps=eps, steps=config.transfer_steps), seed=seed)
    else:
        x_adv = fgsm(surrogate, x, y, FGSMConfig(eps=eps))
    x_adv = x_adv.detach().cpu()
    fooled_surrogate = surrogate.predict(x_adv).numpy() != y.numpy()
    answer = victim.query(x_adv)
    return TransferResult(
        attack=config.transfer_attack or "",
        eps=eps,
        steps=steps,
        n_samples=int(correct.size),
        success_rate=float((answer.labels != y.numpy()).mean()),
        surrogate_success_rate=float(fooled_surrogate.mean()),
        queries=int(correct.size),
    )


def _check_surrogate(config: ExtractionConfig, victim: Victim) -> None:
    """The surrogate must read what the victim reads: token ids or float inputs."""
    tokens = not victim.input_dtype.is_floating_point
    if tokens != (not get_architecture(config.surrogate).input_dtype.is_floating_point):
        kind, fit = ("token ids", "'text_embeddingbag'") if tokens else ("float inputs", "'mlp' or 'small_cnn'")
        raise EngineInputError(
            f"The victim takes {kind} but the surrogate {config.surrogate!r} does not; use a surrogate such as {fit}."
        )


def _check_inputs(victim: Victim, x: Any, name: str) -> Tensor:
    tensor = torch.as_tensor(x).detach().cpu()
    if tensor.dim() != len(victim.input_shape) + 1 or tuple(tensor.shape[1:]) != victim.input_shape:
        raise ShapeMismatchError(
            f"{name} has shape {tuple(tensor.shape)} but the victim takes (N, "
            f"{', '.join(map(str, victim.input_shape))}); reshape it to the victim's input shape."
        )
    if tensor.shape[0] == 0:
        raise EngineInputError(f"{name} is empty; pass at least one input.")
    return tensor.to(victim.input_dtype)


def _check_eval(victim: Victim, x: Any, y: Any) -> tuple[Tensor, Tensor]:
    x_t = _check_inputs(victim, x, "x_eval")
    y_t = torch.as_tensor(y).detach().cpu()
    if y_t.shape != (x_t.shape[0],):
        raise ShapeMismatchError(f"y_eval must have shape ({x_t.shape[0]},) to match x_eval; got {tuple(y_t.shape)}.")
    y_t = y_t.to(torch.int64)
    if int(y_t.min()) < 0 or int(y_t.max()) >= victim.num_classes:
        raise LabelOutOfRangeError(
            f"y_eval must hold labels in [0, {victim.num_classes}); got {int(y_t.min())}..{int(y_t.max())}."
        )
    return x_t, y_t
