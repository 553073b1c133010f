"""Robustness curve: run one attack at several budgets over a dataset, in batches, then sanity-check it."""

from __future__ import annotations

import dataclasses
import logging
import numbers
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from evaluations.engine.common import (
    CancelCheck,
    EngineInputError,
    InvalidConfigError,
    ProgressCallback,
    check_cancelled,
    library_versions,
    sha256_arrays,
)
from evaluations.engine.models.classifier import Classifier
from evaluations.engine.robustness._checks import as_dataset, check_device
from evaluations.engine.robustness._registry import AttackSpec, ResolvedAttack, input_dtype, resolve_attack
from evaluations.engine.robustness.pgd import PGDConfig
from evaluations.engine.robustness.results import AdversarialSample, EpsilonResult, RobustnessResult
from evaluations.engine.robustness.sanity import SanityConfig, sanity_report

__all__ = ["AttackSpec", "robustness_sweep"]

logger = logging.getLogger(__name__)

SANITY_SHARE = 0.15
"""Fraction of the progress bar given to the sanity checks when they run."""


def _check_epsilons(classifier: Classifier, epsilons: Sequence[float], resolved: ResolvedAttack) -> list[float]:
    """Budgets as floats, each within the attack's valid range (0 allowed)."""
    values = list(epsilons)
    if not values:
        raise EngineInputError("epsilons is empty; pass at least one budget, e.g. [0, 0.05, 0.1].")
    for eps in values:
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
            raise InvalidConfigError(f"epsilons must be numbers; got {eps!r}.")
    return [resolved.check_budget(float(eps), classifier) for eps in values]


def _per_class_accuracy(correct: Tensor, y: Tensor, num_classes: int) -> list[float | None]:
    """Accuracy per class; None for classes absent from ``y``."""
    totals = torch.bincount(y, minlength=num_classes)
    hits = torch.bincount(y, weights=correct.to(torch.float64), minlength=num_classes)
    return [float(hits[c] / totals[c]) if totals[c] > 0 else None for c in range(num_classes)]


def _batch_seed(seed: int, eps_index: int, batch_index: int) -> int:
    """Independent, reproducible seed for one (budget, batch) pair."""
    return int(np.random.SeedSequence([seed, eps_index, batch_index]).generate_state(1)[0])


