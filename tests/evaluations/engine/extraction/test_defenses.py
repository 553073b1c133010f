"""Output defenses keep the batch shape and, where they claim to, every row's top-1 class."""

from __future__ import annotations

import numpy as np
import pytest

from evaluations.engine.common import InvalidConfigError, ShapeMismatchError
from evaluations.engine.extraction import (
    GaussianNoise,
    LabelOnly,
    ReverseSigmoid,
    Rounding,
    TopK,
    defense_utility,
    reverse_sigmoid,
    round_probabilities,
)

TOP1_KEEPING = [LabelOnly(), TopK(k=1), TopK(k=3), Rounding(decimals=0), Rounding(decimals=1), Rounding(decimals=2)]
TOP1_KEEPING += [ReverseSigmoid(beta=0.7, gamma=1.2), ReverseSigmoid(beta=0.3, gamma=3.0)]


@pytest.fixture
def batch() -> np.ndarray:
    """64 random probability vectors over 10 classes, some peaked, some flat, plus exact ties."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(64, 10)) * rng.choice([0.3, 1.0, 4.0], size=(64, 1))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs[0] = [0.34, 0.33, 0.33] + [0.0] * 7  # rounds to a three-way tie at one decimal
    probs[1] = [0.1] * 10  # all tied: top-1 is class 0
    probs[2] = [0.0, 0.45, 0.45, 0.1] + [0.0] * 6  # tie between 1 and 2: top-1 is class 1
    return probs


@pytest.mark.parametrize("defense", TOP1_KEEPING + [GaussianNoise(std=0.1, seed=1)], ids=lambda d: str(d))
def test_every_defense_keeps_the_batch_shape(defense, batch):
    out = defense(batch)
    assert out.shape == batch.shape
    assert np.isfinite(out).all() and (out >= 0).all()


@pytest.mark.parametrize("defense", TOP1_KEEPING, ids=lambda d: str(d))
def test_defenses_that_claim_it_keep_every_rows_top1_on_a_batch(defense, batch):
    assert defense.keeps_top1
    out = defense(batch)
    np.testing.assert_array_equal(out.argmax(axis=1), batch.argmax(axis=1))
    # Row by row gives the same answer as the batch (no cross-row leakage, as in ART's ClassLabels bug).
    np.testing.assert_allclose(np.concatenate([defense(row[None]) for row in batch]), out)


def test_label_only_returns_one_hot_rows(batch):
    out = LabelOnly()(batch)
    np.testing.assert_array_equal(out.sum(axis=1), np.ones(64))
    assert set(np.unique(out)) == {0.0, 1.0}


def test_top_k_keeps_exactly_k_classes_and_renormalises(batch):
    out = TopK(k=3)(batch[3:])
    assert ((out > 0).sum(axis=1) == 3).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_rounding_breaks_a_tie_at_the_top_for_the_original_top_class(batch):
    out = round_probabilities(batch[:1], 1)
    assert out[0, 0] > out[0, 1] == out[0, 2]
    assert np.allclose(out * 10, np.round(out * 10))  # still on the one-decimal grid


def test_reverse_sigmoid_changes_the_probabilities_but_keeps_argmax(batch):
    out = reverse_sigmoid(batch, beta=0.7, gamma=1.2)
    assert np.abs(out - batch).max() > 0.05
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_array_equal(out.argmax(axis=1), batch.argmax(axis=1))


def test_reverse_sigmoid_row_by_row_matches_the_array_formula(batch, monkeypatch):
    from evaluations.engine.extraction import defenses

    rows = reverse_sigmoid(batch, beta=0.7, gamma=1.2)  # 10 classes: Python floats, row by row
    monkeypatch.setattr(defenses, "_ROW_WISE_CLASSES", 1)
    array = reverse_sigmoid(batch, beta=0.7, gamma=1.2)  # the numpy path
    np.testing.assert_allclose(rows, array, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(rows.argmax(axis=1), array.argmax(axis=1))


def test_reverse_sigmoid_answers_a_row_alike_alone_and_in_a_batch(batch):
    whole = reverse_sigmoid(batch, beta=0.7, gamma=1.2)
    for i in (0, 5, 63):
        np.testing.assert_array_equal(reverse_sigmoid(batch[i : i + 1], beta=0.7, gamma=1.2)[0], whole[i])


def test_reverse_sigmoid_refuses_non_finite_rows_and_one_hots_a_dead_row():
    with pytest.raises(InvalidConfigError, match="NaN or infinite"):
        reverse_sigmoid(np.array([[0.5, np.nan]]), beta=0.7, gamma=1.2)
    # a row that is not a distribution, with beta far outside the monotone range: every class is pushed to 0, so
    # the row falls back to the one-hot of its top class
    out = reverse_sigmoid(np.array([[0.9, 0.95]]), beta=50.0, gamma=1.0)
    np.testing.assert_array_equal(out, [[0.0, 1.0]])


def test_reverse_sigmoid_outside_its_guarantee_says_so():
    assert not ReverseSigmoid(beta=2.0, gamma=1.0).keeps_top1
    assert not ReverseSigmoid(beta=0.5, gamma=0.5).keeps_top1


def test_gaussian_noise_is_seeded(batch):
    a, b, c = GaussianNoise(std=0.1, seed=3)(batch), GaussianNoise(std=0.1, seed=3)(batch), GaussianNoise(0.1, 4)(batch)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(a.sum(axis=1), 1.0)


def test_a_single_vector_is_refused_with_a_hint():
    with pytest.raises(ShapeMismatchError, match=r"probs\[None\]"):
        LabelOnly()(np.array([0.2, 0.8]))


def test_invalid_defense_parameters_are_named():
    with pytest.raises(InvalidConfigError, match="k must be"):
        TopK(k=0)
    with pytest.raises(InvalidConfigError, match="beta"):
        ReverseSigmoid(beta=-1.0)


def test_defense_utility_reports_the_cost_to_the_victims_users(victim_model, digits):
    x, y = digits[2][:200], digits[3][:200]
    kept = defense_utility(victim_model, Rounding(decimals=1), x, y)
    assert kept.top1_agreement == 1.0 and kept.accuracy == kept.undefended_accuracy > 0.9
    noisy = defense_utility(victim_model, GaussianNoise(std=0.3, seed=0), x, y)
    assert noisy.top1_agreement < 1.0 and noisy.accuracy_drop > 0
    assert noisy.to_dict()["defense"]["name"] == "gaussian_noise"
