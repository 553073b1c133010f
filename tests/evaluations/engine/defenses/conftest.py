"""A tiny seeded digits problem: 300 train / 100 test samples and an MLP trained plainly on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from evaluations.engine.datasets import Dataset, load_reference
from evaluations.engine.defenses import TrainingConfig, train_module
from evaluations.engine.models import TorchClassifier, build

MLP = {"in_features": 64, "hidden": 32}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run these tiny models on one thread: extra OpenMP threads only add synchronisation, and on a busy
    machine their spin-waits slow the tests down tens of times."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_digits() -> tuple[Dataset, Dataset]:
    """The first 300 train and 100 test digits of the reference split."""
    train, test = load_reference("digits")
    return train.subset(range(300)), test.subset(range(100))


@pytest.fixture(scope="module")
def undefended(tiny_digits: tuple[Dataset, Dataset]) -> TorchClassifier:
    """An MLP trained without any defense (about 97% clean, 54% robust accuracy at eps 0.1)."""
    train, _ = tiny_digits
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = build("mlp", num_classes=10, **MLP)
    x, y = train.as_tensors()
    train_module(module, x, y, TrainingConfig(epochs=10, lr=1e-2), seed=0)
    return TorchClassifier(module, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)
