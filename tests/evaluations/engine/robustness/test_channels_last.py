"""The channels_last gradient path: same gradients and attacks as the plain layout, the user's module untouched."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from evaluations.engine.common import EngineInputError
from evaluations.engine.models import TorchClassifier, build
from evaluations.engine.robustness import APGDConfig, FGSMConfig, PGDConfig, apgd, fgsm, pgd

TOLERANCE = 1e-6  # relative to the larger of 1 and the reference's largest magnitude: float rounding only


def _plain(classifier: TorchClassifier) -> TorchClassifier:
    """The same module behind a classifier pinned to the plain layout (the reference)."""
    plain = TorchClassifier(
        classifier.module,
        input_shape=classifier.input_shape,
        bounds=classifier.bounds,
        num_classes=classifier.num_classes,
    )
    plain._channels_last = False
    plain._fold_convs = ()
    return plain


def _assert_equal_up_to_rounding(actual: Tensor, expected: Tensor, tolerance: float = TOLERANCE) -> None:
    assert actual.shape == expected.shape
    difference, scale = float((actual - expected).abs().max()), max(1.0, float(expected.abs().max()))
    assert difference <= tolerance * scale, f"max abs difference {difference:.3g} at scale {scale:.3g}"


def _batch(digits_test, n: int = 128) -> tuple[Tensor, Tensor]:
    x, y = digits_test
    return x[:n], y[:n]


def _reference_gradient(module: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Input gradient of the summed cross-entropy, straight from autograd in the plain layout."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(module(x), y, reduction="sum"), x)
    return grad


def test_the_digits_cnn_takes_its_gradients_in_channels_last(digits_cnn) -> None:
    assert digits_cnn.uses_channels_last()


def test_loss_gradient_equals_the_plain_layout_and_plain_autograd(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test)
    loss, grad, logits = digits_cnn.loss_gradient(x, y)
    plain_loss, plain_grad, plain_logits = _plain(digits_cnn).loss_gradient(x, y)

    _assert_equal_up_to_rounding(grad, plain_grad)
    _assert_equal_up_to_rounding(grad, _reference_gradient(digits_cnn.module, x, y))
    _assert_equal_up_to_rounding(logits, plain_logits)
    _assert_equal_up_to_rounding(loss, plain_loss)
    _assert_equal_up_to_rounding(loss, F.cross_entropy(plain_logits, y, reduction="none"))
    assert grad.shape == x.shape and grad.is_contiguous()
    assert not (grad.requires_grad or loss.requires_grad or logits.requires_grad)


def test_fgsm_equals_the_hand_computed_sign_step(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test)
    expected = (x + 0.1 * _reference_gradient(digits_cnn.module, x, y).sign()).clamp(0.0, 1.0)
    _assert_equal_up_to_rounding(fgsm(digits_cnn, x, y, FGSMConfig(eps=0.1)), expected)


def test_pgd_without_random_start_equals_the_hand_computed_iteration(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test)
    eps, step = 0.1, 0.01
    expected = x.clone()
    for _ in range(10):
        expected = expected + step * _reference_gradient(digits_cnn.module, expected, y).sign()
        expected = torch.minimum(torch.maximum(expected, x - eps), x + eps).clamp(0.0, 1.0)

    adversarial = pgd(digits_cnn, x, y, PGDConfig(eps=eps, step_size=step, steps=10, random_start=False), seed=0)

    _assert_equal_up_to_rounding(adversarial, expected)


#: Signed (Linf) steps absorb rounding; L2 steps move by the gradient itself, so its rounding adds up a little.
L2_TOLERANCE = 1e-5


@pytest.mark.parametrize(
    ("attack", "tolerance"),
    [
        (lambda c, x, y: fgsm(c, x, y, FGSMConfig(eps=0.2)), TOLERANCE),
        (lambda c, x, y: pgd(c, x, y, PGDConfig(eps=0.1, steps=10), seed=1), TOLERANCE),
        (lambda c, x, y: apgd(c, x, y, APGDConfig(eps=0.1, steps=10), seed=3), TOLERANCE),
        (
            lambda c, x, y: pgd(c, x, y, PGDConfig(eps=1.0, steps=10, norm="l2", restarts=2, early_stop=True), seed=2),
            L2_TOLERANCE,
        ),
        (lambda c, x, y: apgd(c, x, y, APGDConfig(eps=1.0, steps=10, norm="l2"), seed=4), L2_TOLERANCE),
    ],
    ids=["fgsm", "pgd-linf", "apgd-linf", "pgd-l2-restarts", "apgd-l2"],
)
def test_attacks_give_the_same_adversarial_examples_in_both_layouts(
    digits_cnn, digits_test, attack, tolerance: float
) -> None:
    x, y = _batch(digits_test, 64)
    _assert_equal_up_to_rounding(attack(digits_cnn, x, y), attack(_plain(digits_cnn), x, y), tolerance)


def test_attacks_leave_the_users_module_unchanged(digits_cnn, digits_test) -> None:
    x, y = _batch(digits_test, 32)
    module = digits_cnn.module
    before = {name: (t.clone(), t.stride(), t.requires_grad) for name, t in module.state_dict(keep_vars=True).items()}
    modules_before = list(module.named_modules())

    fgsm(digits_cnn, x, y, FGSMConfig(eps=0.1))
    pgd(digits_cnn, x, y, PGDConfig(eps=0.1, steps=3), seed=0)
    apgd(digits_cnn, x, y, APGDConfig(eps=0.1, steps=3), seed=0)

    assert digits_cnn.uses_channels_last()
    after = module.state_dict(keep_vars=True)
    assert after.keys() == before.keys()
    for name, (value, stride, requires_grad) in before.items():
        tensor = after[name]
        assert torch.equal(tensor, value), name
        assert tensor.stride() == stride and tensor.is_contiguous(), name  # memory format kept
        assert tensor.requires_grad == requires_grad, name
        assert getattr(tensor, "grad", None) is None, name
    assert list(module.named_modules()) == modules_before and not module.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in module.modules())


class _ViewsAfterConv(nn.Module):
    """A CNN that ``view``s its conv activation: an error on a channels_last tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.conv(x))
        return self.head(h.view(h.shape[0], -1))


