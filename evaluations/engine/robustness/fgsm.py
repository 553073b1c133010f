"""Fast Gradient Sign Method (FGSM)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

from evaluations.engine.common import EpsilonOutOfRangeError
from evaluations.engine.models.classifier import Classifier
from evaluations.engine.robustness._checks import check_epsilon, prepare_batch, require_white_box

__all__ = ["FGSMConfig", "fgsm"]


@dataclass(frozen=True)
class FGSMConfig:
    """FGSM settings.

    Attributes:
        eps: Linf budget in the model's input units (``0 < eps <= hi - lo``).
    """

    eps: float

    norm = "linf"

    def __post_init__(self) -> None:
        if isinstance(self.eps, bool) or not isinstance(self.eps, numbers.Real) or not math.isfinite(self.eps):
            raise EpsilonOutOfRangeError(f"eps must be a finite number; got {self.eps!r}.")
        if self.eps <= 0:
            raise EpsilonOutOfRangeError(f"eps must be positive; got {self.eps}. Use eps > 0, e.g. 8/255.")
        object.__setattr__(self, "eps", float(self.eps))


def fgsm(
    classifier: Classifier,
    x: Tensor,
    y: Tensor,
    config: FGSMConfig,
    *,
    seed: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""FGSM in 'Explaining and Harnessing Adversarial Examples' (Goodfellow et al., ICLR 2015).

    One step of size eps along the sign of the input gradient of the cross-entropy loss, clipped to the
    model's input bounds: ``x_adv = clip(x + eps * sign(grad_x CE(f(x), y)), lo, hi)``.

    Distance Measure: Linf.

    Arguments:
        classifier: a differentiable :class:`TorchClassifier` (in eval mode).
        x: clean inputs, float, shape ``(N, *input_shape)``, within ``classifier.bounds``.
        y: true labels, shape ``(N,)``, integers in ``[0, num_classes)``.
        config: :class:`FGSMConfig` (eps).
        seed: accepted for a uniform attack signature; FGSM draws no random numbers.
        device: where to run; defaults to, and must match, ``classifier.device``.

    Returns:
        Adversarial inputs, shape ``(N, *input_shape)``, on the classifier's device.
    """
    del seed  # deterministic
    model = require_white_box(classifier, "FGSM")
    x, y = prepare_batch(model, x, y, device)
    check_epsilon(config.eps, model, "linf")
    lo, hi = model.bounds
    _, grad, _ = model.loss_gradient(x, y)
    return torch.add(x, grad.sign_(), alpha=config.eps).clamp_(lo, hi)