def robustness_sweep(
    classifier: Classifier,
    x: np.ndarray | Tensor,
    y: np.ndarray | Tensor,
    *,
    attack: AttackSpec,
    epsilons: Sequence[float],
    batch_size: int = 128,
    seed: int,
    device: torch.device | str | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    n_samples_keep: int = 8,
    sanity: bool = True,
    sanity_config: SanityConfig | None = None,
) -> RobustnessResult:
    """Robust accuracy of ``classifier`` on ``(x, y)`` under ``attack`` at each budget in ``epsilons``.

    Arguments:
        classifier: a differentiable :class:`TorchClassifier` for 'fgsm', 'pgd' and 'apgd'; any
            classifier with float inputs (scikit-learn included) for 'square'; a classifier on int64 token
            ids ``(N, L)`` for 'text'.
        x: inputs ``(N, *input_shape)`` within the model's bounds (token ids for 'text');
            y: labels ``(N,)`` in ``[0, C)``.
        attack: 'fgsm', 'pgd', 'apgd', 'square', 'text', or a config template (its budget is replaced by
            each sweep budget; a PGD ``step_size`` of None scales as ``2.5 * eps / steps``).
        epsilons: budgets in input units (edit counts for 'text'); 0 means no attack (robust accuracy =
            clean accuracy).
        batch_size: samples per attack batch.
        seed: base seed; each (budget, batch) gets an independent seed derived from it.
        device: where to run; defaults to, and must match, ``classifier.device``.
        progress: called with the fraction done after each batch and sanity step (ends at exactly 1.0);
            the sanity checks take the last 15%.
        should_cancel: checked between batches and sanity steps; when it returns True, :class:`Cancelled`
            is raised.
        n_samples_keep: how many examples (clean-correct first) to keep at each budget.
        sanity: run :func:`~evaluations.engine.robustness.sanity.sanity_report` on the curve and record
            its flags (``result.flags``, ``result.reliable``); turn off only for quick exploratory runs.
        sanity_config: settings of the sanity checks; None means :class:`SanityConfig` defaults.
    """
    started = time.perf_counter()
    resolved = resolve_attack(attack)
    model = resolved.check_model(classifier)
    run_device = check_device(model, device)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    if isinstance(n_samples_keep, bool) or not isinstance(n_samples_keep, int) or n_samples_keep < 0:
        raise InvalidConfigError(f"n_samples_keep must be an integer >= 0; got {n_samples_keep!r}.")
    if not isinstance(sanity, bool):
        raise InvalidConfigError(f"sanity must be True or False; got {sanity!r}.")
    if sanity_config is not None and not isinstance(sanity_config, SanityConfig):
        raise InvalidConfigError(f"sanity_config must be a SanityConfig or None; got {type(sanity_config).__name__}.")
    x_t, y_t = as_dataset(model, x, y, input_dtype(model))
    budgets = _check_epsilons(model, epsilons, resolved)
    n = x_t.shape[0]
    starts = range(0, n, batch_size)
    cost = resolved.cost_per_sample(model)
    total_work = n * (1 + sum(cost if eps > 0 else 1 for eps in budgets))
    attack_share = 1.0 - SANITY_SHARE if sanity else 1.0
    done_work = 0

    def advance(samples: int, units: int) -> None:
        nonlocal done_work
        done_work += samples * units
        if progress is not None:
            progress(min(1.0, attack_share * done_work / total_work))

    logger.info("robustness sweep: %s over %d samples, %d budgets", resolved.name, n, len(budgets))

    clean_pred = torch.empty(n, dtype=torch.int64)
    clean_started = time.perf_counter()
    for start in starts:
        check_cancelled(should_cancel)
        stop = min(start + batch_size, n)
        with torch.inference_mode():
            clean_pred[start:stop] = model.logits(x_t[start:stop].to(run_device)).argmax(dim=1).cpu()
        advance(stop - start, 1)
    clean_seconds = time.perf_counter() - clean_started
    clean_correct = clean_pred == y_t
    n_correct = int(clean_correct.sum())
    order = torch.argsort((~clean_correct).to(torch.int8), stable=True)  # clean-correct samples first
    keep = sorted(order[:n_samples_keep].tolist())

    points = [
        _attack_budget(
            model,
            resolved,
            eps_index,
            eps,
            x_t,
            y_t,
            clean_pred,
            clean_correct,
            n_correct,
            keep,
            batch_size=batch_size,
            seed=seed,
            device=run_device,
            advance=advance,
            should_cancel=should_cancel,
        )
        for eps_index, eps in enumerate(budgets)
    ]
    attack_seconds = time.perf_counter() - started
    result = RobustnessResult(
        attack=resolved.name,
        norm=resolved.norm,
        config=resolved.recorded,
        clean_accuracy=n_correct / n,
        per_class_clean_accuracy=_per_class_accuracy(clean_correct, y_t, model.num_classes),
        points=points,
        n_samples=n,
        num_classes=model.num_classes,
        batch_size=batch_size,
        seed=seed,
        device=str(run_device),
        model_sha256=model.sha256,
        data_sha256=sha256_arrays(x_t, y_t),
        library_versions=library_versions(),
        clean_seconds=clean_seconds,
        total_seconds=attack_seconds,
        samples_per_second=n * len(budgets) / attack_seconds if attack_seconds > 0 else 0.0,
    )
    if sanity:
        sanity_started = time.perf_counter()

        def sanity_progress(fraction: float) -> None:
            if progress is not None:
                progress(min(1.0, attack_share + SANITY_SHARE * fraction))

        report = sanity_report(
            model,
            x_t,
            y_t,
            result,
            seed=seed,
            device=run_device,
            config=sanity_config or SanityConfig(),
            progress=sanity_progress,
            should_cancel=should_cancel,
        )
        if progress is not None:
            progress(1.0)
        result = dataclasses.replace(
            result,
            flags=list(report.flags),
            sanity_checks=list(report.checks),
            sanity_skipped=dict(report.skipped),
            sanity_seconds=time.perf_counter() - sanity_started,
            total_seconds=time.perf_counter() - started,
        )
    logger.info("robustness sweep done in %.2fs (reliable=%s)", result.total_seconds, result.reliable)
    return result


