"""A plain, seeded mini-batch training loop, with an optional per-batch perturbation (adversarial training)."""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from torch import Tensor, nn

from evaluations.engine.common import (
    CancelCheck,
    InvalidConfigError,
    ProgressCallback,
    check_cancelled,
    make_generator,
)

__all__ = ["EpochRecord", "Perturb", "TrainingConfig", "batch_seed", "train_module"]

logger = logging.getLogger(__name__)

Perturb = Callable[[Tensor, Tensor, int], Tensor]
"""``perturb(x, y, seed)`` returns perturbed inputs for one batch; the module is in eval mode meanwhile."""

#: Where the cyclic schedule peaks, as a fraction of all steps (Wong, Rice & Kolter 2020 use 2/5).
CYCLIC_PEAK = 0.4


@dataclass(frozen=True)
class TrainingConfig:
    """Optimiser settings of :func:`train_module`.

    Attributes:
        epochs: passes over the training data.
        batch_size: samples per step (the last batch of an epoch may be smaller).
        lr: learning rate (the peak of the ``'cyclic'`` schedule).
        optimizer: ``'adam'`` or ``'sgd'`` (with ``momentum``).
        momentum: SGD momentum (ignored by Adam).
        weight_decay: L2 penalty.
        lr_schedule: ``'constant'``, or ``'cyclic'``: linear from 0 up to ``lr`` at 40% of the steps, then
            down to 0 (the one-cycle schedule of Wong, Rice & Kolter 2020).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: Literal["constant", "cyclic"] = "constant"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(f"{name} must be an integer >= 1; got {value!r}.")
        _check_number("lr", self.lr, positive=True)
        _check_number("momentum", self.momentum)
        _check_number("weight_decay", self.weight_decay)
        if self.momentum >= 1:
            raise InvalidConfigError(f"momentum must be in [0, 1); got {self.momentum!r}.")
        if self.optimizer not in ("adam", "sgd"):
            raise InvalidConfigError(f"optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}.")
        if self.lr_schedule not in ("constant", "cyclic"):
            raise InvalidConfigError(f"lr_schedule must be 'constant' or 'cyclic'; got {self.lr_schedule!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _check_number(name: str, value: Any, *, positive: bool = False) -> None:
    """Raise :class:`InvalidConfigError` unless ``value`` is a finite real >= 0 (> 0 when ``positive``)."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise InvalidConfigError(f"{name} must be a finite number {bound}; got {value!r}.")


@dataclass(frozen=True)
class EpochRecord:
    """Training metrics of one epoch, averaged over its samples.

    ``clean_*`` are over the unperturbed batches and ``adversarial_*`` over the perturbed ones (None when
    that part of the objective is not trained on); ``loss`` is the optimised objective; ``eval_accuracy``
    is the clean accuracy on held-out data after the epoch (None without held-out data).
    """

    epoch: int
    loss: float
    clean_loss: float | None
    clean_accuracy: float | None
    adversarial_loss: float | None
    adversarial_accuracy: float | None
    eval_accuracy: float | None
    learning_rate: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    """Independent, reproducible seed for one training batch."""
    return int(np.random.SeedSequence([seed, epoch, batch]).generate_state(1)[0])


