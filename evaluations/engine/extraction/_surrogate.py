"""The attacker's surrogate: build a registered architecture for the victim's shapes and fit it to answers.

The defenses package's ``train_module`` takes integer labels only; a surrogate learns from the victim's
probability vectors (soft labels, Hinton-style distillation), so it has its own small loop here:
cross-entropy against target distributions, Adam, batches drawn by a seeded generator.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from torch import Tensor, nn

from evaluations.engine.common import make_generator
from evaluations.engine.models import TorchClassifier, get_architecture

__all__ = ["SurrogateTraining", "build_surrogate", "fit_surrogate", "predict_probabilities"]


@dataclass(frozen=True)
class SurrogateTraining:
    """Optimiser settings: at least ``min_steps`` Adam steps, else ``epochs`` passes over the answers."""

    epochs: int = 30
    min_steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3


def build_surrogate(
    architecture: str, hyperparams: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int, seed: int
) -> nn.Module:
    """A freshly initialised ``architecture`` whose input and class sizes are filled in from the victim."""
    arch = get_architecture(architecture)
    accepted = inspect.signature(arch.builder).parameters
    derived = {
        "in_features": math.prod(input_shape),
        "in_channels": input_shape[0],
        "input_size": input_shape[-1],
        "num_classes": num_classes,
    }
    params = {key: value for key, value in derived.items() if key in accepted}
    params.update(hyperparams)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG state
        torch.manual_seed(seed)
        return arch.build(**params)


def fit_surrogate(
    module: nn.Module,
    x: Tensor,
    targets: Tensor,
    training: SurrogateTraining,
    *,
    seed: int,
    device: torch.device,
) -> nn.Module:
    """Train ``module`` in place on inputs ``(N, *shape)`` and target distributions ``(N, C)``; ends in eval mode."""
    module.to(device).train()
    optimizer = torch.optim.Adam(module.parameters(), lr=training.lr)
    generator = make_generator(seed)
    n = x.shape[0]
    per_epoch = math.ceil(n / training.batch_size)
    steps = max(training.epochs * per_epoch, training.min_steps)
    x, targets = x.to(device), targets.to(device)
    done = 0
    while done < steps:
        for index in torch.randperm(n, generator=generator).split(training.batch_size):
            index = index.to(device)
            loss = F.cross_entropy(module(x[index]), targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done >= steps:
                break
    optimizer.zero_grad(set_to_none=True)
    return module.eval()


def predict_probabilities(module: nn.Module, x: Tensor, *, device: torch.device, batch_size: int = 1024) -> np.ndarray:
    """Softmax outputs ``(N, C)`` of ``module`` as float64 numpy, without gradients."""
    parts = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            logits = module(x[start : start + batch_size].to(device))
            parts.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
    return np.concatenate(parts) if parts else np.empty((0, 0))


def as_classifier(
    module: nn.Module, input_shape: tuple[int, ...], bounds: tuple[float, float], num_classes: int, device: torch.device
) -> TorchClassifier:
    """The surrogate as a :class:`TorchClassifier`, for white-box attacks crafted on it."""
    return TorchClassifier(module, input_shape=input_shape, bounds=bounds, num_classes=num_classes, device=device)
