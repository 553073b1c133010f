"""FGSM against a hand-computed gradient, and its input checks."""

from __future__ import annotations

import pytest
import torch
from sklearn.linear_model import LogisticRegression

from evaluations.engine.common import EpsilonOutOfRangeError, NotDifferentiableError, ShapeMismatchError
from evaluations.engine.models import SklearnClassifier, TorchClassifier
from evaluations.engine.robustness import FGSMConfig, fgsm


def _linear_classifier() -> tuple[TorchClassifier, torch.Tensor, torch.Tensor]:
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        layer.bias.copy_(torch.tensor([0.1, -0.2]))
    return TorchClassifier(layer, input_shape=(2,), bounds=(0.0, 1.0), num_classes=2), layer.weight, layer.bias


def test_fgsm_on_linear_model_equals_the_analytic_sign_step() -> None:
    classifier, weight, bias = _linear_classifier()
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 2, generator=generator)
    y = torch.randint(0, 2, (64,), generator=generator)
    eps = 0.3

    # d CE / dx = W^T (softmax(Wx + b) - onehot(y)) = p_other * (w_other - w_y) for two classes.
    with torch.no_grad():
        probs = torch.softmax(x @ weight.T + bias, dim=1)
        grad = (probs - torch.nn.functional.one_hot(y, 2).float()) @ weight
        direction = weight[1 - y] - weight[y]
    assert torch.equal(grad.sign(), direction.sign())
    expected = torch.clamp(x + eps * direction.sign(), 0.0, 1.0)

    adversarial = fgsm(classifier, x, y, FGSMConfig(eps=eps))

    assert torch.equal(adversarial, expected)


def test_fgsm_stays_within_eps_and_bounds(digits_cnn, digits_test) -> None:
    x, y = digits_test
    adversarial = fgsm(digits_cnn, x, y, FGSMConfig(eps=0.2))
    assert (adversarial - x).abs().max() <= 0.2 + 1e-6
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0


def test_fgsm_lowers_accuracy_of_a_trained_model(digits_cnn, digits_test) -> None:
    x, y = digits_test
    clean = (digits_cnn.predict(x) == y).float().mean()
    adversarial = (digits_cnn.predict(fgsm(digits_cnn, x, y, FGSMConfig(eps=0.2))) == y).float().mean()
    assert clean > 0.9
    assert adversarial < clean - 0.2


def test_fgsm_restores_parameter_gradients_after_the_attack(digits_cnn, digits_test) -> None:
    x, y = digits_test
    flags = [p.requires_grad for p in digits_cnn.module.parameters()]
    fgsm(digits_cnn, x[:8], y[:8], FGSMConfig(eps=0.1))
    assert [p.requires_grad for p in digits_cnn.module.parameters()] == flags
    assert all(p.grad is None for p in digits_cnn.module.parameters())


@pytest.mark.parametrize("eps", [0.0, -0.1, float("nan"), float("inf")])
def test_fgsm_config_rejects_non_positive_or_non_finite_eps(eps: float) -> None:
    with pytest.raises(EpsilonOutOfRangeError):
        FGSMConfig(eps=eps)


def test_fgsm_rejects_eps_larger_than_the_bounds_range() -> None:
    classifier, _, _ = _linear_classifier()
    with pytest.raises(EpsilonOutOfRangeError, match="0 < eps <= 1"):
        fgsm(classifier, torch.rand(4, 2), torch.zeros(4, dtype=torch.long), FGSMConfig(eps=1.5))


def test_fgsm_rejects_inputs_of_the_wrong_shape() -> None:
    classifier, _, _ = _linear_classifier()
    with pytest.raises(ShapeMismatchError, match=r"\(N, 2\)"):
        fgsm(classifier, torch.rand(4, 3), torch.zeros(4, dtype=torch.long), FGSMConfig(eps=0.1))


def test_fgsm_refuses_a_model_without_input_gradients() -> None:
    x = torch.rand(40, 2)
    estimator = LogisticRegression().fit(x.numpy(), (x[:, 0] > 0.5).long().numpy())
    classifier = SklearnClassifier(estimator, input_shape=(2,), bounds=(0.0, 1.0), num_classes=2)
    with pytest.raises(NotDifferentiableError, match="black-box"):
        fgsm(classifier, x, torch.zeros(40, dtype=torch.long), FGSMConfig(eps=0.1))
