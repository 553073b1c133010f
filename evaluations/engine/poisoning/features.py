"""Penultimate-layer features for poison detection, captured with forward hooks.

By default the features are the INPUT to the last ``nn.Linear`` the forward pass runs (the classifier
head), found by hooking every ``nn.Linear`` and seeing which fires last; this works for ``nn.Sequential``
and for custom modules with their own ``forward``. Pass ``layer='name'`` (a name from
``module.named_modules()``) to capture that module's output (or input, with ``capture='input'``) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from evaluations.engine.common import (
    CancelCheck,
    EmptyDatasetError,
    InvalidConfigError,
    ProgressCallback,
    check_cancelled,
    resolve_device,
)
from evaluations.engine.datasets.base import Dataset
from evaluations.engine.models.classifier import TorchClassifier
from evaluations.engine.poisoning.errors import FeatureLayerNotFoundError

__all__ = ["FeatureExtraction", "extract_features", "find_penultimate_layer", "layer_names"]

Capture = Literal["input", "output"]
_MAX_NAMES_IN_MESSAGE = 40


@dataclass(frozen=True, eq=False)
class FeatureExtraction:
    """Features ``(N, D)`` (float32, CPU) and where they came from: the layer name and input or output."""

    features: Tensor
    layer: str
    capture: Capture

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (without the features)."""
        return {"layer": self.layer, "capture": self.capture, "shape": list(self.features.shape)}


def layer_names(module: nn.Module) -> list[str]:
    """Names of ``module``'s submodules, as ``named_modules()`` gives them (the root excluded)."""
    return [name for name, _ in module.named_modules() if name]


def _unwrap(model: nn.Module | TorchClassifier) -> nn.Module:
    if isinstance(model, TorchClassifier):
        return model.module
    if isinstance(model, nn.Module):
        return model
    raise FeatureLayerNotFoundError(
        f"Features come from a torch model (nn.Module or TorchClassifier); got {type(model).__name__}. "
        "Scikit-learn models have no hidden layer to read: pass features you computed instead."
    )


def _as_tensor(x: Tensor | np.ndarray | Dataset) -> Tensor:
    if isinstance(x, Dataset):
        x = x.x
    tensor = torch.tensor(np.asarray(x)) if not isinstance(x, Tensor) else x
    if tensor.dim() == 0 or tensor.shape[0] == 0:
        raise EmptyDatasetError("There are no samples to extract features from; pass at least one sample.")
    return tensor


def find_penultimate_layer(module: nn.Module | TorchClassifier, example: Tensor) -> str:
    """Name of the last ``nn.Linear`` that runs when ``module`` processes ``example`` (a small batch)."""
    module = _unwrap(module)
    order: list[str] = []
    handles = [
        sub.register_forward_hook(lambda _m, _i, _o, name=name: order.append(name))
        for name, sub in module.named_modules()
        if isinstance(sub, nn.Linear)
    ]
    try:
        with torch.inference_mode():
            module(example)
    finally:
        for handle in handles:
            handle.remove()
    if not order:
        raise FeatureLayerNotFoundError(
            f"{type(module).__name__} runs no nn.Linear layer, so the penultimate features cannot be found "
            f"automatically; pass layer= one of: {_names_message(module)}."
        )
    return order[-1]


def _names_message(module: nn.Module) -> str:
    names = layer_names(module)
    shown = ", ".join(repr(n) for n in names[:_MAX_NAMES_IN_MESSAGE])
    more = len(names) - _MAX_NAMES_IN_MESSAGE
    return (shown + (f" (and {more} more)" if more > 0 else "")) or "(the model has no submodules)"


def extract_features(
    model: nn.Module | TorchClassifier,
    x: Tensor | np.ndarray | Dataset,
    *,
    layer: str | None = None,
    capture: Capture | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> FeatureExtraction:
    """Activations of ``model`` on ``x`` ``(N, *input_shape)``, flattened to ``(N, D)`` float32 on the CPU.

    Arguments:
        model: an ``nn.Module`` or :class:`TorchClassifier` (run in eval mode, without gradients).
        x: inputs (float images/tabular rows or int64 token ids), or a Dataset.
        layer: a submodule name (see :func:`layer_names`); None finds the last ``nn.Linear`` automatically.
        capture: ``'input'`` or ``'output'`` of the layer; defaults to ``'input'`` for the automatic layer
            (the penultimate activations) and ``'output'`` for a named one.
        batch_size: samples per forward pass.
        device: where to run; defaults to the classifier's device (or CPU for a bare module).

    Raises :class:`FeatureLayerNotFoundError` (listing the available names) for an unknown ``layer``.
    """
    module = _unwrap(model)
    default_device = model.device if isinstance(model, TorchClassifier) else "cpu"
    run_device = resolve_device(device, default_device)
    data = _as_tensor(x)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    if capture not in (None, "input", "output"):
        raise InvalidConfigError(f"capture must be 'input' or 'output'; got {capture!r}.")
    was_training = module.training
    module.to(run_device).eval()
    try:
        if layer is None:
            layer = find_penultimate_layer(module, data[:2].to(run_device))
            capture = capture or "input"
        else:
            capture = capture or "output"
        modules = dict(module.named_modules())
        if not isinstance(layer, str) or not layer or layer not in modules:
            raise FeatureLayerNotFoundError(
                f"The model has no layer named {layer!r}; pick one of: {_names_message(module)}."
            )
        captured: list[Tensor] = []

        def hook(_module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            value = inputs[0] if capture == "input" else output
            if not isinstance(value, Tensor):
                raise FeatureLayerNotFoundError(
                    f"The {capture} of layer {layer!r} is a {type(value).__name__}, not a tensor; pick another layer."
                )
            captured.append(value.detach().reshape(value.shape[0], -1).float().cpu())

        handle = modules[layer].register_forward_hook(hook)
        chunks: list[Tensor] = []
        n = data.shape[0]
        try:
            with torch.inference_mode():
                for start in range(0, n, batch_size):
                    check_cancelled(should_cancel)
                    captured.clear()
                    module(data[start : start + batch_size].to(run_device))
                    if not captured:
                        raise FeatureLayerNotFoundError(
                            f"Layer {layer!r} did not run in the forward pass; pick a layer the model uses: "
                            f"{_names_message(module)}."
                        )
                    chunks.append(captured[-1])
                    if progress is not None:
                        progress(min(1.0, (start + batch_size) / n))
        finally:
            handle.remove()
    finally:
        module.train(was_training)
    return FeatureExtraction(features=torch.cat(chunks), layer=layer, capture=capture)
