"""Tiny seeded fixtures for the poisoning tests: synthetic features, a 4-class digits subset, toy SMS."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from evaluations.engine.datasets import Vocabulary, load_reference, stratified_split
from evaluations.engine.datasets.text import text_dataset
from evaluations.engine.defenses import TrainingConfig
from evaluations.engine.poisoning import BackdoorConfig, PatchTrigger, TrainingRecipe


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run these tiny models on one thread: extra OpenMP threads only add synchronisation, and on a busy
    machine their spin-waits slow the tests down several times (the input-space detector: 5 s vs 35 s)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def synthetic_features(
    *, n_per_class: int = 200, n_classes: int = 5, dim: int = 32, n_poison: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian class clusters; poisons are class-0 points plus a fixed offset, labelled class 1 (appended)."""
    rng = np.random.default_rng(seed)
    centres = 6.0 * np.eye(n_classes, dim)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    features = centres[labels] + rng.normal(size=(labels.size, dim))
    poison = np.arange(labels.size, labels.size + n_poison)
    if n_poison:
        trigger = 6.0 * np.eye(1, dim, dim - 1)[0]
        planted = centres[0] + rng.normal(size=(n_poison, dim)) + trigger
        features = np.concatenate([features, planted])
        labels = np.concatenate([labels, np.ones(n_poison, dtype=np.int64)])
    return features.astype(np.float32), labels, poison


@pytest.fixture
def planted() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Five classes of 200; 30 poisons (13% of the target class) planted in class 1."""
    return synthetic_features(n_poison=30)


@pytest.fixture(scope="session")
def digits_subset():
    """The digits reference workload (1,257 train / 540 test 8x8 images, 10 classes), split seed 0."""
    return load_reference("digits", seed=0)


@pytest.fixture(scope="session")
def digits_recipe() -> TrainingRecipe:
    """small_cnn on 8x8 digits, a few seconds on CPU."""
    return TrainingRecipe("small_cnn", {"input_size": 8}, TrainingConfig(epochs=15, lr=3e-3))


@pytest.fixture(scope="session")
def digits_backdoor() -> BackdoorConfig:
    """The benchmark's 4-pixel corner patch, source 0 -> target 1, a third of the target class poisoned."""
    return BackdoorConfig(PatchTrigger(size=2), target_class=1, source_classes=(0,), poison_rate=0.33)


_HAM = "see you at lunch tomorrow then call me when home ok love mum dinner later".split()
_SPAM = "win free prize claim cash now urgent txt reply stop offer award guaranteed".split()


@pytest.fixture(scope="session")
def toy_sms():
    """A toy ham/spam token dataset (ham=0, spam=1) whose vocabulary also knows the trigger words."""
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for label, words in ((0, _HAM), (1, _SPAM)):
        for _ in range(150):
            texts.append(" ".join(rng.choice(words, size=int(rng.integers(4, 9)))))
            labels.append(label)
    vocabulary = Vocabulary.build([*texts, "yellow wisdom"])
    data = text_dataset(
        texts, labels, class_names=("ham", "spam"), vocabulary=vocabulary, max_length=12, source="toy_sms"
    )
    return stratified_split(data, test_size=0.3, seed=0)
