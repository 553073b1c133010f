"""The digits workload shared by the attack benchmarks: the reference split and a seeded ``small_cnn``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from torch import Tensor

from evaluations.engine.datasets import Dataset, load_reference
from evaluations.engine.defenses import TrainingConfig, train_module
from evaluations.engine.defenses.training import accuracy
from evaluations.engine.models import TorchClassifier, build

__all__ = ["ARCHITECTURE", "BATCH_SIZE", "HYPERPARAMS", "SEED", "Digits", "batches", "digits"]

SEED = 0
BATCH_SIZE = 128
ARCHITECTURE = "small_cnn"
HYPERPARAMS = {"in_channels": 1, "input_size": 8, "num_classes": 10}
#: Plain training as in DIGITS_CONFIG's docstring: Adam at 0.01 for 10 epochs.
TRAINING = TrainingConfig(epochs=10, batch_size=64, lr=1e-2, optimizer="adam")


@dataclass(frozen=True)
class Digits:
    """The digits split, a plainly trained ``small_cnn`` and the test set as tensors."""

    train: Dataset
    test: Dataset
    classifier: TorchClassifier
    x_test: Tensor
    y_test: Tensor
    clean_accuracy: float
    train_seconds: float

    @property
    def module(self) -> torch.nn.Module:
        """The trained module (shared with the peers' wrappers)."""
        return self.classifier.module

    @property
    def x_test_np(self) -> np.ndarray:
        """Test inputs as a float32 array (what ART takes)."""
        return self.test.x

    @property
    def y_test_np(self) -> np.ndarray:
        """Test labels as an int64 array."""
        return self.test.y


@cache
def digits() -> Digits:
    """Load the reference split and train the seeded model once per process."""
    train, test = load_reference("digits", seed=SEED)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        module = build(ARCHITECTURE, **HYPERPARAMS)
    x_train, y_train = train.as_tensors()
    started = time.perf_counter()
    train_module(module, x_train, y_train, TRAINING, seed=SEED)
    seconds = time.perf_counter() - started
    classifier = TorchClassifier(module, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)
    x_test, y_test = test.as_tensors()
    return Digits(
        train=train,
        test=test,
        classifier=classifier,
        x_test=x_test,
        y_test=y_test,
        clean_accuracy=accuracy(module, x_test, y_test, device="cpu"),
        train_seconds=seconds,
    )


def batches(x: Tensor, y: Tensor, size: int = BATCH_SIZE) -> list[tuple[Tensor, Tensor]]:
    """``(x, y)`` cut into consecutive batches of ``size`` (the last one smaller)."""
    return [(x[i : i + size], y[i : i + size]) for i in range(0, x.shape[0], size)]
