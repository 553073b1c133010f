"""APGD-CE: the checkpoint schedule, strength against PGD-20, projection, seeding and restarts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from evaluations.engine.common import EpsilonOutOfRangeError, InvalidConfigError, NotDifferentiableError
from evaluations.engine.models import SklearnClassifier
from evaluations.engine.robustness import APGDConfig, PGDConfig, apgd, pgd
from evaluations.engine.robustness.apgd import apgd_checkpoints


def _robust_accuracy(classifier, x_adv, y) -> float:
    return float((classifier.predict(x_adv) == y).double().mean())


def test_checkpoints_follow_the_papers_schedule() -> None:
    # p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (Croce & Hein 2020, section 3.2).
    assert apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert apgd_checkpoints(1) == []
    assert all(0 < w < 20 for w in apgd_checkpoints(20))


@pytest.mark.parametrize("steps", [20, 100])
def test_apgd_is_at_least_as_strong_as_pgd_20_on_the_digits_cnn(digits_cnn, digits_test, steps: int) -> None:
    x, y = digits_test
    pgd_accuracy = _robust_accuracy(digits_cnn, pgd(digits_cnn, x, y, PGDConfig(eps=0.1, steps=20), seed=0), y)
    apgd_accuracy = _robust_accuracy(digits_cnn, apgd(digits_cnn, x, y, APGDConfig(eps=0.1, steps=steps), seed=0), y)
    assert apgd_accuracy <= pgd_accuracy
    assert apgd_accuracy < 0.7  # and it actually attacks (clean accuracy is about 0.94)


def test_apgd_linf_stays_inside_the_eps_ball_and_the_bounds(digits_cnn, digits_test) -> None:
    x, y = digits_test[0][:128], digits_test[1][:128]
    x_adv = apgd(digits_cnn, x, y, APGDConfig(eps=0.1, steps=10), seed=0)
    assert (x_adv - x).abs().amax() <= 0.1 + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_apgd_l2_stays_inside_the_eps_ball_and_the_bounds(digits_cnn, digits_test) -> None:
    x, y = digits_test[0][:128], digits_test[1][:128]
    x_adv = apgd(digits_cnn, x, y, APGDConfig(eps=1.0, steps=10, norm="l2"), seed=0)
    norms = (x_adv - x).flatten(1).norm(dim=1)
    assert norms.max() <= 1.0 + 1e-5
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    accuracy = _robust_accuracy(digits_cnn, x_adv, y)
    assert accuracy <= _robust_accuracy(
        digits_cnn, pgd(digits_cnn, x, y, PGDConfig(eps=1.0, steps=10, norm="l2"), seed=0), y
    )


def test_apgd_with_the_same_seed_is_reproducible(digits_cnn, digits_test) -> None:
    x, y = digits_test[0][:64], digits_test[1][:64]
    config = APGDConfig(eps=0.1, steps=5)
    first = apgd(digits_cnn, x, y, config, seed=7)
    assert torch.equal(first, apgd(digits_cnn, x, y, config, seed=7))
    assert not torch.equal(first, apgd(digits_cnn, x, y, config, seed=8))


def test_apgd_restarts_never_lose_a_fooled_sample(digits_cnn, digits_test) -> None:
    x, y = digits_test[0][:128], digits_test[1][:128]
    one = apgd(digits_cnn, x, y, APGDConfig(eps=0.06, steps=5), seed=1)
    three = apgd(digits_cnn, x, y, APGDConfig(eps=0.06, steps=5, restarts=3), seed=1)
    fooled_one = digits_cnn.predict(one) != y
    fooled_three = digits_cnn.predict(three) != y
    assert bool((fooled_three | ~fooled_one).all())
    assert (three - x).abs().amax() <= 0.06 + 1e-6


def test_apgd_restores_parameter_gradients_after_the_attack(digits_cnn, digits_test) -> None:
    x, y = digits_test[0][:16], digits_test[1][:16]
    apgd(digits_cnn, x, y, APGDConfig(eps=0.1, steps=3, restarts=2), seed=0)
    assert all(p.requires_grad for p in digits_cnn.module.parameters())
    assert all(p.grad is None for p in digits_cnn.module.parameters())


@pytest.mark.parametrize(
    "changes",
    [{"steps": 0}, {"restarts": 0}, {"norm": "l1"}, {"rho": 0.0}, {"momentum": 1.5}, {"steps": 2.5}],
)
def test_apgd_config_rejects_invalid_settings(changes: dict) -> None:
    with pytest.raises(InvalidConfigError):
        APGDConfig(eps=0.1, **changes)


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan")])
def test_apgd_config_rejects_non_positive_or_non_finite_eps(eps: float) -> None:
    with pytest.raises(EpsilonOutOfRangeError):
        APGDConfig(eps=eps)


def test_apgd_refuses_a_model_without_input_gradients() -> None:
    x = np.random.default_rng(0).random((40, 2)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)
    classifier = SklearnClassifier(LogisticRegression().fit(x, y), input_shape=(2,), bounds=(0.0, 1.0), num_classes=2)
    with pytest.raises(NotDifferentiableError, match="black-box"):
        apgd(classifier, torch.from_numpy(x), torch.from_numpy(y), APGDConfig(eps=0.1), seed=0)
