"""The ``Classifier`` interface every attack, defense and detector talks to, and its two implementations."""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from torch import Tensor, nn

from evaluations.engine.common import EngineInputError, ShapeMismatchError, resolve_device

__all__ = ["Classifier", "SklearnClassifier", "TorchClassifier"]

Framework = Literal["torch", "sklearn"]

_LOG_PROB_FLOOR = 1e-12
#: How closely the channels_last probe's logits and gradients must match the plain ones (relative to their scale).
_LAYOUT_PROBE_RTOL = 1e-4


class Classifier(abc.ABC):
    """A trained classifier plus the facts attacks need: input shape, bounds, classes, device, hash.

    ``logits(x)`` takes a batch ``(N, *input_shape)`` and returns ``(N, num_classes)`` scores whose
    argmax is the prediction. ``bounds`` is the valid input range ``(lo, hi)``; attacks clip to it.
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, ...],
        bounds: tuple[float, float],
        num_classes: int,
        device: torch.device | str = "cpu",
        sha256: str | None = None,
    ) -> None:
        input_shape = tuple(int(d) for d in input_shape)
        if not input_shape or any(d <= 0 for d in input_shape):
            raise EngineInputError(
                f"input_shape must be a non-empty tuple of positive sizes without the batch dimension, "
                f"e.g. (1, 8, 8); got {input_shape}."
            )
        lo, hi = (float(b) for b in bounds)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise EngineInputError(f"bounds must be finite with lo < hi, e.g. (0.0, 1.0); got {bounds}.")
        if int(num_classes) < 2:
            raise EngineInputError(f"num_classes must be at least 2; got {num_classes}.")
        self._input_shape = input_shape
        self._bounds = (lo, hi)
        self._num_classes = int(num_classes)
        self._device = resolve_device(device)
        self._sha256 = sha256

    framework: Framework
    differentiable: bool

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch dimension."""
        return self._input_shape

    @property
    def bounds(self) -> tuple[float, float]:
        """Valid input range ``(lo, hi)``."""
        return self._bounds

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return self._num_classes

    @property
    def device(self) -> torch.device:
        """Device the model runs on."""
        return self._device

    @property
    def sha256(self) -> str | None:
        """SHA-256 of the model file this classifier was loaded from, if any."""
        return self._sha256

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`ShapeMismatchError` unless ``x`` is a batch ``(N, *input_shape)``."""
        if tuple(x.shape[1:]) != self._input_shape or x.dim() != len(self._input_shape) + 1:
            raise ShapeMismatchError(
                f"The model expects inputs of shape (N, {', '.join(map(str, self._input_shape))}) "
                f"but got {tuple(x.shape)}; reshape the data or declare the right input_shape."
            )

    @abc.abstractmethod
    def logits(self, x: Tensor) -> Tensor:
        """Scores ``(N, num_classes)`` for a batch ``x`` of shape ``(N, *input_shape)``."""

    def features(self, x: Tensor) -> Tensor | None:
        """Penultimate-layer activations ``(N, D)``, or None when the model does not expose them."""
        return None

    def predict(self, x: Tensor, *, batch_size: int = 256) -> Tensor:
        """Predicted labels ``(N,)`` (int64, on CPU), computed in batches without gradients."""
        if batch_size < 1:
            raise EngineInputError(f"batch_size must be at least 1; got {batch_size}.")
        self.check_input(x)
        out = [
            self.logits(x[start : start + batch_size]).argmax(dim=1).cpu() for start in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


class TorchClassifier(Classifier):
    """A ``torch.nn.Module`` in eval mode; gradients w.r.t. float inputs are available.

    Args:
        module: maps ``(N, *input_shape)`` to ``(N, num_classes)``; may define ``features(x)``.
        input_dtype: ``torch.float32`` for images/tabular data, ``torch.int64`` for token ids
            (then the model is not differentiable w.r.t. its input).
    """

    framework: Framework = "torch"

    def __init__(
        self,
        module: nn.Module,
        *,
        input_shape: tuple[int, ...],
        bounds: tuple[float, float],
        num_classes: int,
        device: torch.device | str = "cpu",
        sha256: str | None = None,
        input_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(input_shape=input_shape, bounds=bounds, num_classes=num_classes, device=device, sha256=sha256)
        self.module = module.to(self.device).eval()
        self.input_dtype = input_dtype
        self.differentiable = input_dtype.is_floating_point
        self._channels_last: bool | None = None  # decided by a probe on the first loss_gradient call
        self._fold_convs: tuple[nn.Conv2d, ...] | None = None  # ditto: single-channel convs given the col2im path

    def logits(self, x: Tensor) -> Tensor:
        """Scores ``(N, num_classes)``; keeps the autograd graph when ``x`` requires grad."""
        self.check_input(x)
        return self.module(x)

    def features(self, x: Tensor) -> Tensor | None:
        """Penultimate activations via the module's ``features`` method, or None if it has none."""
        features = getattr(self.module, "features", None)
        if not callable(features):
            return None
        self.check_input(x)
        return features(x)

    def predict(self, x: Tensor, *, batch_size: int = 256) -> Tensor:
        """Predicted labels ``(N,)`` (int64, on CPU) in inference mode."""
        with torch.inference_mode():
            return super().predict(x.to(self.device), batch_size=batch_size)

    def loss_gradient(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One forward and backward pass: the gradient attacks' step.

        Returns the per-sample cross-entropy ``(N,)``, the gradient of its sum w.r.t. ``x`` (shape of ``x``,
        contiguous) and the logits ``(N, num_classes)``, all detached. Only the input gradient is computed
        (``torch.autograd.grad`` w.r.t. the batch): parameters need no freezing and their ``.grad`` is untouched.

        On the CPU a conv net on image batches ``(N, C, H, W)`` runs in ``torch.channels_last`` layout: the same
        operations on the same values (results equal up to float rounding), 1.2-1.5x faster for small CNNs,
        mostly because max-pooling is far cheaper in that layout (about even for a full-width ResNet-18). A
        one-time probe (:meth:`uses_channels_last`) checks that the two layouts agree; otherwise, and for every
        other model, the batch is used as given. Only the batch is laid out anew: the module is never copied or
        changed.

        On the CPU, the input gradient of a single-channel ``nn.Conv2d`` (the first layer of a grey-scale image
        model) is computed as ``col2im(W^T @ grad)`` rather than by oneDNN's backward-data kernel, which cannot
        vectorise over one output channel: 2-10x faster for batches of 32 and more (see
        :meth:`folded_convolutions`). The same one-time probe checks that it gives the same gradients.
        """
        if not self.differentiable:
            raise EngineInputError("This model takes integer inputs and has no input gradient.")
        self.check_input(x)
        channels_last = self.uses_channels_last()
        return self._loss_gradient(x, y, channels_last=channels_last, fold=self.folded_convolutions())

    def uses_channels_last(self) -> bool:
        """Whether :meth:`loss_gradient` lays batches out ``channels_last``; probed once, while in eval mode.

        Only CPU models with a ``Conv2d`` (TorchScript ones too) and 4-D batches qualify, and only when two random
        inputs give the same logits and input gradients in both layouts: a model that ``view``s a channels_last
        activation (an error) or draws random numbers keeps the plain layout. The probe leaves torch's random
        state as it was.
        """
        if self._channels_last is None:
            if self.module.training:  # dropout or batch statistics would make the probe disagree: ask later
                return False
            self._channels_last = self._probe_channels_last()
        return self._channels_last

    def folded_convolutions(self) -> tuple[nn.Conv2d, ...]:
        """The single-channel convolutions whose input gradient :meth:`loss_gradient` computes by col2im.

        Candidates are plain ``nn.Conv2d`` layers (not subclasses, not TorchScript) of CPU models with one input
        channel, one group and zero padding given as numbers. The path is kept only when the one-time probe finds
        the same logits and input gradients as autograd's own; the module is never changed (the layers get a
        forward hook for the duration of each call, on the calling thread only).
        """
        if self._fold_convs is None:
            if self.module.training:
                return ()
            self._fold_convs = self._probe_fold()
        return self._fold_convs

    def _random_probe_batch(self) -> tuple[Tensor, Tensor]:
        """Two seeded random inputs within the bounds and labels 0 and 1, for the layout and col2im probes."""
        lo, hi = self._bounds
        generator = torch.Generator(device=self.device).manual_seed(0)
        x = torch.rand((2, *self._input_shape), generator=generator, device=self.device, dtype=self.input_dtype)
        return x.mul_(hi - lo).add_(lo), torch.arange(2, device=self.device)

    def _probe_agrees(self, **fast: Any) -> bool:
        """Whether :meth:`_loss_gradient` with ``fast`` settings matches the plain path on the probe batch."""
        x, y = self._random_probe_batch()
        with torch.random.fork_rng(devices=[]):
            try:
                plain = self._loss_gradient(x, y, channels_last=False)
                tried = self._loss_gradient(x, y, **fast)
            except Exception:  # e.g. .view() of a channels_last activation: keep the plain path, whose own
                return False  # errors, if any, then surface in the attack itself
        return all(_agrees(a, b) for a, b in zip(plain, tried, strict=True))

    def _probe_channels_last(self) -> bool:
        """Compare both layouts on two random inputs (see :meth:`uses_channels_last`)."""
        if self.device.type != "cpu" or len(self._input_shape) != 3 or not self.differentiable:
            return False
        if not any(_is_conv2d(m) for m in self.module.modules()):
            return False
        return self._probe_agrees(channels_last=True)

    def _probe_fold(self) -> tuple[nn.Conv2d, ...]:
        """The candidate layers of :meth:`folded_convolutions`, if the probe agrees with autograd."""
        if self.device.type != "cpu" or not self.differentiable:
            return ()
        convs = tuple(m for m in self.module.modules() if _foldable(m))
        if not convs or not self._probe_agrees(channels_last=self.uses_channels_last(), fold=convs):
            return ()
        return convs

    def _loss_gradient(
        self, x: Tensor, y: Tensor, *, channels_last: bool, fold: tuple[nn.Conv2d, ...] = ()
    ) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`loss_gradient` in the given layout, with the given col2im layers, without checks."""
        if channels_last:
            # empty_like + copy_ sets channels_last strides even where C == 1 (there .contiguous() is a no-op),
            # and it is those strides that make the convolutions, and so everything after them, channels_last.
            x = torch.empty_like(x, memory_format=torch.channels_last).copy_(x.detach())
        else:
            x = x.detach()
        x.requires_grad_(True)
        handles = _fold_hooks(fold)
        try:
            logits = self.module(x)
            loss = F.cross_entropy(logits, y, reduction="none")
            # Seeding the backward with ones gives the gradient of loss.sum() without the sum's own graph node.
            (grad,) = torch.autograd.grad(loss, x, torch.ones_like(loss))
        finally:
            for handle in handles:
                handle.remove()
        # contiguous(): back to the plain layout (a no-op for C == 1), and a materialised copy of a broadcast
        # gradient (a model that ignores its input).
        return loss.detach(), grad.contiguous(), logits.detach()

    @contextmanager
    def frozen_parameters(self) -> Iterator[None]:
        """Turn off parameter gradients for input-gradient work, restoring each flag afterwards."""
        params = list(self.module.parameters())
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in zip(params, flags, strict=True):
                p.requires_grad_(flag)


