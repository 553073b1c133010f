"""PGD: projection onto the eps-ball and bounds, strength, seeding, restarts and early stop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from evaluations.engine.common import EpsilonOutOfRangeError, InvalidConfigError, make_generator
from evaluations.engine.robustness import FGSMConfig, PGDConfig, fgsm, pgd
from evaluations.engine.robustness.pgd import _run


def _batch(digits_test, n: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = digits_test
    return x[:n], y[:n]


def _loss_and_success(classifier, x_adv, y) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        logits = classifier.logits(x_adv)
    return F.cross_entropy(logits, y, reduction="none"), logits.argmax(dim=1) != y


def test_pgd_linf_stays_inside_the_eps_ball_and_the_bounds(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test)
    x_adv = pgd(digits_cnn, x, y, PGDConfig(eps=0.1, step_size=0.05, steps=10), seed=0)
    assert (x_adv - x).abs().amax() <= 0.1 + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_pgd_l2_stays_inside_the_eps_ball_and_the_bounds(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test)
    x_adv = pgd(digits_cnn, x, y, PGDConfig(eps=1.0, step_size=0.5, steps=10, norm="l2"), seed=0)
    norms = (x_adv - x).flatten(1).norm(dim=1)
    assert norms.max() <= 1.0 + 1e-5
    assert norms.max() > 0.9  # the budget is actually used
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.2])
def test_pgd_is_at_least_as_strong_as_fgsm_on_a_trained_model(digits_cnn, digits_test, eps: float) -> None:
    x, y = _batch(digits_test)
    loss_fgsm, fooled_fgsm = _loss_and_success(digits_cnn, fgsm(digits_cnn, x, y, FGSMConfig(eps=eps)), y)
    loss_pgd, fooled_pgd = _loss_and_success(digits_cnn, pgd(digits_cnn, x, y, PGDConfig(eps, steps=20), seed=0), y)
    assert fooled_pgd.float().mean() >= fooled_fgsm.float().mean()  # robust accuracy PGD <= FGSM
    assert loss_pgd.sum() >= loss_fgsm.sum()


def test_pgd_with_the_same_seed_is_reproducible(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test, 64)
    config = PGDConfig(eps=0.1, steps=5)
    first = pgd(digits_cnn, x, y, config, seed=7)
    assert torch.equal(first, pgd(digits_cnn, x, y, config, seed=7))
    assert not torch.equal(first, pgd(digits_cnn, x, y, config, seed=8))


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 1.0)])
def test_pgd_restarts_keep_the_worst_case_per_sample(digits_cnn, digits_test, norm: str, eps: float) -> None:
    x, y = _batch(digits_test)
    config = PGDConfig(eps=eps, steps=3, norm=norm, restarts=3)

    best = pgd(digits_cnn, x, y, config, seed=3)

    # Replay the three restarts from the same generator and pick the worst case by hand.
    generator = make_generator(3)
    with digits_cnn.frozen_parameters():
        runs = [_run(digits_cnn, x, y, config, generator) for _ in range(3)]
    losses, successes = zip(*(_loss_and_success(digits_cnn, run, y) for run in runs), strict=True)
    loss, success = _loss_and_success(digits_cnn, best, y)
    for i in range(x.shape[0]):
        expected = max(range(3), key=lambda r: (bool(successes[r][i]), float(losses[r][i])))
        assert torch.equal(best[i], runs[expected][i])
    assert torch.equal(success, torch.stack(successes).any(dim=0))
    single_loss, single_success = _loss_and_success(
        digits_cnn, pgd(digits_cnn, x, y, PGDConfig(eps=eps, steps=3, norm=norm), seed=3), y
    )
    assert bool((success | ~single_success).all())
    same = success == single_success
    assert bool((loss[same] >= single_loss[same]).all())


def test_pgd_restarts_with_early_stop_never_lose_a_fooled_sample(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test)
    one = pgd(digits_cnn, x, y, PGDConfig(eps=0.08, steps=5, early_stop=True), seed=1)
    three = pgd(digits_cnn, x, y, PGDConfig(eps=0.08, steps=5, early_stop=True, restarts=3), seed=1)
    _, fooled_one = _loss_and_success(digits_cnn, one, y)
    _, fooled_three = _loss_and_success(digits_cnn, three, y)
    assert bool((fooled_three | ~fooled_one).all())
    assert (three - x).abs().amax() <= 0.08 + 1e-6


def test_pgd_early_stop_leaves_already_misclassified_samples_where_they_are(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test)
    wrong = digits_cnn.predict(x) != y
    assert wrong.any()
    x_adv = pgd(digits_cnn, x, y, PGDConfig(eps=0.1, steps=5, random_start=False, early_stop=True), seed=0)
    assert torch.equal(x_adv[wrong], x[wrong])
    assert not torch.equal(x_adv[~wrong], x[~wrong])


def test_pgd_restores_parameter_gradients_after_the_attack(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test, 16)
    pgd(digits_cnn, x, y, PGDConfig(eps=0.1, steps=2, restarts=2), seed=0)
    assert all(p.requires_grad for p in digits_cnn.module.parameters())
    assert all(p.grad is None for p in digits_cnn.module.parameters())


def test_pgd_default_step_size_scales_with_eps() -> None:
    assert PGDConfig(eps=0.1, steps=20).resolved_step_size == pytest.approx(0.0125)
    assert PGDConfig(eps=0.1, step_size=0.01).resolved_step_size == 0.01


@pytest.mark.parametrize(
    "changes",
    [{"steps": 0}, {"restarts": 0}, {"steps": 2.5}, {"norm": "l1"}, {"step_size": -0.1}, {"early_stop": "yes"}],
)
def test_pgd_config_rejects_invalid_settings(changes: dict) -> None:
    with pytest.raises(InvalidConfigError):
        PGDConfig(eps=0.1, **changes)


def test_pgd_rejects_a_linf_eps_wider_than_the_bounds(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test, 4)
    with pytest.raises(EpsilonOutOfRangeError, match="linf"):
        pgd(digits_cnn, x, y, PGDConfig(eps=1.5), seed=0)


def test_pgd_l2_accepts_eps_up_to_the_diagonal_of_the_input_box(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test, 4)
    pgd(digits_cnn, x, y, PGDConfig(eps=2.0, steps=1, norm="l2"), seed=0)  # MNIST-style L2 budget
    with pytest.raises(EpsilonOutOfRangeError, match="l2"):
        pgd(digits_cnn, x, y, PGDConfig(eps=8.5, norm="l2"), seed=0)  # sqrt(64) = 8 is the diagonal