def _optimizer(module: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            module.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _learning_rate(config: TrainingConfig, step: int, total: int) -> float:
    """Learning rate for 0-based ``step`` of ``total``."""
    if config.lr_schedule == "constant":
        return config.lr
    return float(np.interp(step + 1, [0, CYCLIC_PEAK * total, total], [0.0, config.lr, 0.0]))


def train_module(
    module: nn.Module,
    x: Tensor,
    y: Tensor,
    config: TrainingConfig,
    *,
    seed: int,
    device: torch.device | str = "cpu",
    perturb: Perturb | None = None,
    adversarial_fraction: float = 0.0,
    eval_data: tuple[Tensor, Tensor] | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> list[EpochRecord]:
    """Train ``module`` in place with cross-entropy on ``(x, y)``; returns the per-epoch history.

    Each step minimises ``(1 - a) * CE(f(x_b), y_b) + a * CE(f(perturb(x_b, y_b, s)), y_b)`` with
    ``a = adversarial_fraction`` (``a = 0`` is plain training and needs no ``perturb``). Batches are
    drawn by a generator seeded with ``seed``; ``s`` is :func:`batch_seed` of ``(seed, epoch, batch)``.
    The perturbation runs with the module in eval mode, the update in train mode; the module is left in
    eval mode. ``x`` is ``(N, *input_shape)`` and ``y`` int64 ``(N,)``, both on the CPU or ``device``.

    ``progress`` gets the fraction of steps done after each step; ``should_cancel`` is checked before
    each step and raises :class:`~evaluations.engine.common.Cancelled`.
    """
    if not 0.0 <= adversarial_fraction <= 1.0:
        raise InvalidConfigError(f"adversarial_fraction must be in [0, 1]; got {adversarial_fraction!r}.")
    if adversarial_fraction > 0 and perturb is None:
        raise InvalidConfigError("adversarial_fraction > 0 needs a perturb function.")
    device = torch.device(device)
    module.to(device)
    optimizer = _optimizer(module, config)
    generator = make_generator(seed)  # CPU: the same order whatever the device
    n = x.shape[0]
    per_epoch = math.ceil(n / config.batch_size)
    total = config.epochs * per_epoch
    clean_weight = 1.0 - adversarial_fraction
    history: list[EpochRecord] = []
    step = 0
    for epoch in range(config.epochs):
        started = time.perf_counter()
        sums = dict.fromkeys(("loss", "clean_loss", "clean_correct", "adv_loss", "adv_correct"), 0.0)
        lr = config.lr
        for batch, index in enumerate(torch.randperm(n, generator=generator).split(config.batch_size)):
            check_cancelled(should_cancel)
            lr = _learning_rate(config, step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            xb, yb = x[index].to(device), y[index].to(device)
            loss = torch.zeros((), device=device)
            if adversarial_fraction > 0:
                module.eval()
                x_adv = perturb(xb, yb, batch_seed(seed, epoch, batch)).detach()  # type: ignore[misc]
                module.train()
                logits = module(x_adv)
                adv_loss = F.cross_entropy(logits, yb)
                loss = loss + adversarial_fraction * adv_loss
                sums["adv_loss"] += float(adv_loss.detach()) * len(index)
                sums["adv_correct"] += float((logits.argmax(dim=1) == yb).sum())
            if clean_weight > 0:
                module.train()
                logits = module(xb)
                clean_loss = F.cross_entropy(logits, yb)
                loss = loss + clean_weight * clean_loss
                sums["clean_loss"] += float(clean_loss.detach()) * len(index)
                sums["clean_correct"] += float((logits.argmax(dim=1) == yb).sum())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["loss"] += float(loss.detach()) * len(index)
            step += 1
            if progress is not None:
                progress(step / total)
        module.eval()
        record = EpochRecord(
            epoch=epoch + 1,
            loss=sums["loss"] / n,
            clean_loss=sums["clean_loss"] / n if clean_weight > 0 else None,
            clean_accuracy=sums["clean_correct"] / n if clean_weight > 0 else None,
            adversarial_loss=sums["adv_loss"] / n if adversarial_fraction > 0 else None,
            adversarial_accuracy=sums["adv_correct"] / n if adversarial_fraction > 0 else None,
            eval_accuracy=None if eval_data is None else accuracy(module, *eval_data, device=device),
            learning_rate=lr,
            seconds=time.perf_counter() - started,
        )
        logger.debug("epoch %d: %s", record.epoch, record)
        history.append(record)
    optimizer.zero_grad(set_to_none=True)
    module.eval()
    return history


def accuracy(module: nn.Module, x: Tensor, y: Tensor, *, device: torch.device | str, batch_size: int = 512) -> float:
    """Clean accuracy of ``module`` (in its current mode) on ``(x, y)``, without gradients."""
    correct = 0
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
            correct += int((module(xb).argmax(dim=1) == yb).sum())
    return correct / x.shape[0]
