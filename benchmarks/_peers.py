"""Peer wrappers (ART, torchattacks), the input-gradient floor, and agreement between adversarial sets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from torch import Tensor, nn

__all__ = ["agreement", "art_classifier", "frozen", "gradient_floor", "robust_accuracy"]


def art_classifier(module: nn.Module) -> Any:
    """ART's ``PyTorchClassifier`` around ``module``: CE loss, digits shape, inputs clipped to [0, 1], CPU."""
    from art.estimators.classification import PyTorchClassifier

    # ART logs a success rate per generate() call at INFO; it still computes it, but we keep stdout clean.
    logging.getLogger("art").setLevel(logging.WARNING)
    return PyTorchClassifier(
        model=module,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Parameters without gradients (as the engine's attacks run), restored afterwards."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def gradient_floor(
    module: nn.Module, batches: list[tuple[Tensor, Tensor]], steps: int, *, channels_last: bool = False
) -> None:
    """The irreducible cost of a gradient attack: ``steps`` x (forward + input-gradient backward) per batch.

    Parameters are frozen and nothing else is done (no sign, step, projection or validation). With
    ``channels_last`` each batch is laid out ``torch.channels_last`` first, as the engine does for conv nets on
    the CPU: the same operations on the same values, in the engine's layout.
    """
    with frozen(module):
        for xb, yb in batches:
            x = xb.detach()
            if channels_last:
                x = torch.empty_like(x, memory_format=torch.channels_last).copy_(x)
            for _ in range(steps):
                x.requires_grad_(True)
                loss = F.cross_entropy(module(x), yb, reduction="sum")
                (grad,) = torch.autograd.grad(loss, x)
                x = x.detach()


def robust_accuracy(module: nn.Module, x_adv: Tensor | np.ndarray, y: Tensor) -> float:
    """Accuracy of ``module`` on adversarial inputs."""
    with torch.inference_mode():
        pred = module(torch.as_tensor(np.asarray(x_adv) if not isinstance(x_adv, Tensor) else x_adv)).argmax(dim=1)
    return float((pred == y).float().mean())


def agreement(module: nn.Module, a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> dict[str, float]:
    """How alike two adversarial sets are: same-prediction rate, max abs difference, identical-pixel rate."""
    ta = torch.as_tensor(np.asarray(a)) if not isinstance(a, Tensor) else a.detach()
    tb = torch.as_tensor(np.asarray(b)) if not isinstance(b, Tensor) else b.detach()
    with torch.inference_mode():
        same = (module(ta).argmax(dim=1) == module(tb).argmax(dim=1)).float().mean()
    diff = (ta - tb).abs()
    return {
        "prediction_agreement": float(same),
        "max_abs_difference": float(diff.max()),
        "identical_pixels": float((diff == 0).float().mean()),
    }
