"""Square Attack: strength on torch and scikit-learn models, the query budget, the ball and the bounds."""

from __future__ import annotations

import pytest
import torch
from sklearn.linear_model import LogisticRegression

from evaluations.engine.common import EpsilonOutOfRangeError, InvalidConfigError
from evaluations.engine.models import SklearnClassifier
from evaluations.engine.robustness import SquareConfig, square
from evaluations.engine.robustness.square import margin, square_fraction

N_TRAIN = 1400


@pytest.fixture(scope="module")
def digits_logreg(digits) -> SklearnClassifier:
    """A scikit-learn logistic regression on the flattened training digits, seen as (1, 8, 8) images."""
    x, y = digits
    estimator = LogisticRegression(max_iter=300).fit(x[:N_TRAIN].reshape(N_TRAIN, -1), y[:N_TRAIN])
    return SklearnClassifier(estimator, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)


def _accuracy(classifier, x, y) -> float:
    return float((classifier.predict(x) == y).double().mean())


def test_square_reduces_accuracy_of_the_digits_cnn(digits_cnn, digits_test) -> None:
    x, y = digits_test[0][:96], digits_test[1][:96]
    result = square(digits_cnn, x, y, SquareConfig(eps=0.15, n_queries=200), seed=0)
    assert _accuracy(digits_cnn, result.adversarial, y) < _accuracy(digits_cnn, x, y) - 0.3
    assert torch.equal(result.success, digits_cnn.predict(result.adversarial) != y)


def test_square_reduces_accuracy_of_a_scikit_learn_logistic_regression(digits_logreg, digits_test) -> None:
    x, y = digits_test[0][:96], digits_test[1][:96]
    result = square(digits_logreg, x, y, SquareConfig(eps=0.15, n_queries=200), seed=0)
    assert _accuracy(digits_logreg, x, y) > 0.9
    assert _accuracy(digits_logreg, result.adversarial, y) < _accuracy(digits_logreg, x, y) - 0.3


def test_square_respects_the_query_budget_and_counts_queries(digits_cnn, digits_test) -> None:
    x, y = digits_test[0][:96], digits_test[1][:96]
    result = square(digits_cnn, x, y, SquareConfig(eps=0.05, n_queries=50), seed=0)
    assert result.queries.dtype == torch.int64
    assert int(result.queries.max()) <= 50
    assert int(result.queries.max()) == 50  # some sample resists 50 queries at this small budget
    misclassified = digits_cnn.predict(x) != y
    assert bool((result.queries[misclassified] == 1).all())  # the clean query already fails them
    assert torch.equal(result.adversarial[misclassified], x[misclassified])


def test_square_stays_inside_the_eps_ball_and_the_bounds(digits_cnn, digits_test) -> None:
    x, y = digits_test[0][:64], digits_test[1][:64]
    result = square(digits_cnn, x, y, SquareConfig(eps=0.1, n_queries=100), seed=0)
    assert (result.adversarial - x).abs().amax() <= 0.1 + 1e-6
    assert result.adversarial.min() >= 0.0 and result.adversarial.max() <= 1.0


def test_square_perturbs_flat_tabular_inputs_coordinate_wise(digits) -> None:
    x, y = (torch.from_numpy(a) for a in digits)
    flat = x.reshape(-1, 64)
    estimator = LogisticRegression(max_iter=300).fit(flat[:N_TRAIN].numpy(), y[:N_TRAIN].numpy())
    classifier = SklearnClassifier(estimator, input_shape=(64,), bounds=(0.0, 1.0), num_classes=10)
    xs, ys = flat[N_TRAIN : N_TRAIN + 64], y[N_TRAIN : N_TRAIN + 64]
    result = square(classifier, xs, ys, SquareConfig(eps=0.2, n_queries=150), seed=0)
    assert (result.adversarial - xs).abs().amax() <= 0.2 + 1e-6
    assert _accuracy(classifier, result.adversarial, ys) < _accuracy(classifier, xs, ys) - 0.3


def test_square_with_the_same_seed_is_reproducible(digits_cnn, digits_test) -> None:
    x, y = digits_test[0][:32], digits_test[1][:32]
    config = SquareConfig(eps=0.05, n_queries=30)
    first = square(digits_cnn, x, y, config, seed=3)
    second = square(digits_cnn, x, y, config, seed=3)
    assert torch.equal(first.adversarial, second.adversarial)
    assert torch.equal(first.queries, second.queries)
    assert not torch.equal(first.adversarial, square(digits_cnn, x, y, config, seed=4).adversarial)


def test_square_fraction_halves_on_the_papers_schedule() -> None:
    assert square_fraction(0.8, 0, 10_000) == 0.8
    assert square_fraction(0.8, 11, 10_000) == 0.4
    assert square_fraction(0.8, 9_000, 10_000) == pytest.approx(0.8 / 512)
    assert square_fraction(0.8, 50, 1_000) == pytest.approx(0.8 / 8)  # rescaled: 50/1000 = 500/10000


def test_margin_is_positive_exactly_when_the_true_class_wins() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    assert margin(logits, torch.tensor([0, 0])).tolist() == [2.0, -2.0]


@pytest.mark.parametrize("changes", [{"n_queries": 1}, {"p_init": 0.0}, {"p_init": 1.5}, {"norm": "l2"}])
def test_square_config_rejects_invalid_settings(changes: dict) -> None:
    with pytest.raises(InvalidConfigError):
        SquareConfig(eps=0.1, **changes)


def test_square_rejects_a_linf_eps_wider_than_the_bounds(digits_cnn, digits_test) -> None:
    with pytest.raises(EpsilonOutOfRangeError, match="linf"):
        square(digits_cnn, digits_test[0][:4], digits_test[1][:4], SquareConfig(eps=1.5), seed=0)
