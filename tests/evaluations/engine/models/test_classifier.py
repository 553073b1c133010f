"""TorchClassifier and SklearnClassifier: the interface attacks rely on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from evaluations.engine.common import EngineInputError, ShapeMismatchError
from evaluations.engine.models import SklearnClassifier, TorchClassifier, build


def _cnn() -> TorchClassifier:
    torch.manual_seed(0)
    return TorchClassifier(build("small_cnn", num_classes=10), input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10)


def test_torch_classifier_puts_the_model_in_eval_mode_and_describes_it() -> None:
    classifier = _cnn()
    assert not classifier.module.training
    assert classifier.framework == "torch" and classifier.differentiable
    assert classifier.input_shape == (1, 8, 8) and classifier.bounds == (0.0, 1.0)
    assert classifier.num_classes == 10 and classifier.device == torch.device("cpu")


def test_torch_classifier_gives_input_gradients() -> None:
    classifier = _cnn()
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    (grad,) = torch.autograd.grad(classifier.logits(x).sum(), x)
    assert grad.shape == x.shape and grad.abs().sum() > 0


def test_torch_classifier_predicts_in_batches_like_the_logits_argmax() -> None:
    classifier = _cnn()
    x = torch.rand(70, 1, 8, 8)
    with torch.no_grad():
        expected = classifier.logits(x).argmax(dim=1)
    assert torch.equal(classifier.predict(x, batch_size=16), expected)


def test_torch_classifier_exposes_penultimate_features() -> None:
    assert _cnn().features(torch.rand(5, 1, 8, 8)).shape == (5, 64)


def test_features_are_none_when_the_module_has_none() -> None:
    classifier = TorchClassifier(torch.nn.Linear(3, 2), input_shape=(3,), bounds=(0, 1), num_classes=2)
    assert classifier.features(torch.rand(2, 3)) is None


def test_torch_classifier_rejects_inputs_of_the_wrong_shape() -> None:
    with pytest.raises(ShapeMismatchError, match=r"expects inputs of shape \(N, 1, 8, 8\) but got \(4, 64\)"):
        _cnn().logits(torch.rand(4, 64))


@pytest.mark.parametrize(
    "options",
    [{"input_shape": ()}, {"bounds": (1.0, 0.0)}, {"bounds": (0.0, float("inf"))}, {"num_classes": 1}],
)
def test_classifier_rejects_an_invalid_description(options: dict) -> None:
    kwargs = {"input_shape": (3,), "bounds": (0.0, 1.0), "num_classes": 2, **options}
    with pytest.raises(EngineInputError):
        TorchClassifier(torch.nn.Linear(3, 2), **kwargs)


def test_token_id_models_are_not_differentiable() -> None:
    model = build("text_embeddingbag", vocab_size=20, num_classes=2)
    classifier = TorchClassifier(model, input_shape=(6,), bounds=(0, 19), num_classes=2, input_dtype=torch.int64)
    assert not classifier.differentiable
    assert classifier.predict(torch.randint(0, 20, (3, 6))).shape == (3,)


def test_frozen_parameters_restores_each_flag() -> None:
    classifier = _cnn()
    first = next(classifier.module.parameters())
    first.requires_grad_(False)
    with classifier.frozen_parameters():
        assert not any(p.requires_grad for p in classifier.module.parameters())
    assert not first.requires_grad
    assert all(p.requires_grad for p in list(classifier.module.parameters())[1:])


def _fitted_logistic() -> tuple[LogisticRegression, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((90, 4))
    y = np.digitize(x[:, 0], [1 / 3, 2 / 3])
    return LogisticRegression().fit(x, y), x


def test_sklearn_classifier_logits_are_log_probabilities_and_not_differentiable() -> None:
    estimator, x = _fitted_logistic()
    classifier = SklearnClassifier(estimator, input_shape=(4,), bounds=(0.0, 1.0), num_classes=3)
    logits = classifier.logits(torch.as_tensor(x, dtype=torch.float32))
    assert torch.allclose(logits.exp(), torch.as_tensor(estimator.predict_proba(x), dtype=torch.float32), atol=1e-6)
    assert classifier.framework == "sklearn" and not classifier.differentiable
    assert classifier.features(torch.zeros(1, 4)) is None
    assert torch.equal(
        classifier.predict(torch.as_tensor(x, dtype=torch.float32)), torch.as_tensor(estimator.predict(x))
    )


def test_sklearn_classifier_maps_missing_classes_to_tiny_probability() -> None:
    estimator, x = _fitted_logistic()
    classifier = SklearnClassifier(estimator, input_shape=(4,), bounds=(0.0, 1.0), num_classes=5)
    logits = classifier.logits(torch.as_tensor(x[:3], dtype=torch.float32))
    assert logits.shape == (3, 5)
    assert torch.all(logits[:, 3:] < -20)


def test_sklearn_classifier_requires_predict_proba_and_integer_labels() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((40, 2))
    with pytest.raises(EngineInputError, match="predict_proba"):
        SklearnClassifier(LinearSVC().fit(x, x[:, 0] > 0.5), input_shape=(2,), bounds=(0, 1), num_classes=2)
    string_labels = LogisticRegression().fit(x, np.where(x[:, 0] > 0.5, "spam", "ham"))
    with pytest.raises(EngineInputError, match="integer labels"):
        SklearnClassifier(string_labels, input_shape=(2,), bounds=(0, 1), num_classes=2)