def _foldable(module: nn.Module) -> bool:
    """A plain single-channel ``nn.Conv2d`` whose input gradient col2im can give (see ``_FoldedInputGradient``)."""
    return (
        type(module) is nn.Conv2d
        and module.in_channels == 1
        and module.groups == 1
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


class _FoldedInputGradient(torch.autograd.Function):
    """Passes a convolution's output through; its backward is the input gradient as ``col2im(W^T @ grad)``.

    For ``out = conv2d(inp, W)`` with one input channel, the gradient w.r.t. ``inp`` scatters ``W^T @ grad``
    (one column of ``kh * kw`` values per output position) back onto the input grid: exactly what ``F.fold`` does with
    the convolution's kernel size, dilation, padding and stride. No parameter gradients flow: it is only used
    inside :meth:`TorchClassifier.loss_gradient`, which asks for the input gradient alone.
    """

    @staticmethod
    def forward(ctx: Any, inp: Tensor, out: Tensor, weight: Tensor, conv: nn.Conv2d) -> Tensor:  # noqa: D102
        ctx.save_for_backward(weight)
        ctx.geometry = (tuple(inp.shape[-2:]), conv.kernel_size, conv.dilation, conv.padding, conv.stride)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:  # noqa: D102
        (weight,) = ctx.saved_tensors
        size, kernel, dilation, padding, stride = ctx.geometry
        n, out_channels = grad.shape[:2]
        columns = weight.reshape(out_channels, -1).t() @ grad.reshape(n, out_channels, -1)  # (N, kh * kw, L)
        # One input channel: fold the batch as channels of a single image, which col2im runs in one pass rather
        # than sample by sample (1.5x faster at batch 128).
        folded = F.fold(columns.reshape(1, -1, columns.shape[-1]), size, kernel, dilation, padding, stride)
        return folded.view(n, 1, *size), None, None, None


def _fold_hooks(convs: tuple[nn.Conv2d, ...]) -> list[Any]:
    """Forward hooks routing each layer's input gradient through ``_FoldedInputGradient``, on this thread only."""
    if not convs:
        return []
    thread = threading.get_ident()

    def hook(conv: nn.Conv2d, args: tuple[Any, ...], out: Tensor) -> Tensor | None:
        if threading.get_ident() != thread or not args[0].requires_grad:
            return None
        return _FoldedInputGradient.apply(args[0], out.detach(), conv.weight.detach(), conv)

    return [conv.register_forward_hook(hook) for conv in convs]


def _is_conv2d(module: nn.Module) -> bool:
    """A ``Conv2d``, also inside a TorchScript module (which keeps the original class name)."""
    return isinstance(module, nn.Conv2d) or getattr(module, "original_name", None) == "Conv2d"


def _agrees(a: Tensor, b: Tensor) -> bool:
    """Equal up to float rounding: the largest difference is within ``_LAYOUT_PROBE_RTOL`` of ``a``'s scale."""
    scale = float(a.abs().max())
    return a.shape == b.shape and bool((a - b).abs().max() <= _LAYOUT_PROBE_RTOL * max(scale, 1e-6))


class SklearnClassifier(Classifier):
    """A fitted scikit-learn classifier; "logits" are log ``predict_proba``. Black-box only.

    Inputs ``(N, *input_shape)`` are flattened to ``(N, prod(input_shape))`` before ``predict_proba``.
    """

    framework: Framework = "sklearn"
    differentiable = False

    def __init__(
        self,
        estimator: Any,
        *,
        input_shape: tuple[int, ...],
        bounds: tuple[float, float],
        num_classes: int,
        sha256: str | None = None,
    ) -> None:
        super().__init__(input_shape=input_shape, bounds=bounds, num_classes=num_classes, device="cpu", sha256=sha256)
        if not callable(getattr(estimator, "predict_proba", None)):
            raise EngineInputError(
                f"{type(estimator).__name__} has no predict_proba; wrap a probabilistic classifier "
                "(e.g. LogisticRegression, RandomForestClassifier, or SVC(probability=True))."
            )
        classes = np.asarray(getattr(estimator, "classes_", []))
        if (
            classes.size == 0
            or not np.issubdtype(classes.dtype, np.integer)
            or classes.min() < 0
            or classes.max() >= self.num_classes
        ):
            raise EngineInputError(
                f"The estimator must be fitted on integer labels in [0, {self.num_classes}); "
                f"its classes_ are {classes.tolist()}. Encode labels as 0..num_classes-1 before fitting."
            )
        self.estimator = estimator
        self._columns = torch.as_tensor(classes, dtype=torch.int64)

    def logits(self, x: Tensor) -> Tensor:
        """Log-probabilities ``(N, num_classes)``; classes the estimator never saw get log(1e-12)."""
        self.check_input(x)
        flat = x.detach().cpu().reshape(x.shape[0], -1).numpy()
        proba = torch.as_tensor(self.estimator.predict_proba(flat), dtype=torch.float32)
        full = torch.zeros(x.shape[0], self.num_classes, dtype=torch.float32)
        full[:, self._columns] = proba
        return full.clamp_min_(_LOG_PROB_FLOOR).log_()