class _Noisy(nn.Module):
    """A CNN whose logits carry fresh noise from torch's global generator."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.head = nn.Linear(2 * 6 * 6, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.conv(x).flatten(1)) + torch.randn(x.shape[0], 3)


def test_a_model_that_views_channels_last_activations_keeps_the_plain_layout() -> None:
    torch.manual_seed(0)
    classifier = TorchClassifier(_ViewsAfterConv(), input_shape=(3, 6, 6), bounds=(0.0, 1.0), num_classes=5)
    x, y = torch.rand(8, 3, 6, 6), torch.randint(0, 5, (8,))

    assert not classifier.uses_channels_last()
    _, grad, _ = classifier.loss_gradient(x, y)
    _assert_equal_up_to_rounding(grad, _reference_gradient(classifier.module, x, y))
    assert pgd(classifier, x, y, PGDConfig(eps=0.1, steps=2), seed=0).shape == x.shape


def test_a_model_with_random_outputs_keeps_the_plain_layout_and_the_probe_keeps_the_random_state() -> None:
    torch.manual_seed(0)
    classifier = TorchClassifier(_Noisy(), input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=3)
    state = torch.get_rng_state()
    assert not classifier.uses_channels_last()
    assert torch.equal(torch.get_rng_state(), state)


def test_models_without_convolutions_keep_the_plain_layout() -> None:
    torch.manual_seed(0)
    mlp = TorchClassifier(
        build("mlp", in_features=64, hidden=16, num_classes=10), input_shape=(1, 8, 8), bounds=(0, 1), num_classes=10
    )
    assert not mlp.uses_channels_last()
    x, y = torch.rand(4, 1, 8, 8), torch.randint(0, 10, (4,))
    torch.testing.assert_close(mlp.loss_gradient(x, y)[1], _reference_gradient(mlp.module, x, y), rtol=0, atol=0)


def test_integer_token_models_have_no_loss_gradient() -> None:
    text = TorchClassifier(
        build("text_embeddingbag", vocab_size=20, num_classes=2),
        input_shape=(6,),
        bounds=(0, 19),
        num_classes=2,
        input_dtype=torch.int64,
    )
    assert not text.uses_channels_last()
    with pytest.raises(EngineInputError, match="no input gradient"):
        text.loss_gradient(torch.randint(0, 20, (3, 6)), torch.zeros(3, dtype=torch.int64))


def test_the_probe_waits_for_eval_mode() -> None:
    torch.manual_seed(0)
    classifier = TorchClassifier(
        build("small_cnn", num_classes=10), input_shape=(1, 8, 8), bounds=(0, 1), num_classes=10
    )
    classifier.module.train()
    assert not classifier.uses_channels_last()
    classifier.module.eval()
    assert classifier.uses_channels_last()


def test_resnet_runs_in_channels_last_and_returns_plain_layout_examples() -> None:
    torch.manual_seed(0)
    classifier = TorchClassifier(
        build("resnet18_cifar", num_classes=10, width=4), input_shape=(3, 16, 16), bounds=(0, 1), num_classes=10
    )
    x, y = torch.rand(4, 3, 16, 16), torch.randint(0, 10, (4,))

    assert classifier.uses_channels_last()
    loss, grad, logits = classifier.loss_gradient(x, y)
    plain_loss, _, plain_logits = _plain(classifier).loss_gradient(x, y)
    torch.testing.assert_close(logits, plain_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss, plain_loss, rtol=1e-5, atol=1e-5)
    assert grad.is_contiguous() and grad.abs().sum() > 0
    adversarial = fgsm(classifier, x, y, FGSMConfig(eps=0.05))
    assert adversarial.is_contiguous() and (adversarial - x).abs().max() <= 0.05 + 1e-6


def test_a_torchscript_cnn_takes_the_channels_last_path_with_the_same_gradients(digits_cnn, digits_test) -> None:
    scripted = TorchClassifier(
        torch.jit.script(copy.deepcopy(digits_cnn.module)), input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=10
    )
    x, y = _batch(digits_test, 32)

    assert scripted.uses_channels_last()
    _assert_equal_up_to_rounding(scripted.loss_gradient(x, y)[1], _reference_gradient(digits_cnn.module, x, y))
