"""Robustness curve: run one attack at several budgets over a dataset, in batches."""

from __future__ import annotations

import dataclasses
import logging
import numbers
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from evaluations.engine.common import (
    CancelCheck,
    EmptyDatasetError,
    EngineInputError,
    InputOutOfBoundsError,
    InvalidConfigError,
    LabelOutOfRangeError,
    NonFiniteInputError,
    ProgressCallback,
    ShapeMismatchError,
    check_cancelled,
    library_versions,
    sha256_arrays,
)
from evaluations.engine.models.classifier import Classifier, TorchClassifier
from evaluations.engine.robustness._checks import check_device, check_epsilon, require_white_box
from evaluations.engine.robustness.fgsm import FGSMConfig, fgsm
from evaluations.engine.robustness.pgd import PGDConfig, pgd
from evaluations.engine.robustness.results import AdversarialSample, EpsilonResult, RobustnessResult

__all__ = ["AttackSpec", "robustness_sweep"]

logger = logging.getLogger(__name__)

AttackSpec = FGSMConfig | PGDConfig | str
"""'fgsm', 'pgd' (Linf, defaults), or a config whose ``eps`` is replaced by each sweep budget."""

_BOUNDS_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class _Attack:
    """An attack resolved from an :data:`AttackSpec`."""

    name: str
    norm: str
    make_config: Callable[[float], FGSMConfig | PGDConfig]
    run: Callable[..., Tensor]
    cost: int  # forward-pass equivalents per sample, for progress weighting
    recorded: dict[str, Any]


def _resolve_attack(attack: AttackSpec) -> _Attack:
    """Turn a name or config template into a config factory and an attack function."""
    if isinstance(attack, str):
        names = {"fgsm": FGSMConfig(eps=1.0), "pgd": PGDConfig(eps=1.0)}
        if attack not in names:
            raise InvalidConfigError(f"Unknown attack {attack!r}; use 'fgsm', 'pgd', or pass an FGSMConfig/PGDConfig.")
        attack = names[attack]
    if isinstance(attack, FGSMConfig):
        return _Attack("fgsm", "linf", lambda eps: FGSMConfig(eps=eps), fgsm, 4, {"attack": "fgsm"})
    if isinstance(attack, PGDConfig):
        template = attack
        recorded = {"attack": "pgd", **{k: v for k, v in dataclasses.asdict(template).items() if k != "eps"}}
        cost = template.restarts * (3 * template.steps + 1) + 1
        return _Attack("pgd", template.norm, lambda eps: dataclasses.replace(template, eps=eps), pgd, cost, recorded)
    raise InvalidConfigError(
        f"attack must be 'fgsm', 'pgd', an FGSMConfig or a PGDConfig; got {type(attack).__name__}."
    )


