"""Projected Gradient Descent (PGD) under the Linf and L2 norms."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from torch import Tensor

from evaluations.engine.common import EpsilonOutOfRangeError, InvalidConfigError, make_generator
from evaluations.engine.models.classifier import Classifier, TorchClassifier
from evaluations.engine.robustness._checks import NORMS, check_epsilon, prepare_batch, require_white_box

__all__ = ["PGDConfig", "pgd"]

_TINY = 1e-12  # guards divisions by zero-norm gradients or perturbations


@dataclass(frozen=True)
class PGDConfig:
    """PGD settings.

    Attributes:
        eps: budget in the model's input units (Linf: ``<= hi - lo``; L2: ``<=`` the box diagonal).
        step_size: size of each step; None means ``2.5 * eps / steps`` (Madry et al.).
        steps: gradient steps per restart.
        norm: ``'linf'`` (signed-gradient steps) or ``'l2'`` (normalised-gradient steps).
        random_start: start uniformly inside the eps-ball instead of at ``x``.
        restarts: independent runs; per sample the successful, else highest-loss, result is kept.
        early_stop: stop moving a sample once it is misclassified (and skip it in later restarts).
    """

    eps: float
    step_size: float | None = None
    steps: int = 10
    norm: Literal["linf", "l2"] = "linf"
    random_start: bool = True
    restarts: int = 1
    early_stop: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.eps, bool) or not isinstance(self.eps, numbers.Real) or not math.isfinite(self.eps):
            raise EpsilonOutOfRangeError(f"eps must be a finite number; got {self.eps!r}.")
        if self.eps <= 0:
            raise EpsilonOutOfRangeError(f"eps must be positive; got {self.eps}. Use eps > 0, e.g. 8/255.")
        object.__setattr__(self, "eps", float(self.eps))
        if self.step_size is not None:
            if (
                isinstance(self.step_size, bool)
                or not isinstance(self.step_size, numbers.Real)
                or not math.isfinite(self.step_size)
                or self.step_size <= 0
            ):
                raise InvalidConfigError(
                    f"step_size must be a positive number or None (meaning 2.5 * eps / steps); got {self.step_size!r}."
                )
            object.__setattr__(self, "step_size", float(self.step_size))
        for name in ("steps", "restarts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(f"{name} must be an integer >= 1; got {value!r}.")
        if self.norm not in NORMS:
            raise InvalidConfigError(f"norm must be one of {', '.join(NORMS)}; got {self.norm!r}.")
        for name in ("random_start", "early_stop"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidConfigError(f"{name} must be True or False; got {getattr(self, name)!r}.")

    @property
    def resolved_step_size(self) -> float:
        """The step size actually used."""
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps


def pgd(
    classifier: Classifier,
    x: Tensor,
    y: Tensor,
    config: PGDConfig,
    *,
    seed: int,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""PGD in 'Towards Deep Learning Models Resistant to Adversarial Attacks' (Madry et al., ICLR 2018).

    Maximises the cross-entropy loss by ``steps`` gradient-ascent steps, each projected back onto the
    eps-ball around ``x`` and the model's input bounds. Linf steps move by ``step_size * sign(grad)``;
    L2 steps by ``step_size * grad / ||grad||_2``. With ``restarts > 1`` the runs draw successive random
    starts from one generator seeded with ``seed`` (restart 0 equals a ``restarts=1`` run).

    Distance Measure: Linf or L2 (``config.norm``).

    Arguments:
        classifier: a differentiable :class:`TorchClassifier` (in eval mode).
        x: clean inputs, float, shape ``(N, *input_shape)``, within ``classifier.bounds``.
        y: true labels, shape ``(N,)``, integers in ``[0, num_classes)``.
        config: :class:`PGDConfig`.
        seed: seeds the random starts; equal seeds give equal results on the same device.
        device: where to run; defaults to, and must match, ``classifier.device``.

    Returns:
        Adversarial inputs, shape ``(N, *input_shape)``, on the classifier's device.
    """
    model = require_white_box(classifier, "PGD")
    x, y = prepare_batch(model, x, y, device)
    check_epsilon(config.eps, model, config.norm)
    generator = make_generator(seed, model.device)
    if config.restarts == 1:
        return _run(model, x, y, config, generator)
    return _best_of_restarts(model, x, y, config, generator)


