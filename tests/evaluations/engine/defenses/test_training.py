"""The plain seeded training loop."""

from __future__ import annotations

import pytest
import torch

from evaluations.engine.common import Cancelled, InvalidConfigError
from evaluations.engine.defenses import TrainingConfig, train_module
from evaluations.engine.models import build


def _model() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build("mlp", in_features=64, hidden=16, num_classes=10)


def test_plain_training_learns_and_records_clean_metrics(tiny_digits) -> None:
    train, test = tiny_digits
    module = _model()
    history = train_module(
        module, *train.as_tensors(), TrainingConfig(epochs=8, lr=1e-2), seed=0, eval_data=test.as_tensors()
    )
    assert history[-1].clean_loss < history[0].clean_loss
    assert history[-1].eval_accuracy > 0.8
    assert history[-1].adversarial_loss is None and not module.training


def test_the_cyclic_schedule_rises_then_falls_to_zero(tiny_digits) -> None:
    train, _ = tiny_digits
    rates = [
        r.learning_rate
        for r in train_module(
            _model(), *train.as_tensors(), TrainingConfig(epochs=5, lr=0.01, lr_schedule="cyclic"), seed=0
        )
    ]
    assert rates[-1] == 0.0 and max(rates) <= 0.01 and rates[1] > rates[0]


def test_a_perturbation_is_required_for_an_adversarial_fraction(tiny_digits) -> None:
    train, _ = tiny_digits
    with pytest.raises(InvalidConfigError, match="perturb"):
        train_module(_model(), *train.as_tensors(), TrainingConfig(), seed=0, adversarial_fraction=0.5)


def test_cancellation_is_checked_before_each_step(tiny_digits) -> None:
    train, _ = tiny_digits
    steps: list[float] = []
    with pytest.raises(Cancelled):
        train_module(
            _model(),
            *train.as_tensors(),
            TrainingConfig(),
            seed=0,
            progress=steps.append,
            should_cancel=lambda: len(steps) == 2,
        )
    assert len(steps) == 2