def _attack_budget(
    model: Classifier,
    resolved: ResolvedAttack,
    eps_index: int,
    eps: float,
    x: Tensor,
    y: Tensor,
    clean_pred: Tensor,
    clean_correct: Tensor,
    n_correct: int,
    keep: list[int],
    *,
    batch_size: int,
    seed: int,
    device: torch.device,
    advance: Callable[[int, int], None],
    should_cancel: CancelCheck | None,
) -> EpsilonResult:
    """Attack every batch at one budget and summarise."""
    started = time.perf_counter()
    n = x.shape[0]
    config = resolved.make_config(eps) if eps > 0 else None
    adv_pred = torch.empty(n, dtype=torch.int64)
    linf = torch.zeros(n, dtype=torch.float64)
    l2 = torch.zeros(n, dtype=torch.float64)
    queries = torch.zeros(n, dtype=torch.int64)
    edits = torch.zeros(n, dtype=torch.int64)
    counted = {"queries": False, "edits": False}
    kept: dict[int, np.ndarray] = {}
    for batch_index, start in enumerate(range(0, n, batch_size)):
        check_cancelled(should_cancel)
        stop = min(start + batch_size, n)
        xb = x[start:stop].to(device)
        if config is None:
            adv = xb
        else:
            output = resolved.run(
                model,
                xb,
                y[start:stop].to(device),
                config,
                seed=_batch_seed(seed, eps_index, batch_index),
                device=device,
            )
            adv = output.adversarial
            for name, values, target in (("queries", output.queries, queries), ("edits", output.edits, edits)):
                if values is not None:
                    target[start:stop] = values.cpu()
                    counted[name] = True
        with torch.inference_mode():
            adv_pred[start:stop] = model.logits(adv).argmax(dim=1).cpu()
            if not resolved.tokens:
                delta = (adv - xb).reshape(stop - start, -1).to(torch.float64)
                linf[start:stop] = delta.abs().amax(dim=1).cpu()
                l2[start:stop] = delta.norm(dim=1).cpu()
            for index in keep:
                if start <= index < stop:
                    kept[index] = adv[index - start].cpu().numpy().copy()
        advance(stop - start, resolved.cost_per_sample(model) if config is not None else 1)

    robust = adv_pred == y
    fooled = int((clean_correct & ~robust).sum())
    seconds = time.perf_counter() - started
    attack_config = {"attack": resolved.name, "eps": eps}
    if config is not None:
        attack_config.update(dataclasses.asdict(config))
        if isinstance(config, PGDConfig):
            attack_config["step_size"] = config.resolved_step_size
        if isinstance(attack_config.get("candidate_ids"), tuple):
            attack_config["candidate_ids"] = list(attack_config["candidate_ids"])
    norms = not resolved.tokens
    return EpsilonResult(
        epsilon=eps,
        attack_config=attack_config,
        robust_accuracy=float(robust.double().mean()),
        attack_success_rate=fooled / n_correct if n_correct else None,
        n_clean_correct=n_correct,
        mean_linf=float(linf.mean()) if norms else None,
        max_linf=float(linf.max()) if norms else None,
        mean_l2=float(l2.mean()) if norms else None,
        max_l2=float(l2.max()) if norms else None,
        per_class_robust_accuracy=_per_class_accuracy(robust, y, model.num_classes),
        samples=[
            AdversarialSample(
                index=index,
                label=int(y[index]),
                clean_prediction=int(clean_pred[index]),
                adversarial_prediction=int(adv_pred[index]),
                clean=x[index].numpy().copy(),
                adversarial=kept[index],
            )
            for index in keep
        ],
        seconds=seconds,
        samples_per_second=n / seconds if seconds > 0 else None,
        mean_queries=float(queries.double().mean()) if counted["queries"] else None,
        max_queries=int(queries.max()) if counted["queries"] else None,
        mean_edits=float(edits.double().mean()) if resolved.tokens else None,
        max_edits=int(edits.max()) if resolved.tokens else None,
    )
