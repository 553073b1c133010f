"""Tiny seeded models and data for the attack tests (scikit-learn digits, no downloads)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.datasets import load_digits

from evaluations.engine.common import seed_everything
from evaluations.engine.models import TorchClassifier, build

N_TRAIN = 1400


@contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread: tiny models run as fast, and far faster on a busy shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="package", autouse=True)
def _single_threaded_torch() -> Iterator[None]:
    """Run this package's tests with one torch thread, restoring the setting afterwards."""
    with one_thread():
        yield


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as (N, 1, 8, 8) float32 in [0, 1] and int64 labels."""
    data = load_digits()
    return (data.images / 16.0).astype(np.float32)[:, None], data.target.astype(np.int64)


@pytest.fixture(scope="session")
def digits_test(digits: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """The 397 held-out digits as tensors."""
    x, y = digits
    return torch.from_numpy(x[N_TRAIN:]), torch.from_numpy(y[N_TRAIN:])


@pytest.fixture(scope="session")
def digits_cnn(digits: tuple[np.ndarray, np.ndarray]) -> TorchClassifier:
    """small_cnn trained for a few epochs on the first 1,400 digits (about 94% test accuracy)."""
    seed_everything(0)
    x, y = (torch.from_numpy(a[:N_TRAIN]) for a in digits)
    model = build("small_cnn", in_channels=1, input_size=8, num_classes=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    with one_thread():  # the same numerics whichever fixture comes first
        for _ in range(10):
            for idx in torch.randperm(N_TRAIN).split(64):
                optimizer.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return TorchClassifier(model, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)
