"""Workloads of the extraction benchmark: the digits CNN and the SMS spam filter as victims, plus helpers.

A :class:`Workload` is a victim classifier, the attacker's natural pool (the victim's train split: an
in-distribution public pool, the attacker's best case and the detector's hardest), the held-out inputs
fidelity is measured on (the test split, which benign clients also draw from), and the surrogate the
attacker trains.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from benchmarks._digits import digits
from evaluations.engine.datasets import load_reference
from evaluations.engine.defenses import TrainingConfig, train_module
from evaluations.engine.defenses.training import accuracy
from evaluations.engine.extraction import (
    ActiveLearning,
    GaussianNoise,
    JacobianAugmentation,
    LabelOnly,
    NaturalPool,
    RandomQueries,
    ReverseSigmoid,
    Rounding,
    TopK,
    Victim,
    VictimAnswer,
)
from evaluations.engine.models import TorchClassifier, build

__all__ = ["DEFENSES", "STRATEGIES", "Recorder", "Workload", "defenses_for", "digits_workload", "spam_workload"]

SEED = 0
#: The spam filter as the service demo trains it (``evaluations.demo.train_spam_embeddingbag``).
SPAM_TRAINING = TrainingConfig(epochs=6, batch_size=64, lr=1e-2)
SPAM_EMBED_DIM = 32

#: Strategy name -> constructor; the same settings on both workloads.
STRATEGIES: dict[str, Callable[[], Any]] = {
    "random": RandomQueries,
    "natural_pool": NaturalPool,
    "jacobian": lambda: JacobianAugmentation(step=0.1, seed_size=50),
    "active": lambda: ActiveLearning(initial=50, step=100),
}
DEFENSES: tuple[str, ...] = ("none", "label_only", "top_k", "rounding", "reverse_sigmoid", "gaussian_noise")


@dataclass(frozen=True)
class Workload:
    """A victim and the data around it."""

    name: str
    title: str
    classifier: TorchClassifier
    pool: Tensor
    pool_y: np.ndarray
    x_eval: Tensor
    y_eval: Tensor
    surrogate: str
    surrogate_hyperparams: dict[str, Any] = field(default_factory=dict)
    victim_accuracy: float = 0.0
    train_seconds: float = 0.0

    @property
    def tokens(self) -> bool:
        """Whether the victim takes token ids."""
        return not self.classifier.input_dtype.is_floating_point


def defenses_for(workload: Workload) -> dict[str, Any]:
    """Each defense with the parameters used on this workload (None: undefended).

    Top-k reveals k = 3 classes on digits; on the two-class spam filter k = 1 (k must be below C to hide
    anything), which after renormalisation is the label only.
    """
    k = min(3, workload.classifier.num_classes - 1)
    return {
        "none": None,
        "label_only": LabelOnly(),
        "top_k": TopK(k=k),
        "rounding": Rounding(decimals=2),
        "reverse_sigmoid": ReverseSigmoid(beta=0.7, gamma=1.2),
        "gaussian_noise": GaussianNoise(std=0.05, seed=SEED),
    }


@cache
def digits_workload() -> Workload:
    """The digits ``small_cnn`` of the other benchmarks; the attacker's surrogate is the engine's default MLP."""
    d = digits()
    return Workload(
        name="digits",
        title="digits (small_cnn victim, MLP surrogate)",
        classifier=d.classifier,
        pool=torch.tensor(d.train.x),
        pool_y=np.asarray(d.train.y),
        x_eval=d.x_test,
        y_eval=d.y_test,
        surrogate="mlp",
        victim_accuracy=d.clean_accuracy,
        train_seconds=d.train_seconds,
    )


@cache
def spam_workload() -> Workload:
    """The SMS spam filter (``text_embeddingbag``, seeded) and a ``text_embeddingbag`` surrogate."""
    train, test = load_reference("sms_spam", seed=SEED)
    hyperparams = {"vocab_size": len(train.vocabulary), "embed_dim": SPAM_EMBED_DIM, "num_classes": 2}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        module = build("text_embeddingbag", **hyperparams)
    x_train, y_train = torch.tensor(train.x), torch.tensor(train.y)
    started = time.perf_counter()
    train_module(module, x_train, y_train, SPAM_TRAINING, seed=SEED)
    seconds = time.perf_counter() - started
    classifier = TorchClassifier(
        module,
        input_shape=(int(train.x.shape[1]),),
        bounds=(0.0, float(hyperparams["vocab_size"] - 1)),
        num_classes=2,
        input_dtype=torch.int64,
    )
    x_test, y_test = torch.tensor(test.x), torch.tensor(test.y)
    return Workload(
        name="spam",
        title="SMS spam filter (text_embeddingbag victim and surrogate)",
        classifier=classifier,
        pool=x_train,
        pool_y=np.asarray(train.y),
        x_eval=x_test,
        y_eval=y_test,
        surrogate="text_embeddingbag",
        surrogate_hyperparams={"vocab_size": hyperparams["vocab_size"], "embed_dim": SPAM_EMBED_DIM},
        victim_accuracy=accuracy(module, x_test, y_test, device="cpu"),
        train_seconds=seconds,
    )


class Recorder(Victim):
    """Passes queries to a victim and keeps what the attacker sent and the probabilities it was shown."""

    def __init__(self, victim: Victim) -> None:
        super().__init__(
            input_shape=victim.input_shape,
            num_classes=victim.num_classes,
            bounds=victim.bounds,
            input_dtype=victim.input_dtype,
        )
        self.victim = victim
        self.x: list[Tensor] = []
        self.probs: list[np.ndarray] = []

    def _answer(self, x: Tensor) -> VictimAnswer:
        answer = self.victim.query(x)
        self.count(int(x.shape[0]))
        self.x.append(x)
        self.probs.append(answer.soft_targets(self.num_classes))
        return answer

    def describe(self) -> dict[str, Any]:
        """The wrapped victim's description."""
        return {**self.victim.describe(), "recorded": True}
