"""A tiny seeded digits MLP as the victim, and the digits split (scikit-learn data, no downloads)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from evaluations.engine.datasets import load_reference
from evaluations.engine.models import TorchClassifier, build


@pytest.fixture(scope="package", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run faster on one thread than on oversubscribed shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits as ``(x_train, y_train, x_test, y_test)``: (N, 1, 8, 8) in [0, 1]; 1,257 / 540."""
    train, test = load_reference("digits", seed=0)
    return (*train.as_tensors(), *test.as_tensors())


@pytest.fixture(scope="package")
def victim_model(digits: tuple[torch.Tensor, ...]) -> TorchClassifier:
    """An MLP (64 hidden units) trained for 15 epochs on digits (about 96% test accuracy)."""
    x, y = digits[0], digits[1]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        module = build("mlp", in_features=64, hidden=64, num_classes=10)
        optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
        generator = torch.Generator().manual_seed(0)
        for _ in range(15):
            for index in torch.randperm(len(y), generator=generator).split(64):
                optimizer.zero_grad()
                F.cross_entropy(module(x[index]), y[index]).backward()
                optimizer.step()
    return TorchClassifier(module.eval(), input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)
