"""Auto-PGD with the cross-entropy loss (APGD-CE) under the Linf and L2 norms."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from evaluations.engine.common import EpsilonOutOfRangeError, InvalidConfigError, make_generator
from evaluations.engine.models.classifier import Classifier, TorchClassifier
from evaluations.engine.robustness._checks import NORMS, check_epsilon, prepare_batch, require_white_box

__all__ = ["APGDConfig", "apgd", "apgd_checkpoints"]

_TINY = 1e-12  # guards divisions by zero-norm gradients or perturbations


@dataclass(frozen=True)
class APGDConfig:
    """APGD-CE settings (the paper's defaults).

    Attributes:
        eps: budget in the model's input units (Linf: ``<= hi - lo``; L2: ``<=`` the box diagonal).
        steps: iterations per restart (``N_iter``; 100 in the paper). Each costs one forward and backward pass.
        norm: ``'linf'`` (signed-gradient steps) or ``'l2'`` (normalised-gradient steps).
        restarts: independent runs from random starts; later runs only attack samples not yet fooled.
        rho: checkpoint condition 1 halves the step when fewer than ``rho`` of the steps since the last
            checkpoint increased the loss.
        momentum: ``alpha``, the weight of the new projected step against the previous update.
    """

    eps: float
    steps: int = 100
    norm: Literal["linf", "l2"] = "linf"
    restarts: int = 1
    rho: float = 0.75
    momentum: float = 0.75

    def __post_init__(self) -> None:
        if isinstance(self.eps, bool) or not isinstance(self.eps, numbers.Real) or not math.isfinite(self.eps):
            raise EpsilonOutOfRangeError(f"eps must be a finite number; got {self.eps!r}.")
        if self.eps <= 0:
            raise EpsilonOutOfRangeError(f"eps must be positive; got {self.eps}. Use eps > 0, e.g. 8/255.")
        object.__setattr__(self, "eps", float(self.eps))
        for name in ("steps", "restarts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(f"{name} must be an integer >= 1; got {value!r}.")
        if self.norm not in NORMS:
            raise InvalidConfigError(f"norm must be one of {', '.join(NORMS)}; got {self.norm!r}.")
        for name in ("rho", "momentum"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
                raise InvalidConfigError(f"{name} must be a number in (0, 1] (the paper uses 0.75); got {value!r}.")
            object.__setattr__(self, name, float(value))


def apgd_checkpoints(steps: int) -> list[int]:
    """Iterations ``w_j`` at which APGD may halve its step size.

    ``w_j = ceil(p_j * steps)`` with ``p_0 = 0``, ``p_1 = 0.22`` and
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``, keeping those below ``steps``.
    """
    previous, current = 0.0, 0.22
    points: list[int] = []
    while current < 1.0:
        point = math.ceil(current * steps - 1e-9)
        if 0 < point < steps and (not points or point > points[-1]):
            points.append(point)
        previous, current = current, current + max(current - previous - 0.03, 0.06)
    return points


def apgd(
    classifier: Classifier,
    x: Tensor,
    y: Tensor,
    config: APGDConfig,
    *,
    seed: int,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""APGD-CE in 'Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks' (Croce & Hein, ICML 2020).

    PGD on the cross-entropy loss without a step-size parameter: the step starts at ``2 * eps`` and is
    halved, per sample, at the checkpoints of :func:`apgd_checkpoints` when (1) fewer than ``rho`` of the
    steps since the last checkpoint increased the loss, or (2) the step was not halved at the last
    checkpoint and the best loss has not improved since; after halving, the sample restarts from its
    best point. Updates use momentum: ``z = P(x_k + eta * d(grad))``,
    ``x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1}))`` where ``d`` is the sign (Linf)
    or the L2-normalised gradient and ``P`` projects onto the eps-ball and the input bounds.
    Per sample the last misclassified iterate is returned, else the highest-loss one.

    Distance Measure: Linf or L2 (``config.norm``).

    Arguments:
        classifier: a differentiable :class:`TorchClassifier` (in eval mode).
        x: clean inputs, float, shape ``(N, *input_shape)``, within ``classifier.bounds``.
        y: true labels, shape ``(N,)``, integers in ``[0, num_classes)``.
        config: :class:`APGDConfig`.
        seed: seeds the random starts; equal seeds give equal results on the same device.
        device: where to run; defaults to, and must match, ``classifier.device``.

    Returns:
        Adversarial inputs, shape ``(N, *input_shape)``, on the classifier's device.
    """
    model = require_white_box(classifier, "APGD")
    x, y = prepare_batch(model, x, y, device)
    check_epsilon(config.eps, model, config.norm)
    generator = make_generator(seed, model.device)
    best, fooled = _run(model, x, y, config, generator)
    for _ in range(config.restarts - 1):
        rows = (~fooled).nonzero().squeeze(1)  # one sync per restart
        if rows.numel() == 0:
            break
        candidate, success = _run(model, x[rows], y[rows], config, generator)
        # Keep the first run's best-loss point unless this run fools the sample.
        picked = rows[success]
        best[picked] = candidate[success]
        fooled[picked] = True
    return best


def _project(z: Tensor, x: Tensor, lower: Tensor | None, upper: Tensor | None, eps: float, bounds) -> Tensor:
    """Project ``z`` onto the eps-ball around ``x`` intersected with the input box (in place for Linf)."""
    if lower is not None:
        return z.clamp_(min=lower, max=upper)
    n = x.shape[0]
    delta = z.sub_(x)
    scale = (eps / delta.reshape(n, -1).norm(dim=1).clamp_min_(_TINY)).clamp_max_(1.0)
    return delta.mul_(scale.view((n,) + (1,) * (x.dim() - 1))).add_(x).clamp_(*bounds)


def _direction(grad: Tensor, linf: bool) -> Tensor:
    """Sign of the gradient (Linf) or the gradient scaled to unit L2 norm per sample."""
    if linf:
        return grad.sign()
    n = grad.shape[0]
    return grad / grad.reshape(n, -1).norm(dim=1).clamp_min(_TINY).view((n,) + (1,) * (grad.dim() - 1))


def _loss_and_grad(model: TorchClassifier, x_adv: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample CE loss, its input gradient and whether each sample is misclassified."""
    loss, grad, logits = model.loss_gradient(x_adv, y)
    return loss, grad, logits.argmax(dim=1) != y


def _run(
    model: TorchClassifier, x: Tensor, y: Tensor, config: APGDConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """One APGD run from a random start; host syncs only happen in the caller, between restarts."""
    eps, linf, bounds = config.eps, config.norm == "linf", model.bounds
    n = x.shape[0]
    shape = (n,) + (1,) * (x.dim() - 1)
    lower = upper = None
    if linf:
        lower = (x - eps).clamp_(min=bounds[0])
        upper = (x + eps).clamp_(max=bounds[1])
        # Croce & Hein's start: a uniform direction scaled so its largest coordinate is eps.
        t = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype).mul_(2).sub_(1)
        t.div_(t.reshape(n, -1).abs().amax(dim=1).clamp_min_(_TINY).view(shape))
    else:
        t = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        t.div_(t.reshape(n, -1).norm(dim=1).clamp_min_(_TINY).view(shape))
    x_adv = _project(t.mul_(eps).add_(x), x, lower, upper, eps, bounds)

    loss, grad, fooled = _loss_and_grad(model, x_adv, y)
    adv_found = x_adv.clone()  # last misclassified iterate (meaningful where ``found``)
    found = fooled.clone()
    x_best, grad_best, loss_best = x_adv.clone(), grad.clone(), loss.clone()
    step = torch.full(shape, 2.0 * eps, device=x.device, dtype=x.dtype)
    x_prev = x_adv.clone()

    checkpoints = set(apgd_checkpoints(config.steps))
    last_checkpoint = 0
    increases = torch.zeros(n, device=x.device, dtype=x.dtype)  # loss increases since the last checkpoint
    loss_best_at_checkpoint = loss_best.clone()
    halved_at_checkpoint = torch.zeros(n, device=x.device, dtype=torch.bool)
    alpha = config.momentum

    for k in range(config.steps):
        z = _project(x_adv + step * _direction(grad, linf), x, lower, upper, eps, bounds)
        if k > 0:  # the first step has no previous update to follow
            z = _project(x_adv + alpha * (z - x_adv) + (1.0 - alpha) * (x_adv - x_prev), x, lower, upper, eps, bounds)
        x_prev, x_adv = x_adv, z

        new_loss, grad, fooled = _loss_and_grad(model, x_adv, y)
        adv_found = torch.where(fooled.view(shape), x_adv, adv_found)
        found |= fooled
        increases += (new_loss > loss).to(x.dtype)
        loss = new_loss
        improved = loss > loss_best
        x_best = torch.where(improved.view(shape), x_adv, x_best)
        grad_best = torch.where(improved.view(shape), grad, grad_best)
        loss_best = torch.maximum(loss, loss_best)

        iteration = k + 1
        if iteration in checkpoints:
            oscillating = increases < config.rho * (iteration - last_checkpoint)  # condition 1
            stalled = ~halved_at_checkpoint & (loss_best <= loss_best_at_checkpoint)  # condition 2
            halve = oscillating | stalled
            step = torch.where(halve.view(shape), step * 0.5, step)
            x_adv = torch.where(halve.view(shape), x_best, x_adv)
            grad = torch.where(halve.view(shape), grad_best, grad)
            halved_at_checkpoint = halve
            loss_best_at_checkpoint = loss_best.clone()
            increases.zero_()
            last_checkpoint = iteration

    return torch.where(found.view(shape), adv_found, x_best), found
