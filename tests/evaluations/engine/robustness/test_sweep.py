"""The epsilon sweep: metrics, provenance, progress, cancellation and input validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from evaluations.engine.common import (
    Cancelled,
    EmptyDatasetError,
    EngineInputError,
    EpsilonOutOfRangeError,
    InputOutOfBoundsError,
    InvalidConfigError,
    LabelOutOfRangeError,
    NonFiniteInputError,
    NotDifferentiableError,
    ShapeMismatchError,
    sha256_arrays,
)
from evaluations.engine.models import SklearnClassifier
from evaluations.engine.robustness import (
    APGDConfig,
    PGDConfig,
    RobustnessResult,
    SanityConfig,
    SquareConfig,
    robustness_sweep,
)

FAST_PGD = PGDConfig(eps=0.1, steps=3)


def _sweep(classifier, x, y, **options) -> RobustnessResult:
    options.setdefault("attack", FAST_PGD)
    options.setdefault("epsilons", [0.0, 0.05, 0.1])
    options.setdefault("batch_size", 64)
    options.setdefault("seed", 0)
    options.setdefault("sanity", False)  # these tests are about the sweep itself; test_sanity covers the checks
    return robustness_sweep(classifier, x, y, **options)


def test_robust_accuracy_at_eps_zero_equals_clean_accuracy(digits_cnn, digits_test) -> None:
    x, y = digits_test
    result = _sweep(digits_cnn, x, y)
    clean = float((digits_cnn.predict(x) == y).double().mean())
    assert result.clean_accuracy == pytest.approx(clean)
    assert result.points[0].robust_accuracy == pytest.approx(clean)
    assert result.points[0].attack_success_rate == 0.0
    assert result.points[0].max_linf == 0.0


def test_sweep_reports_falling_robust_accuracy_and_norms_within_budget(digits_cnn, digits_test) -> None:
    x, y = digits_test
    result = _sweep(digits_cnn, x, y, attack="pgd", epsilons=[0.0, 0.05, 0.2])
    accuracies = result.robust_accuracies
    assert accuracies[0] > accuracies[1] > accuracies[2]
    for point in result.points:
        assert point.max_linf <= point.epsilon + 1e-6
        assert 0.0 <= point.mean_linf <= point.max_linf
        assert 0.0 <= point.mean_l2 <= point.max_l2
        assert len(point.per_class_robust_accuracy) == 10
    high = result.points[2]
    fooled_among_correct = high.attack_success_rate * high.n_clean_correct
    assert fooled_among_correct == pytest.approx(round(fooled_among_correct))
    assert high.attack_success_rate > 0.5


def test_sweep_keeps_sample_adversarial_examples_with_predictions(digits_cnn, digits_test) -> None:
    x, y = digits_test
    result = _sweep(digits_cnn, x, y, n_samples_keep=5)
    for point in result.points:
        assert len(point.samples) == 5
        for sample in point.samples:
            assert sample.clean.shape == sample.adversarial.shape == (1, 8, 8)
            assert np.array_equal(sample.clean, x[sample.index].numpy())
            assert sample.label == int(y[sample.index])
            assert sample.clean_prediction == sample.label  # clean-correct samples are kept first
            assert np.abs(sample.adversarial - sample.clean).max() <= point.epsilon + 1e-6
    assert result.points[0].samples[0].adversarial_prediction == result.points[0].samples[0].clean_prediction


def test_sweep_records_provenance_and_serialises_to_json(digits_cnn, digits_test) -> None:
    x, y = digits_test
    result = _sweep(digits_cnn, x[:64], y[:64], epsilons=[0.05])
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["seed"] == 0
    assert payload["attack"] == "pgd" and payload["norm"] == "linf"
    assert payload["config"]["steps"] == 3 and "eps" not in payload["config"]
    assert payload["points"][0]["attack_config"]["eps"] == 0.05
    assert payload["points"][0]["attack_config"]["step_size"] == pytest.approx(2.5 * 0.05 / 3)
    assert set(payload["library_versions"]) >= {"torch", "numpy", "sklearn"}
    assert payload["data_sha256"] == sha256_arrays(x[:64], y[:64])
    assert payload["model_sha256"] is None  # built in memory, not loaded from a file
    assert payload["timings"]["samples_per_second"] > 0


def test_sweep_with_the_same_seed_is_reproducible(digits_cnn, digits_test) -> None:
    x, y = digits_test
    first = _sweep(digits_cnn, x[:100], y[:100], epsilons=[0.08], seed=5).points[0]
    second = _sweep(digits_cnn, x[:100], y[:100], epsilons=[0.08], seed=5).points[0]
    assert first.robust_accuracy == second.robust_accuracy
    assert first.mean_l2 == second.mean_l2
    assert np.array_equal(first.samples[0].adversarial, second.samples[0].adversarial)


def test_sweep_accepts_numpy_arrays(digits_cnn, digits) -> None:
    x, y = digits
    result = _sweep(digits_cnn, x[1400:1464], y[1400:1464], attack="fgsm", epsilons=[0.1])
    assert result.n_samples == 64 and result.attack == "fgsm"


def test_progress_rises_to_exactly_one(digits_cnn, digits_test) -> None:
    x, y = digits_test
    seen: list[float] = []
    _sweep(digits_cnn, x[:130], y[:130], progress=seen.append)
    assert len(seen) == 3 * 4  # clean pass plus three budgets, three batches each
    assert seen == sorted(seen)
    assert seen[-1] == 1.0


def test_cancellation_between_batches_raises_cancelled(digits_cnn, digits_test) -> None:
    x, y = digits_test
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        _sweep(digits_cnn, x, y, should_cancel=lambda: next(calls) >= 3)
    assert next(calls) == 4  # stopped on the fourth check, before attacking that batch


def test_nan_in_the_data_is_refused(digits_cnn, digits_test) -> None:
    x, y = digits_test
    x = x.clone()
    x[3, 0, 2, 2] = float("nan")
    with pytest.raises(NonFiniteInputError, match="1 sample"):
        _sweep(digits_cnn, x, y)


@pytest.mark.parametrize("bad_label", [-1, 10])
def test_labels_out_of_range_are_refused(digits_cnn, digits_test, bad_label: int) -> None:
    x, y = digits_test
    y = y.clone()
    y[0] = bad_label
    with pytest.raises(LabelOutOfRangeError, match=r"\[0, 10\)"):
        _sweep(digits_cnn, x, y)


def test_non_integer_labels_are_refused(digits_cnn, digits_test) -> None:
    x, y = digits_test
    with pytest.raises(LabelOutOfRangeError, match="integer"):
        _sweep(digits_cnn, x, y.double() + 0.5)


def test_data_of_the_wrong_shape_is_refused(digits_cnn, digits_test) -> None:
    x, y = digits_test
    with pytest.raises(ShapeMismatchError, match=r"\(N, 1, 8, 8\)"):
        _sweep(digits_cnn, x.reshape(-1, 64), y)
    with pytest.raises(ShapeMismatchError, match="one label per sample"):
        _sweep(digits_cnn, x, y[:-1])


def test_an_empty_dataset_is_refused(digits_cnn) -> None:
    with pytest.raises(EmptyDatasetError):
        _sweep(digits_cnn, torch.empty(0, 1, 8, 8), torch.empty(0, dtype=torch.long))


@pytest.mark.parametrize("epsilons", [[0.1, 1.5], [-0.1], [float("nan")]])
def test_epsilons_outside_the_bounds_are_refused(digits_cnn, digits_test, epsilons: list[float]) -> None:
    x, y = digits_test
    with pytest.raises(EpsilonOutOfRangeError, match="0 <= eps <= 1"):
        _sweep(digits_cnn, x, y, epsilons=epsilons)


def test_data_outside_the_model_bounds_is_refused(digits_cnn, digits_test) -> None:
    x, y = digits_test
    with pytest.raises(InputOutOfBoundsError, match="bounds"):
        _sweep(digits_cnn, x * 16, y)


@pytest.mark.parametrize(
    "options",
    [{"epsilons": []}, {"batch_size": 0}, {"seed": -1}, {"attack": "cw"}, {"n_samples_keep": -1}],
)
def test_invalid_sweep_options_are_refused(digits_cnn, digits_test, options: dict) -> None:
    x, y = digits_test
    with pytest.raises(EngineInputError):
        _sweep(digits_cnn, x, y, **options)


def test_unknown_attack_names_the_choices(digits_cnn, digits_test) -> None:
    x, y = digits_test
    with pytest.raises(InvalidConfigError, match="'fgsm', 'pgd'"):
        _sweep(digits_cnn, x, y, attack="cw")


def test_sweep_refuses_a_black_box_model() -> None:
    x = np.random.default_rng(0).random((40, 2)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)
    classifier = SklearnClassifier(LogisticRegression().fit(x, y), input_shape=(2,), bounds=(0.0, 1.0), num_classes=2)
    with pytest.raises(NotDifferentiableError):
        _sweep(classifier, x, y)


def test_sweep_runs_apgd_and_records_its_settings(digits_cnn, digits_test) -> None:
    x, y = digits_test
    result = _sweep(digits_cnn, x[:64], y[:64], attack=APGDConfig(eps=0.1, steps=5), epsilons=[0.0, 0.1])
    assert result.attack == "apgd" and result.config["steps"] == 5 and "eps" not in result.config
    assert result.points[1].robust_accuracy < result.points[0].robust_accuracy
    assert result.points[1].max_linf <= 0.1 + 1e-6
    assert result.points[1].mean_queries is None  # white-box attacks do not count queries


def test_sweep_runs_square_on_a_scikit_learn_model_and_reports_queries(digits) -> None:
    x, y = digits
    estimator = LogisticRegression(max_iter=300).fit(x[:1400].reshape(1400, -1), y[:1400])
    classifier = SklearnClassifier(estimator, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)
    seen: list[float] = []
    result = _sweep(
        classifier,
        x[1400:1464],
        y[1400:1464],
        attack=SquareConfig(eps=0.1, n_queries=100),
        epsilons=[0.0, 0.15],
        progress=seen.append,
    )
    attacked = result.points[1]
    assert attacked.robust_accuracy < result.points[0].robust_accuracy - 0.2
    assert 1 <= attacked.mean_queries <= attacked.max_queries <= 100
    assert attacked.max_linf <= 0.15 + 1e-6
    assert result.to_dict()["points"][1]["max_queries"] == attacked.max_queries
    assert seen[-1] == 1.0


def test_square_sweep_on_a_black_box_model_skips_the_gradient_checks(digits) -> None:
    x, y = digits
    estimator = LogisticRegression(max_iter=300).fit(x[:1400].reshape(1400, -1), y[:1400])
    classifier = SklearnClassifier(estimator, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)
    result = robustness_sweep(
        classifier,
        x[1400:1464],
        y[1400:1464],
        attack=SquareConfig(eps=0.1, n_queries=100),
        epsilons=[0.0, 0.1],
        seed=0,
        sanity_config=SanityConfig(subset_size=24, convergence_queries=150),
    )
    assert set(result.sanity_skipped) == {"vanishing_gradients", "black_box_beats_white_box"}
    assert "not_converged" in result.sanity_checks and "unbroken_at_large_epsilon" in result.sanity_checks
