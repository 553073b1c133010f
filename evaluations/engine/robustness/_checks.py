"""Validation shared by the white-box attacks: model kind, device, batch and perturbation budget."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from evaluations.engine.common import (
    EngineInputError,
    EpsilonOutOfRangeError,
    NotDifferentiableError,
    ShapeMismatchError,
    resolve_device,
)
from evaluations.engine.models.classifier import Classifier, TorchClassifier

NORMS = ("linf", "l2")


def require_white_box(classifier: Classifier, attack: str) -> TorchClassifier:
    """Return ``classifier`` if it gives input gradients, else raise :class:`NotDifferentiableError`."""
    if not isinstance(classifier, TorchClassifier) or not classifier.differentiable:
        raise NotDifferentiableError(
            f"{attack} is a white-box attack and needs a torch model with float inputs; "
            f"this is a {classifier.framework} model without input gradients. Use a black-box attack."
        )
    return classifier


def max_epsilon(classifier: Classifier, norm: str) -> float:
    """Largest meaningful budget: the width of the input box (Linf) or its diagonal (L2)."""
    lo, hi = classifier.bounds
    if norm == "l2":
        return (hi - lo) * math.sqrt(math.prod(classifier.input_shape))
    return hi - lo


def check_epsilon(eps: float, classifier: Classifier, norm: str, *, allow_zero: bool = False) -> None:
    """Raise :class:`EpsilonOutOfRangeError` unless ``0 < eps <= max_epsilon`` (``0 <=`` with allow_zero)."""
    limit = max_epsilon(classifier, norm)
    positive = eps >= 0 if allow_zero else eps > 0
    if not (math.isfinite(eps) and positive and eps <= limit):
        lower = "0 <=" if allow_zero else "0 <"
        raise EpsilonOutOfRangeError(
            f"eps={eps} is outside the valid range for the {norm} norm: it must satisfy "
            f"{lower} eps <= {limit:g} "
            f"given the model's input bounds {classifier.bounds}. Express eps in the model's input units."
        )


def check_device(classifier: Classifier, device: torch.device | str | None) -> torch.device:
    """Return the model's device, raising if ``device`` names a different one (None means the model's)."""
    wanted = resolve_device(device, classifier.device)
    have = classifier.device
    if wanted.type != have.type or (wanted.index is not None and have.index is not None and wanted.index != have.index):
        raise EngineInputError(
            f"The attack runs on {wanted} but the model lives on {have}; load the model with the same device."
        )
    return have


def prepare_batch(
    classifier: TorchClassifier, x: Tensor, y: Tensor, device: torch.device | str | None
) -> tuple[Tensor, Tensor]:
    """Move a batch to the attack device as detached float inputs and int64 labels, checking shapes."""
    check_device(classifier, device)
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise EngineInputError("x must be a floating-point torch tensor of shape (N, *input_shape).")
    classifier.check_input(x)
    if y.shape != (x.shape[0],):
        raise ShapeMismatchError(f"y must have shape ({x.shape[0]},) to match x; got {tuple(y.shape)}.")
    x = x.detach().to(device=classifier.device, dtype=classifier.input_dtype)
    y = y.detach().to(device=classifier.device, dtype=torch.int64)
    return x, y
