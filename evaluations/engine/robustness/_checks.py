"""Validation shared by the attacks and the sweep: model kind, device, batch, dataset and perturbation budget."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from evaluations.engine.common import (
    EmptyDatasetError,
    EngineInputError,
    EpsilonOutOfRangeError,
    InputOutOfBoundsError,
    LabelOutOfRangeError,
    NonFiniteInputError,
    NotDifferentiableError,
    ShapeMismatchError,
    resolve_device,
)
from evaluations.engine.models.classifier import Classifier, TorchClassifier

NORMS = ("linf", "l2")
BOUNDS_TOLERANCE = 1e-6


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


def as_dataset(classifier: Classifier, x: Any, y: Any, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Validate a whole dataset ``x``/``y`` and return CPU tensors (``dtype``, int64)."""
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
    if not dtype.is_floating_point and x_t.is_floating_point() and not bool((x_t == x_t.round()).all()):
        raise EngineInputError("This model takes integer token ids; x holds fractional values.")
    x_t = x_t.to(dtype)
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
    if x_min < lo - BOUNDS_TOLERANCE or x_max > hi + BOUNDS_TOLERANCE:
        raise InputOutOfBoundsError(
            f"x ranges over [{x_min:g}, {x_max:g}] but the model's input bounds are [{lo:g}, {hi:g}]; "
            "preprocess the data the way the model was trained, or declare the right bounds."
        )
    return x_t, y_t
