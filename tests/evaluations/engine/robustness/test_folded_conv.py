"""The col2im input gradient of single-channel convolutions: autograd's gradients, the module left as it was."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from evaluations.engine.models import TorchClassifier, build
from evaluations.engine.models.classifier import _FoldedInputGradient
from evaluations.engine.robustness import FGSMConfig, PGDConfig, fgsm, pgd


def _reference_gradient(module: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(module(x), y, reduction="sum"), x)
    return grad


def _classifier(module: nn.Module, shape: tuple[int, ...], classes: int) -> TorchClassifier:
    return TorchClassifier(module.eval(), input_shape=shape, bounds=(0.0, 1.0), num_classes=classes)


def _assert_autograd_path(classifier: TorchClassifier, model: nn.Module, x: Tensor, y: Tensor) -> None:
    """No layer takes the col2im path, and the gradients are autograd's."""
    assert classifier.folded_convolutions() == ()
    torch.testing.assert_close(
        classifier.loss_gradient(x, y)[1], _reference_gradient(model, x, y), rtol=1e-5, atol=1e-7
    )


class _OneConv(nn.Module):
    def __init__(self, conv: nn.Conv2d, size: int, classes: int = 4) -> None:
        super().__init__()
        self.conv = conv
        with torch.no_grad():
            features = conv(torch.zeros(1, 1, size, size)).numel()
        self.head = nn.Linear(features, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.tanh(self.conv(x)).flatten(1))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "size"),
    [
        (3, 1, 1, 1, 8),
        (5, 1, 2, 1, 12),
        (3, 2, 0, 1, 9),
        ((3, 2), (2, 1), (1, 0), (1, 2), 9),
        (3, 1, 0, 2, 10),
    ],
)
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_the_folded_gradient_equals_autograd_for_each_geometry(kernel, stride, padding, dilation, size, batch) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 6, kernel, stride=stride, padding=padding, dilation=dilation)
    classifier = _classifier(_OneConv(conv, size), (1, size, size), 4)
    x, y = torch.rand(batch, 1, size, size), torch.randint(0, 4, (batch,))

    assert classifier.folded_convolutions() == (conv,)
    _, grad, _ = classifier.loss_gradient(x, y)
    torch.testing.assert_close(grad, _reference_gradient(classifier.module, x, y), rtol=1e-5, atol=1e-6)


def test_the_function_alone_matches_convolution_backward_in_both_layouts() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 16, 3, padding=1)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = torch.rand(32, 1, 8, 8).contiguous(memory_format=layout).requires_grad_(True)
        out = conv(x)
        grad_out = torch.randn_like(out).contiguous(memory_format=layout)
        (expected,) = torch.autograd.grad(out, x, grad_out)
        (folded,) = torch.autograd.grad(
            _FoldedInputGradient.apply(x, out.detach(), conv.weight.detach(), conv), x, grad_out
        )
        torch.testing.assert_close(folded, expected, rtol=1e-5, atol=1e-6)


def test_the_digits_cnn_folds_its_first_layer_and_leaves_the_module_as_it_was(digits_cnn, digits_test) -> None:
    first = digits_cnn.module.conv[0]
    assert digits_cnn.folded_convolutions() == (first,)
    weights = {name: p.detach().clone() for name, p in digits_cnn.module.named_parameters()}
    x, y = digits_test[0][:128], digits_test[1][:128]

    _, grad, _ = digits_cnn.loss_gradient(x, y)

    torch.testing.assert_close(grad, _reference_gradient(digits_cnn.module, x, y), rtol=1e-5, atol=1e-6)
    assert all(not m._forward_hooks for m in digits_cnn.module.modules())  # hooks last one call
    assert all(p.grad is None for p in digits_cnn.module.parameters())
    assert all(torch.equal(p, weights[name]) for name, p in digits_cnn.module.named_parameters())
    # The attacks on top see the same gradients, so the same examples as with autograd's own backward.
    config = PGDConfig(eps=0.1, step_size=0.01, steps=5, random_start=False)
    folded = pgd(digits_cnn, x, y, config, seed=0)
    digits_cnn._fold_convs = ()
    try:
        unfolded = pgd(digits_cnn, x, y, config, seed=0)
    finally:
        digits_cnn._fold_convs = None
    assert (folded.ne(unfolded)).float().mean() < 0.001


class _ConvSubclass(nn.Conv2d):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) * 2


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(3, 4, 3, padding=1),  # more than one input channel: oneDNN's kernel is the faster one
        nn.Conv2d(1, 4, 3, padding="same"),
        nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect"),
        _ConvSubclass(1, 4, 3, padding=1),  # its own forward: not the plain convolution the fold assumes
    ],
)
def test_other_convolutions_keep_autograd_backward(conv) -> None:
    torch.manual_seed(0)
    channels = conv.in_channels
    model = nn.Sequential(conv, nn.Flatten(), nn.LazyLinear(3))
    model(torch.zeros(1, channels, 8, 8))
    classifier = _classifier(model, (channels, 8, 8), 3)
    x, y = torch.rand(5, channels, 8, 8), torch.randint(0, 3, (5,))

    _assert_autograd_path(classifier, model, x, y)


def test_a_user_hook_that_rescales_the_convolution_fails_the_probe_and_keeps_autograd() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3, padding=1)
    conv.register_forward_hook(lambda module, args, out: out * 3)  # runs before ours; the fold would miss it
    model = _OneConv(conv, 8)
    classifier = _classifier(model, (1, 8, 8), 4)
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 4, (6,))

    _assert_autograd_path(classifier, model, x, y)


def test_other_threads_using_the_module_meanwhile_get_its_ordinary_graph() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3, padding=1)
    model = _OneConv(conv, 8)
    classifier = _classifier(model, (1, 8, 8), 4)
    assert classifier.folded_convolutions() == (conv,)
    seen: list[str] = []

    def other_thread(module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        if seen:  # once, from the classifier's own forward; not again from the other thread's
            return

        def call() -> None:
            # The parameters' own gradients still flow for a caller on another thread.
            try:
                model(torch.rand(2, 1, 8, 8)).sum().backward()
                seen.append("weight" if conv.weight.grad is not None else "none")
            except Exception as exc:  # surfaced by the assertion below
                seen.append(repr(exc))

        seen.append("started")
        worker = threading.Thread(target=call)
        worker.start()
        worker.join()

    probe = conv.register_forward_hook(other_thread)
    try:
        classifier.loss_gradient(torch.rand(3, 1, 8, 8), torch.zeros(3, dtype=torch.int64))
    finally:
        probe.remove()
    assert seen == ["started", "weight"]


def test_fgsm_on_a_single_channel_mnist_sized_cnn_matches_autograd() -> None:
    torch.manual_seed(0)
    classifier = _classifier(build("small_cnn", in_channels=1, input_size=28, num_classes=10), (1, 28, 28), 10)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))

    assert classifier.folded_convolutions()
    expected = (x + 0.1 * _reference_gradient(classifier.module, x, y).sign()).clamp(0, 1)
    assert (fgsm(classifier, x, y, FGSMConfig(eps=0.1)) - expected).abs().max() <= 1e-6
