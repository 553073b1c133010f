"""Sanity checks on a robustness result: signs that the attack was weak or the gradients were masked.

An adaptive adversary is the rule (Carlini et al. 2019, 'On Evaluating Adversarial Robustness',
arXiv:1902.06705; Croce & Hein 2020, AutoAttack's flags): a robust accuracy only counts when the
attack demonstrably works on this model. Each check that fails adds a :class:`SanityFlag`:

================================  =====================================================================
``non_monotonic_epsilon``         robust accuracy rises with the budget by more than
                                  ``monotonic_tolerance`` plus one binomial standard error.
``unbroken_at_large_epsilon``     at an enormous budget (Linf ``(hi - lo) / 2``; L2 half the box
                                  diagonal) the reported attack leaves more than
                                  ``large_epsilon_max_accuracy`` of the checked samples correct.
``not_converged``                 a much stronger attack (PGD with ``convergence_steps`` steps and
                                  ``convergence_restarts`` restarts; Square with ``convergence_queries``
                                  on models without gradients) fools more than ``convergence_tolerance``
                                  of the checked samples that the reported attack did not.
``black_box_beats_white_box``     Square fools more than ``black_box_tolerance`` of the checked samples
                                  that the white-box attacks (the reported one and the strong PGD) did
                                  not.
``vanishing_gradients``           the input gradient of the margin ``z_y - max_{j != y} z_j`` is
                                  below ``gradient_tolerance`` (Linf) for more than
                                  ``vanishing_gradient_fraction`` of the checked samples.
``probabilities_as_logits``       every output row lies in ``[0, 1]`` and sums to 1 (within
                                  ``probability_tolerance``): softmax outputs saturate the loss.
``randomized_outputs``            the same inputs twice give logits differing by more than
                                  ``randomness_tolerance * (1 + |z|)``.
================================  =====================================================================

Sample-count checks (convergence, black-box) also need at least two samples, so one borderline sample
on a small subset never flags a result on its own. All checks except the monotonicity one run on a
seeded subset of up to ``subset_size`` clean-correct samples.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import Tensor

from evaluations.engine.common import (
    CancelCheck,
    EngineInputError,
    InvalidConfigError,
    ProgressCallback,
    check_cancelled,
    sha256_arrays,
)
from evaluations.engine.models.classifier import Classifier, TorchClassifier
from evaluations.engine.robustness._checks import as_dataset, check_device, max_epsilon
from evaluations.engine.robustness._registry import ResolvedAttack, attack_from_record, input_dtype, resolve_attack
from evaluations.engine.robustness.pgd import PGDConfig
from evaluations.engine.robustness.results import RobustnessResult, SanityFlag
from evaluations.engine.robustness.square import SquareConfig, margin

__all__ = [
    "BLACK_BOX_BEATS_WHITE_BOX",
    "NON_MONOTONIC_EPSILON",
    "NOT_CONVERGED",
    "PROBABILITIES_AS_LOGITS",
    "RANDOMIZED_OUTPUTS",
    "SANITY_CHECKS",
    "UNBROKEN_AT_LARGE_EPSILON",
    "VANISHING_GRADIENTS",
    "SanityConfig",
    "SanityFlag",
    "SanityReport",
    "run_sanity_checks",
    "sanity_report",
]

logger = logging.getLogger(__name__)

NON_MONOTONIC_EPSILON = "non_monotonic_epsilon"
UNBROKEN_AT_LARGE_EPSILON = "unbroken_at_large_epsilon"
NOT_CONVERGED = "not_converged"
BLACK_BOX_BEATS_WHITE_BOX = "black_box_beats_white_box"
VANISHING_GRADIENTS = "vanishing_gradients"
PROBABILITIES_AS_LOGITS = "probabilities_as_logits"
RANDOMIZED_OUTPUTS = "randomized_outputs"
SANITY_CHECKS = (
    NON_MONOTONIC_EPSILON,
    UNBROKEN_AT_LARGE_EPSILON,
    NOT_CONVERGED,
    BLACK_BOX_BEATS_WHITE_BOX,
    VANISHING_GRADIENTS,
    PROBABILITIES_AS_LOGITS,
    RANDOMIZED_OUTPUTS,
)
"""Codes of every check, in the order they run."""

_MIN_FLAGGED_SAMPLES = 2
_GRADIENT_BATCH = 256


def _non_negative_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0


@dataclass(frozen=True)
class SanityConfig:
    """Thresholds and costs of the sanity checks (see the module docstring for each rule).

    Attributes:
        subset_size: clean-correct samples (seeded choice) the model-querying checks use.
        monotonic_tolerance: absolute rise in robust accuracy tolerated between budgets, on top of one
            binomial standard error ``sqrt(a (1 - a) / N)``.
        large_epsilon: the 'enormous' budget; None means ``(hi - lo) / 2`` (Linf) or half the box diagonal (L2).
        large_epsilon_max_accuracy: highest robust accuracy accepted at ``large_epsilon``.
        convergence: run the convergence check (one strong attack per budget on the subset).
        convergence_steps, convergence_restarts: the strong white-box attack (PGD, early stop).
        convergence_queries: the strong black-box attack (Square) for models without gradients.
        convergence_tolerance: highest fraction of extra samples the strong attack may fool.
        black_box: run the black-box check (Square per budget on the subset; Linf only).
        black_box_queries: Square's query budget in that check.
        black_box_tolerance: highest fraction of samples Square may fool that the white-box attacks did not.
        gradient_tolerance: an input gradient with Linf norm at or below this counts as vanished.
        vanishing_gradient_fraction: highest fraction of samples allowed a vanished gradient.
        probability_tolerance: slack on ``[0, 1]`` and on row sums of 1 when spotting probabilities.
        randomness_tolerance: relative slack when comparing two evaluations of the same inputs.
    """

    subset_size: int = 128
    monotonic_tolerance: float = 0.02
    large_epsilon: float | None = None
    large_epsilon_max_accuracy: float = 0.05
    convergence: bool = True
    convergence_steps: int = 100
    convergence_restarts: int = 3
    convergence_queries: int = 2000
    convergence_tolerance: float = 0.05
    black_box: bool = True
    black_box_queries: int = 1000
    black_box_tolerance: float = 0.05
    gradient_tolerance: float = 1e-8
    vanishing_gradient_fraction: float = 0.1
    probability_tolerance: float = 1e-4
    randomness_tolerance: float = 1e-4

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "large_epsilon" and value is None:
                continue
            if item.name in ("convergence", "black_box"):
                if not isinstance(value, bool):
                    raise InvalidConfigError(f"{item.name} must be True or False; got {value!r}.")
            elif item.name in ("subset_size", "convergence_steps", "convergence_restarts"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InvalidConfigError(f"{item.name} must be an integer >= 1; got {value!r}.")
            elif item.name in ("convergence_queries", "black_box_queries"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                    raise InvalidConfigError(f"{item.name} must be an integer >= 2; got {value!r}.")
            elif not _non_negative_number(value):
                raise InvalidConfigError(f"{item.name} must be a finite number >= 0; got {value!r}.")
            else:
                object.__setattr__(self, item.name, float(value))
        if self.large_epsilon is not None and self.large_epsilon <= 0:
            raise InvalidConfigError(f"large_epsilon must be positive or None; got {self.large_epsilon!r}.")


@dataclass(frozen=True)
class SanityReport:
    """Flags of the failed checks, the checks that ran, and why the others were skipped."""

    flags: list[SanityFlag] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def reliable(self) -> bool:
        """True when no check failed."""
        return not self.flags


def run_sanity_checks(
    classifier: Classifier,
    x: np.ndarray | Tensor,
    y: np.ndarray | Tensor,
    result: RobustnessResult,
    *,
    seed: int,
    device: torch.device | str | None = None,
    config: SanityConfig | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> list[SanityFlag]:
    """The flags :func:`sanity_report` raises for ``result``; an empty list means every check passed."""
    return sanity_report(
        classifier,
        x,
        y,
        result,
        seed=seed,
        device=device,
        config=config,
        progress=progress,
        should_cancel=should_cancel,
    ).flags


def sanity_report(
    classifier: Classifier,
    x: np.ndarray | Tensor,
    y: np.ndarray | Tensor,
    result: RobustnessResult,
    *,
    seed: int,
    device: torch.device | str | None = None,
    config: SanityConfig | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> SanityReport:
    """Run every applicable sanity check on ``result``, computed by ``robustness_sweep`` on ``(x, y)``.

    Arguments:
        classifier: the model the result was computed on.
        x, y: the same data (checked against ``result.data_sha256``).
        result: the robustness curve to check; its recorded attack config is re-run on a subset.
        seed: seeds the subset and the attacks the checks run.
        device: where to run; defaults to, and must match, ``classifier.device``.
        config: :class:`SanityConfig`; None means the defaults.
        progress: called with the fraction of checks done (ends at 1.0).
        should_cancel: checked between checks; when it returns True, :class:`Cancelled` is raised.
    """
    config = config or SanityConfig()
    if not isinstance(config, SanityConfig):
        raise InvalidConfigError(f"config must be a SanityConfig or None; got {type(config).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    resolved = attack_from_record(result.config)
    model = resolved.check_model(classifier)
    run_device = check_device(model, device)
    x_t, y_t = as_dataset(model, x, y, input_dtype(model))
    if sha256_arrays(x_t, y_t) != result.data_sha256:
        raise EngineInputError(
            "x and y are not the data this result was computed on (their hash differs from "
            "result.data_sha256); pass the same arrays that went into robustness_sweep."
        )
    return _Checks(model, resolved, x_t, y_t, result, seed, run_device, config, progress, should_cancel).run()


class _Checks:
    """One sanity-check run: the subset, the shared attack results per budget, and the checks."""

    def __init__(
        self,
        model: Classifier,
        resolved: ResolvedAttack,
        x: Tensor,
        y: Tensor,
        result: RobustnessResult,
        seed: int,
        device: torch.device,
        config: SanityConfig,
        progress: ProgressCallback | None,
        should_cancel: CancelCheck | None,
    ) -> None:
        self.model, self.resolved, self.result, self.seed = model, resolved, result, seed
        self.device, self.config, self.progress, self.should_cancel = device, config, progress, should_cancel
        self.white_box_model = isinstance(model, TorchClassifier) and model.differentiable
        self.report = SanityReport()
        self._comparisons_run: list[str] = []
        self.x, self.y = self._subset(x, y)
        self.n_checked = self.x.shape[0]
        self._seed_counter = 0

    # --- plumbing ---------------------------------------------------------------------------------

    def _subset(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Up to ``subset_size`` clean-correct samples, chosen with a seeded permutation, on the device."""
        generator = torch.Generator().manual_seed(self.seed)
        pool = torch.randperm(x.shape[0], generator=generator)[: 4 * self.config.subset_size]
        xs, ys = x[pool].to(self.device), y[pool].to(self.device)
        correct = self._predict(xs) == ys
        chosen = correct.nonzero().squeeze(1)[: self.config.subset_size]
        return xs[chosen], ys[chosen]

    def _predict(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return torch.cat([self.model.logits(b).argmax(dim=1).to(x.device) for b in x.split(_GRADIENT_BATCH)])

    def _next_seed(self) -> int:
        self._seed_counter += 1
        return int(np.random.SeedSequence([self.seed, 7919, self._seed_counter]).generate_state(1)[0])

    def _flag(self, code: str, message: str, **details: object) -> None:
        self.report.flags.append(SanityFlag(code=code, message=message, details=details))

    def _skip(self, code: str, reason: str) -> None:
        self.report.skipped[code] = reason

    def run(self) -> SanityReport:
        """Run the applicable checks in :data:`SANITY_CHECKS` order, reporting progress after each step."""
        positive = [p.epsilon for p in self.result.points if p.epsilon > 0]
        steps: list[tuple[str, Callable[[], None]]] = [(NON_MONOTONIC_EPSILON, self.check_monotonic)]
        attack_checks = self.n_checked > 0
        if not attack_checks:
            for code in (UNBROKEN_AT_LARGE_EPSILON, NOT_CONVERGED, BLACK_BOX_BEATS_WHITE_BOX):
                self._skip(code, "the model classifies none of the checked samples correctly")
        elif self.resolved.tokens:
            for code in (UNBROKEN_AT_LARGE_EPSILON, NOT_CONVERGED, BLACK_BOX_BEATS_WHITE_BOX):
                self._skip(code, "not defined for token (text) attacks")
        else:
            steps.append((UNBROKEN_AT_LARGE_EPSILON, self.check_large_epsilon))
            compare = self._plan_comparisons()
            budgets = positive if compare else []
            steps += [(f"budget:{eps:g}", lambda eps=eps: self.compare_at(eps)) for eps in budgets]
            if compare and not positive:
                for code in compare:
                    self._skip(code, "the result has no positive budget")
        if self.n_checked == 0:
            self._skip(VANISHING_GRADIENTS, "no checked samples")
        elif not self.white_box_model:
            self._skip(VANISHING_GRADIENTS, "the model gives no input gradients")
        else:
            steps.append((VANISHING_GRADIENTS, self.check_gradients))
        if self.n_checked == 0:
            self._skip(PROBABILITIES_AS_LOGITS, "no checked samples")
            self._skip(RANDOMIZED_OUTPUTS, "no checked samples")
        else:
            steps += [(PROBABILITIES_AS_LOGITS, self.check_probabilities), (RANDOMIZED_OUTPUTS, self.check_randomized)]

        for index, (name, step) in enumerate(steps, start=1):
            check_cancelled(self.should_cancel)
            step()
            if name in SANITY_CHECKS:
                self.report.checks.append(name)
            if self.progress is not None:
                self.progress(index / len(steps))
        for code in self._comparisons_run:
            self.report.checks.append(code)
        self.report.checks.sort(key=SANITY_CHECKS.index)
        # One flag per check: keep the worst budget's.
        worst: dict[str, SanityFlag] = {}
        for flag in self.report.flags:
            if flag.code not in worst or flag.details.get("excess", 0) > worst[flag.code].details.get("excess", 0):
                worst[flag.code] = flag
        self.report.flags[:] = sorted(worst.values(), key=lambda f: SANITY_CHECKS.index(f.code))
        for flag in self.report.flags:
            logger.warning("sanity check %s failed: %s", flag.code, flag.message)
        return self.report

    def _plan_comparisons(self) -> list[str]:
        """Which per-budget comparisons apply; records the skipped ones."""
        cfg = self.config
        if cfg.convergence:
            self._comparisons_run.append(NOT_CONVERGED)
        else:
            self._skip(NOT_CONVERGED, "turned off in the SanityConfig")
        if not cfg.black_box:
            self._skip(BLACK_BOX_BEATS_WHITE_BOX, "turned off in the SanityConfig")
        elif not self.white_box_model:
            self._skip(BLACK_BOX_BEATS_WHITE_BOX, "the model gives no input gradients, so no white-box attack ran")
        elif self.resolved.norm != "linf":
            self._skip(BLACK_BOX_BEATS_WHITE_BOX, "Square is implemented for the Linf norm only")
        else:
            self._comparisons_run.append(BLACK_BOX_BEATS_WHITE_BOX)
        return list(self._comparisons_run)

    # --- the checks -------------------------------------------------------------------------------

    def check_monotonic(self) -> None:
        """Robust accuracy must not rise with the budget beyond tolerance."""
        points = sorted(self.result.points, key=lambda p: p.epsilon)
        n = max(self.result.n_samples, 1)
        for i, low in enumerate(points):
            for high in points[i + 1 :]:
                if high.epsilon <= low.epsilon:
                    continue
                a = low.robust_accuracy
                tolerance = self.config.monotonic_tolerance + math.sqrt(a * (1 - a) / n)
                rise = high.robust_accuracy - a
                if rise > tolerance:
                    self._flag(
                        NON_MONOTONIC_EPSILON,
                        f"possible gradient masking: robust accuracy rises from {a:.2f} at eps={low.epsilon:g} "
                        f"to {high.robust_accuracy:.2f} at eps={high.epsilon:g}; a stronger attack can always "
                        "reuse the smaller budget's examples.",
                        low_epsilon=low.epsilon,
                        high_epsilon=high.epsilon,
                        low_accuracy=a,
                        high_accuracy=high.robust_accuracy,
                        tolerance=tolerance,
                        excess=rise - tolerance,
                    )

    def check_large_epsilon(self) -> None:
        """At an enormous budget the reported attack must break (nearly) every sample."""
        norm = self.resolved.norm
        limit = max_epsilon(self.model, norm)
        eps = self.config.large_epsilon if self.config.large_epsilon is not None else limit / 2
        eps = min(eps, limit)
        reached = [p for p in self.result.points if p.epsilon >= eps]
        if reached:
            point = min(reached, key=lambda p: p.epsilon)
            accuracy, eps, where = point.robust_accuracy, point.epsilon, "in the result"
        else:
            adversarial = self._attack(self.resolved, eps, self.x, self.y)
            accuracy = float((self._predict(adversarial) == self.y).double().mean())
            where = f"on {self.n_checked} clean-correct samples"
        threshold = self.config.large_epsilon_max_accuracy
        if accuracy > threshold:
            self._flag(
                UNBROKEN_AT_LARGE_EPSILON,
                f"the {self.resolved.name} attack leaves robust accuracy at {accuracy:.2f} ({where}) at "
                f"eps={eps:g}, a budget that should break nearly every input (expected <= {threshold:g}): "
                "the attack is broken or the model masks its gradients.",
                epsilon=eps,
                robust_accuracy=accuracy,
                threshold=threshold,
                excess=accuracy - threshold,
            )

    def compare_at(self, eps: float) -> None:
        """Convergence and black-box checks at one budget, sharing the attack runs."""
        reported = self._fooled(self.resolved, eps, self.x, self.y)
        is_square = self.resolved.name == "square"
        if self.white_box_model:
            remaining = ~reported if self.resolved.white_box else torch.ones_like(reported)
            strong_attack = self._strong_white_box(eps)
            strong = self._fooled_on(strong_attack, eps, remaining)
            white = strong | (reported if self.resolved.white_box else torch.zeros_like(reported))
            strong_name = f"PGD-{self.config.convergence_steps} with {self.config.convergence_restarts} restart(s)"
        else:
            remaining = ~reported
            strong_attack = self._strong_black_box()
            strong = self._fooled_on(strong_attack, eps, remaining)
            white = None
            strong_name = f"Square with {self.config.convergence_queries} queries"
        m = self.n_checked

        if NOT_CONVERGED in self._comparisons_run:
            extra = int((strong & ~reported).sum())
            fraction = extra / m
            if fraction > self.config.convergence_tolerance and extra >= _MIN_FLAGGED_SAMPLES:
                self._flag(
                    NOT_CONVERGED,
                    f"the {self.resolved.name} attack has not converged at eps={eps:g}: {strong_name} fools "
                    f"{extra} of {m} checked samples ({fraction:.0%}) that it did not, so the reported robust "
                    "accuracy is optimistic; use more steps or restarts (or APGD).",
                    epsilon=eps,
                    extra_fooled=extra,
                    checked=m,
                    tolerance=self.config.convergence_tolerance,
                    excess=fraction - self.config.convergence_tolerance,
                )

        if BLACK_BOX_BEATS_WHITE_BOX in self._comparisons_run and white is not None:
            if is_square:
                black = reported
            else:
                black = self._fooled_on(self._black_box(), eps, ~white)
            extra = int((black & ~white).sum())
            fraction = extra / m
            if fraction > self.config.black_box_tolerance and extra >= _MIN_FLAGGED_SAMPLES:
                self._flag(
                    BLACK_BOX_BEATS_WHITE_BOX,
                    f"possible gradient masking: the black-box Square attack fools {extra} of {m} checked "
                    f"samples ({fraction:.0%}) at eps={eps:g} that the white-box attacks could not.",
                    epsilon=eps,
                    extra_fooled=extra,
                    checked=m,
                    tolerance=self.config.black_box_tolerance,
                    excess=fraction - self.config.black_box_tolerance,
                )

    def check_gradients(self) -> None:
        """The input gradient of the margin must not vanish on more than a small fraction of samples."""
        model = self.model
        assert isinstance(model, TorchClassifier)
        norms = []
        with model.frozen_parameters():
            for xb, yb in zip(self.x.split(_GRADIENT_BATCH), self.y.split(_GRADIENT_BATCH), strict=True):
                xb = xb.detach().clone().requires_grad_(True)
                logits = model.logits(xb)
                if not logits.requires_grad:
                    norms.append(torch.zeros(xb.shape[0], device=xb.device))
                    continue
                (grad,) = torch.autograd.grad(margin(logits, yb).sum(), xb, allow_unused=True)
                if grad is None:
                    norms.append(torch.zeros(xb.shape[0], device=xb.device))
                else:
                    norms.append(torch.nan_to_num(grad, nan=0.0).reshape(xb.shape[0], -1).abs().amax(dim=1))
        vanished = int((torch.cat(norms) <= self.config.gradient_tolerance).sum())
        fraction = vanished / self.n_checked
        if fraction > self.config.vanishing_gradient_fraction:
            self._flag(
                VANISHING_GRADIENTS,
                f"possible gradient masking: the input gradient is zero or below "
                f"{self.config.gradient_tolerance:g} for {vanished} of {self.n_checked} checked samples "
                f"({fraction:.0%}); gradient attacks cannot move these inputs (non-differentiable layers such as "
                "rounding or quantization?). Attack through a differentiable approximation (BPDA) or use Square.",
                vanishing=vanished,
                checked=self.n_checked,
                tolerance=self.config.vanishing_gradient_fraction,
                excess=fraction - self.config.vanishing_gradient_fraction,
            )

    def check_probabilities(self) -> None:
        """Outputs that are rows of probabilities instead of logits."""
        logits = self._logits(self.x)
        tol = self.config.probability_tolerance
        in_range = bool(((logits >= -tol) & (logits <= 1 + tol)).all())
        sums = logits.double().sum(dim=1)
        if in_range and bool(((sums - 1).abs() <= tol).all()):
            self._flag(
                PROBABILITIES_AS_LOGITS,
                "the model's outputs are probabilities, not logits (every row lies in [0, 1] and sums to 1): "
                "softmax saturation masks the gradients of the cross-entropy loss. Return the pre-softmax "
                "scores (or their log) instead.",
                checked=self.n_checked,
            )

    def check_randomized(self) -> None:
        """The same inputs twice must give the same scores."""
        first, second = self._logits(self.x), self._logits(self.x)
        difference = (first - second).abs()
        allowed = self.config.randomness_tolerance * (1 + first.abs())
        if bool((difference > allowed).any()):
            changed = int((difference > allowed).any(dim=1).sum())
            self._flag(
                RANDOMIZED_OUTPUTS,
                f"the model is randomized: evaluating the same inputs twice changed the scores of {changed} of "
                f"{self.n_checked} samples (by up to {float(difference.max()):.3g}). Put it in eval mode, or "
                "evaluate it with an expectation-over-transformation (EOT) attack.",
                changed=changed,
                checked=self.n_checked,
                max_difference=float(difference.max()),
            )

    # --- attacks on the subset --------------------------------------------------------------------

    def _logits(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return torch.cat([self.model.logits(b).to(x.device).float() for b in x.split(_GRADIENT_BATCH)])

    def _attack(self, resolved: ResolvedAttack, eps: float, x: Tensor, y: Tensor) -> Tensor:
        """Adversarial inputs from ``resolved`` at ``eps``, in batches."""
        config = resolved.make_config(eps)
        out = [
            resolved.run(self.model, xb, yb, config, seed=self._next_seed(), device=self.device).adversarial
            for xb, yb in zip(x.split(_GRADIENT_BATCH), y.split(_GRADIENT_BATCH), strict=True)
        ]
        return torch.cat(out)

    def _fooled(self, resolved: ResolvedAttack, eps: float, x: Tensor, y: Tensor) -> Tensor:
        return self._predict(self._attack(resolved, eps, x, y)) != y

    def _fooled_on(self, resolved: ResolvedAttack, eps: float, rows: Tensor) -> Tensor:
        """Success of ``resolved`` on the checked samples where ``rows`` is True (False elsewhere)."""
        fooled = torch.zeros(self.n_checked, dtype=torch.bool, device=self.device)
        index = rows.nonzero().squeeze(1)
        if index.numel():
            fooled[index] = self._fooled(resolved, eps, self.x[index], self.y[index])
        return fooled

    def _strong_white_box(self, eps: float) -> ResolvedAttack:
        return resolve_attack(
            PGDConfig(
                eps=eps,
                steps=self.config.convergence_steps,
                restarts=self.config.convergence_restarts,
                norm=self.resolved.norm,  # type: ignore[arg-type]
                early_stop=True,
            )
        )

    def _strong_black_box(self) -> ResolvedAttack:
        p_init = getattr(self.resolved.template, "p_init", SquareConfig.p_init)
        return resolve_attack(SquareConfig(eps=1.0, n_queries=self.config.convergence_queries, p_init=p_init))

    def _black_box(self) -> ResolvedAttack:
        return resolve_attack(SquareConfig(eps=1.0, n_queries=self.config.black_box_queries))