def _as_dataset(classifier: TorchClassifier, x: Any, y: Any) -> tuple[Tensor, Tensor]:
    """Validate ``x``/``y`` and return them as CPU tensors (model input dtype, int64)."""
    x_t = x.detach().cpu() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    y_t = y.detach().cpu() if isinstance(y, Tensor) else torch.as_tensor(np.asarray(y))
    if x_t.dim() == 0 or x_t.shape[0] == 0:
        raise EmptyDatasetError("The dataset is empty; pass at least one sample.")
    if tuple(x_t.shape[1:]) != classifier.input_shape:
        raise ShapeMismatchError(
            f"x has shape {tuple(x_t.shape)} but the model expects (N, "
            f"{', '.join(map(str, classifier.input_shape))}); reshape the data or declare the right "
            "input_shape."
        )
    if y_t.dim() != 1 or y_t.shape[0] != x_t.shape[0]:
        raise ShapeMismatchError(
            f"y must be a 1-D array with one label per sample ({x_t.shape[0]}); got shape {tuple(y_t.shape)}."
        )
    if not (x_t.is_floating_point() or x_t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
        raise EngineInputError(f"x must hold numbers; got dtype {x_t.dtype}.")
    x_t = x_t.to(classifier.input_dtype)
    finite = torch.isfinite(x_t)
    if not bool(finite.all()):
        bad = int((~finite.reshape(x_t.shape[0], -1)).any(dim=1).sum())
        raise NonFiniteInputError(f"x contains NaN or infinite values in {bad} sample(s); clean or drop them.")
    if y_t.is_floating_point():
        if not bool((torch.isfinite(y_t) & (y_t == y_t.round())).all()):
            raise LabelOutOfRangeError("y must hold integer class labels; got non-integer values.")
    elif y_t.dtype == torch.bool or y_t.is_complex():
        raise LabelOutOfRangeError(f"y must hold integer class labels; got dtype {y_t.dtype}.")
    y_t = y_t.to(torch.int64)
    low, high = int(y_t.min()), int(y_t.max())
    if low < 0 or high >= classifier.num_classes:
        raise LabelOutOfRangeError(
            f"Labels must lie in [0, {classifier.num_classes}) for this "
            f"{classifier.num_classes}-class model; "
            f"got values from {low} to {high}. Encode labels as 0..num_classes-1."
        )
    lo, hi = classifier.bounds
    x_min, x_max = float(x_t.min()), float(x_t.max())
    if x_min < lo - _BOUNDS_TOLERANCE or x_max > hi + _BOUNDS_TOLERANCE:
        raise InputOutOfBoundsError(
            f"x ranges over [{x_min:g}, {x_max:g}] but the model's input bounds are [{lo:g}, {hi:g}]; "
            "preprocess the data the way the model was trained, or declare the right bounds."
        )
    return x_t, y_t


def _check_epsilons(classifier: Classifier, epsilons: Sequence[float], norm: str) -> list[float]:
    """Budgets as floats, each within ``[0, max]`` for the norm."""
    values = list(epsilons)
    if not values:
        raise EngineInputError("epsilons is empty; pass at least one budget, e.g. [0, 0.05, 0.1].")
    for eps in values:
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
            raise InvalidConfigError(f"epsilons must be numbers; got {eps!r}.")
        check_epsilon(float(eps), classifier, norm, allow_zero=True)
    return [float(eps) for eps in values]


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
) -> RobustnessResult:
    """Robust accuracy of ``classifier`` on ``(x, y)`` under ``attack`` at each budget in ``epsilons``.

    Arguments:
        classifier: a differentiable :class:`TorchClassifier`.
        x: inputs ``(N, *input_shape)`` within the model's bounds; y: labels ``(N,)`` in ``[0, C)``.
        attack: 'fgsm', 'pgd', or a config template (its eps is replaced by each budget; a PGD
            ``step_size`` of None scales as ``2.5 * eps / steps``).
        epsilons: budgets in input units; 0 means no attack (robust accuracy = clean accuracy).
        batch_size: samples per attack batch.
        seed: base seed; each (budget, batch) gets an independent seed derived from it.
        device: where to run; defaults to, and must match, ``classifier.device``.
        progress: called with the fraction done after each batch (ends at exactly 1.0).
        should_cancel: checked between batches; when it returns True, :class:`Cancelled` is raised.
        n_samples_keep: how many examples (clean-correct first) to keep at each budget.
    """
    started = time.perf_counter()
    resolved = _resolve_attack(attack)
    model = require_white_box(classifier, resolved.name.upper())
    run_device = check_device(model, device)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    if isinstance(n_samples_keep, bool) or not isinstance(n_samples_keep, int) or n_samples_keep < 0:
        raise InvalidConfigError(f"n_samples_keep must be an integer >= 0; got {n_samples_keep!r}.")
    x_t, y_t = _as_dataset(model, x, y)
    budgets = _check_epsilons(model, epsilons, resolved.norm)
    n = x_t.shape[0]
    starts = range(0, n, batch_size)
    total_work = n * (1 + sum(resolved.cost if eps > 0 else 1 for eps in budgets))
    done_work = 0

    def advance(samples: int, cost: int) -> None:
        nonlocal done_work
        done_work += samples * cost
        if progress is not None:
            progress(min(1.0, done_work / total_work))

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
    total_seconds = time.perf_counter() - started
    logger.info("robustness sweep done in %.2fs", total_seconds)
    return RobustnessResult(
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
        total_seconds=total_seconds,
        samples_per_second=n * len(budgets) / total_seconds if total_seconds > 0 else 0.0,
    )


def _attack_budget(
    model: TorchClassifier,
    resolved: _Attack,
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
    linf = torch.empty(n, dtype=torch.float64)
    l2 = torch.empty(n, dtype=torch.float64)
    kept: dict[int, np.ndarray] = {}
    for batch_index, start in enumerate(range(0, n, batch_size)):
        check_cancelled(should_cancel)
        stop = min(start + batch_size, n)
        xb = x[start:stop].to(device)
        if config is None:
            adv = xb
        else:
            adv = resolved.run(
                model,
                xb,
                y[start:stop].to(device),
                config,
                seed=_batch_seed(seed, eps_index, batch_index),
                device=device,
            )
        with torch.inference_mode():
            adv_pred[start:stop] = model.logits(adv).argmax(dim=1).cpu()
            delta = (adv - xb).reshape(stop - start, -1).to(torch.float64)
            linf[start:stop] = delta.abs().amax(dim=1).cpu()
            l2[start:stop] = delta.norm(dim=1).cpu()
            for index in keep:
                if start <= index < stop:
                    kept[index] = adv[index - start].cpu().numpy().copy()
        advance(stop - start, resolved.cost if config is not None else 1)

    robust = adv_pred == y
    fooled = int((clean_correct & ~robust).sum())
    seconds = time.perf_counter() - started
    attack_config: dict[str, Any] = {"attack": resolved.name, "eps": eps}
    if config is not None:
        attack_config.update(dataclasses.asdict(config))
        if isinstance(config, PGDConfig):
            attack_config["step_size"] = config.resolved_step_size
    return EpsilonResult(
        epsilon=eps,
        attack_config=attack_config,
        robust_accuracy=float(robust.double().mean()),
        attack_success_rate=fooled / n_correct if n_correct else None,
        n_clean_correct=n_correct,
        mean_linf=float(linf.mean()),
        max_linf=float(linf.max()),
        mean_l2=float(l2.mean()),
        max_l2=float(l2.max()),
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
    )