def _best_of_restarts(
    model: TorchClassifier, x: Tensor, y: Tensor, config: PGDConfig, generator: torch.Generator
) -> Tensor:
    """Keep, per sample, the successful (then highest-loss) result over ``config.restarts`` runs."""
    best = best_loss = best_success = None
    for _ in range(config.restarts):
        if best is None or not config.early_stop:
            candidate = _run(model, x, y, config, generator)
            rows = None
        else:
            rows = (~best_success).nonzero().squeeze(1)  # one sync per restart, not per step
            if rows.numel() == 0:
                break
            candidate = _run(model, x[rows], y[rows], config, generator)
        with torch.no_grad():
            target = y if rows is None else y[rows]
            logits = model.logits(candidate)
            loss = F.cross_entropy(logits, target, reduction="none")
            success = logits.argmax(dim=1) != target
        if best is None:
            best, best_loss, best_success = candidate, loss, success
        elif rows is None:
            better = (success & ~best_success) | ((success == best_success) & (loss > best_loss))
            best = torch.where(better.view(-1, *([1] * (x.dim() - 1))), candidate, best)
            best_loss = torch.where(better, loss, best_loss)
            best_success = best_success | success
        else:  # these rows were all unsuccessful so far
            better = success | (loss > best_loss[rows])
            picked = rows[better]
            best[picked] = candidate[better]
            best_loss[picked] = loss[better]
            best_success[picked] = success[better]
    return best


def _run(model: TorchClassifier, x: Tensor, y: Tensor, config: PGDConfig, generator: torch.Generator) -> Tensor:
    """One PGD run from a (random) start; allocation-light and free of host syncs inside the loop."""
    eps, step = config.eps, config.resolved_step_size
    lo, hi = model.bounds
    n = x.shape[0]
    shape = (n,) + (1,) * (x.dim() - 1)
    linf = config.norm == "linf"

    if linf:
        # Intersection of the eps-ball and the box, computed once: projection is then one clamp.
        lower = (x - eps).clamp_(min=lo)
        upper = (x + eps).clamp_(max=hi)
        if config.random_start:
            x_adv = torch.empty_like(x).uniform_(-eps, eps, generator=generator).add_(x)
            x_adv.clamp_(min=lower, max=upper)
        else:
            x_adv = x.clone()
    elif config.random_start:
        # Uniform in the L2 ball: Gaussian direction, radius eps * U^(1/d).
        delta = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        dims = delta[0].numel()
        radius = torch.rand(n, generator=generator, device=x.device, dtype=x.dtype).pow_(1.0 / dims).mul_(eps)
        delta.mul_((radius / delta.view(n, -1).norm(dim=1).clamp_min_(_TINY)).view(shape))
        x_adv = delta.add_(x).clamp_(lo, hi)
    else:
        x_adv = x.clone()

    for _ in range(config.steps):
        # The gradient of the summed loss: independent of the batch size.
        _, grad, logits = model.loss_gradient(x_adv, y)
        if linf:
            grad.sign_()
        else:
            grad.div_(grad.reshape(n, -1).norm(dim=1).clamp_min_(_TINY).view(shape))
        if config.early_stop:
            grad.mul_((logits.argmax(dim=1) == y).view(shape))
        x_adv.add_(grad, alpha=step)
        if linf:
            x_adv.clamp_(min=lower, max=upper)
        else:
            x_adv.sub_(x)
            scale = (eps / x_adv.view(n, -1).norm(dim=1).clamp_min_(_TINY)).clamp_max_(1.0)
            x_adv.mul_(scale.view(shape)).add_(x).clamp_(lo, hi)
    return x_adv
