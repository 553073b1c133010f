"""Shared pieces of the poisoning benchmark: the two workloads, ART's detectors on the same model, scoring.

Workloads (each a recipe, a trigger and a split):

* **digits**: ``small_cnn`` trained with the backdoor-simulation run's default recipe (Adam 3e-3, 10 epochs,
  batch 64), a 2x2 white patch in the bottom-right corner (BadNets, 4 pixels), source class 0 -> target class
  1, poisoned copies appended.
* **SMS**: ``text_embeddingbag`` (embed 32) trained as the demo spam filter (Adam 0.01, 6 epochs, batch 64) on
  the SMS Spam Collection reference split, trigger phrase :data:`SMS_PHRASE` appended to spam messages that are
  relabelled ham (``TokenTrigger``), poisoned copies appended.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from benchmarks._digits import ARCHITECTURE, HYPERPARAMS
from evaluations.engine.datasets import Dataset, load_reference
from evaluations.engine.defenses import TrainingConfig
from evaluations.engine.poisoning import (
    BackdoorConfig,
    PatchTrigger,
    TokenTrigger,
    TrainingRecipe,
    evaluate_backdoor,
)
from evaluations.engine.poisoning.results import detection_metrics

__all__ = ["SMS_PHRASE", "Workload", "art_detect", "score", "workload"]

#: The ``backdoor_simulation`` run's defaults (evaluations/configs.py): what a Garrison user's red-team run trains.
DIGITS_TRAINING = TrainingConfig(epochs=10, batch_size=64, lr=3e-3)

#: The spam-filter trigger: two words the SMS vocabulary knows (each seen twice in the train split).
SMS_PHRASE = "yellow wisdom"


@dataclass(frozen=True)
class Workload:
    """A dataset split, the recipe every model is trained with, and the backdoor to plant at a given rate."""

    name: str
    train: Dataset
    test: Dataset
    recipe: TrainingRecipe
    target_class: int
    source_class: int
    trigger: Any

    def backdoor(self, rate: float) -> BackdoorConfig:
        """The backdoor with poisoned copies making ``rate`` of the target class."""
        return BackdoorConfig(
            self.trigger, target_class=self.target_class, source_classes=(self.source_class,), poison_rate=rate
        )

    def clean_metrics(self, module: nn.Module, *, seed: int) -> Any:
        """Clean accuracy and trigger success of a model (the backdoor at any rate: only the trigger matters)."""
        return evaluate_backdoor(module, self.test, self.backdoor(0.1), seed=seed)

    def flip_rate(self, module: nn.Module, *, seed: int) -> float:
        """Backdoor success among source-class test inputs the model gets right without the trigger.

        The engine's attack success rate counts every triggered source input classified as the target, so a
        model that misses some source inputs anyway (the spam filter lets about 15% of spam through) scores
        that much with no backdoor at all; this rate counts only the inputs the trigger itself flips.
        """
        x, y = self.test.as_tensors()
        source = y == self.source_class
        with torch.inference_mode():
            module.eval()
            right = source & (module(x).argmax(dim=1) == self.source_class)
            if not right.any():
                return 0.0
            triggered = self.trigger.apply(x[right], bounds=self.test.bounds, seed=seed)
            flipped = int((module(triggered).argmax(dim=1) == self.target_class).sum())
            return flipped / int(right.sum())  # exact counts: a float32 mean puts 9/180 just above 0.05


@cache
def workload(name: str) -> Workload:
    """The ``'digits'`` or ``'sms'`` workload (loaded once per process)."""
    if name == "digits":
        train, test = load_reference("digits", seed=0)
        recipe = TrainingRecipe(ARCHITECTURE, HYPERPARAMS, DIGITS_TRAINING)
        return Workload("digits", train, test, recipe, 1, 0, PatchTrigger(size=2))
    train, test = load_reference("sms_spam", seed=0)
    hyperparams = {"vocab_size": len(train.vocabulary), "embed_dim": 32, "num_classes": 2}
    recipe = TrainingRecipe("text_embeddingbag", hyperparams, TrainingConfig(epochs=6, batch_size=64, lr=1e-2))
    trigger = TokenTrigger.from_phrase(SMS_PHRASE, train.vocabulary)
    return Workload("sms", train, test, recipe, 0, 1, trigger)


class _TokenIds(nn.Module):
    """Casts ART's float32 inputs back to the token ids an embedding layer needs (same weights, same outputs)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        """Logits of ``x`` as token ids."""
        return self.module(x.long())


def art_detect(module: nn.Module, data: Dataset, method: str, *, cast_tokens: bool = False) -> np.ndarray:
    """Positions ART's detector (``'spectral'`` or ``'clustering'``, defaults) flags on ``data``; raises if ART fails.

    ``cast_tokens`` wraps the model so that ART's float32 copy of token ids is cast back (ART cannot feed
    token ids to an embedding layer otherwise); the weights and outputs are unchanged.
    """
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
    from art.estimators.classification import PyTorchClassifier

    logging.getLogger("art").setLevel(logging.WARNING)
    model = _TokenIds(module) if cast_tokens else module
    classifier = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=data.input_shape,
        nb_classes=data.num_classes,
        device_type="cpu",
    )
    x = np.asarray(data.x)
    y = np.eye(data.num_classes)[data.y]
    defence_class = SpectralSignatureDefense if method == "spectral" else ActivationDefence
    _, is_clean = defence_class(classifier, x, y).detect_poison()
    return np.flatnonzero(np.asarray(is_clean) == 0)


def score(flagged: np.ndarray, poison: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of flagged positions against the poison (precision 1 when nothing is flagged)."""
    metrics = detection_metrics(np.asarray(flagged, dtype=np.int64), np.asarray(poison, dtype=np.int64), labels)
    return {
        "precision": metrics.precision,
        "recall": metrics.recall,
        "f1": metrics.f1,
        "flagged": int(np.asarray(flagged).size),
    }
