"""Safe model loading: scan first, then parse only formats that cannot run code on load.

Every loader calls the scanner's ``ensure_clean(path)`` before reading the file, reads the bytes once,
checks they still hash to what the scanner saw (so the file cannot be swapped between scan and load),
and parses those bytes. Raw pickle, joblib and ``torch.load`` are never used.
"""

from __future__ import annotations

import inspect
import io
import warnings
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import skops.io as sio
import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from torch import nn

from evaluations.engine.common import EngineInputError, sha256_bytes
from evaluations.engine.models.architectures import get_architecture
from evaluations.engine.models.classifier import Classifier, SklearnClassifier, TorchClassifier
from evaluations.engine.scanning import ScanConfig, UnsafeModelFile, ensure_clean

__all__ = [
    "MODEL_FORMATS",
    "SKOPS_ALLOWED_TYPES",
    "ModelLoadError",
    "StateDictMismatchError",
    "UnsafeModelFile",
    "UntrustedTypesError",
    "UnsupportedFormatError",
    "load_model",
    "load_safetensors",
    "load_skops",
    "load_torchscript",
]

ModelFormat = Literal["torchscript", "safetensors", "skops"]
MODEL_FORMATS: tuple[str, ...] = ("torchscript", "safetensors", "skops")

# Types skops does not trust by default but which are plain fitted-state holders inside common scikit-learn
# estimators (trees, gradient boosting, nearest neighbours, MLP optimisers). Anything else is refused.
SKOPS_ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    }
)

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"


class ModelLoadError(EngineInputError):
    """A model file could not be loaded; the message says what to fix."""


class UnsupportedFormatError(ModelLoadError):
    """The requested format is unknown, or the file is not in the format it claims."""


class StateDictMismatchError(ModelLoadError):
    """Weights do not fit the architecture: missing or unexpected keys, or shape mismatches."""

    def __init__(
        self,
        message: str,
        *,
        missing: list[str],
        unexpected: list[str],
        shape_mismatches: dict[str, tuple[tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected
        self.shape_mismatches = shape_mismatches


class UntrustedTypesError(ModelLoadError):
    """A skops file references types outside skops' defaults and Garrison's allow-list."""

    def __init__(self, message: str, *, types: list[str]) -> None:
        super().__init__(message)
        self.types = types


def _read_scanned(path: str | PathLike[str], *, scan_config: ScanConfig | None = None) -> tuple[bytes, str]:
    """Scan ``path`` (raising ``UnsafeModelFile``), then return its bytes and their SHA-256."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"No model file at {path}; check the path of the uploaded artifact.")
    report = ensure_clean(path, config=scan_config)
    data = path.read_bytes()
    digest = sha256_bytes(data)
    scanned = getattr(report, "sha256", None)
    if scanned and scanned.lower() != digest:
        raise ModelLoadError(
            f"{path.name} changed between the safety scan and loading (sha256 {scanned} then {digest}); "
            "make sure nothing writes to the file while it is being evaluated, then retry."
        )
    if not data:
        raise ModelLoadError(f"{path.name} is empty; re-export the model.")
    return data, digest


def _describe_other_format(data: bytes) -> str:
    """A hint about what a file that failed to parse actually is."""
    if data.startswith(_ZIP_MAGIC):
        return "It is a ZIP archive (torch.save, TorchScript or skops output)."
    if data.startswith(_PICKLE_MAGIC):
        return "It is a raw pickle (torch.save legacy format or joblib), which Garrison never loads."
    return "Its format was not recognised."


def _check_output(classifier: TorchClassifier, name: str) -> TorchClassifier:
    """Run one dummy batch so a wrong ``input_shape`` or ``num_classes`` fails now, with a clear message."""
    probe = torch.zeros((1, *classifier.input_shape), dtype=classifier.input_dtype, device=classifier.device)
    try:
        with torch.inference_mode():
            out = classifier.logits(probe)
    except Exception as exc:  # noqa: BLE001 - any failure here means the declared input is wrong
        raise ModelLoadError(
            f"{name} does not accept inputs of shape (N, {', '.join(map(str, classifier.input_shape))}) "
            f"and dtype {classifier.input_dtype}: {exc}. Declare the input_shape the model was trained on."
        ) from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, classifier.num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelLoadError(
            f"{name} returns {shape} for one sample but (1, {classifier.num_classes}) logits were expected; "
            "declare the right num_classes or export a model whose forward returns logits."
        )
    return classifier


def load_torchscript(
    path: str | PathLike[str],
    *,
    input_shape: tuple[int, ...],
    bounds: tuple[float, float],
    num_classes: int,
    device: torch.device | str = "cpu",
    input_dtype: torch.dtype = torch.float32,
) -> TorchClassifier:
    """Load a TorchScript archive (``torch.jit.save``) as a :class:`TorchClassifier`."""
    data, digest = _read_scanned(path)
    name = Path(path).name
    if not data.startswith(_ZIP_MAGIC):
        raise UnsupportedFormatError(
            f"{name} is not a TorchScript archive. {_describe_other_format(data)} "
            "Export with torch.jit.save(torch.jit.script(model), path)."
        )
    try:
        with warnings.catch_warnings():
            # torch 2.13 deprecates TorchScript in favour of torch.export; loading it is still supported.
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(io.BytesIO(data), map_location=torch.device(device))
    except (RuntimeError, ValueError) as exc:
        raise UnsupportedFormatError(
            f"{name} is not a loadable TorchScript archive ({exc}). A file written by torch.save is not "
            "TorchScript: export with torch.jit.save(torch.jit.script(model), path), or upload safetensors."
        ) from exc
    classifier = TorchClassifier(
        module,
        input_shape=input_shape,
        bounds=bounds,
        num_classes=num_classes,
        device=device,
        sha256=digest,
        input_dtype=input_dtype,
    )
    return _check_output(classifier, name)


def _check_state_dict(name: str, model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`StateDictMismatchError` naming every missing, unexpected or mis-shaped tensor."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = {
        key: (tuple(state[key].shape), tuple(expected[key].shape))
        for key in sorted(set(state) & set(expected))
        if state[key].shape != expected[key].shape
    }
    if not (missing or unexpected or mismatched):
        return
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if mismatched:
        problems.append(
            "shape mismatches: "
            + ", ".join(f"{key} is {got} but the model needs {want}" for key, (got, want) in mismatched.items())
        )
    raise StateDictMismatchError(
        f"The weights in {name} do not fit this architecture ({'; '.join(problems)}). Check the architecture "
        "name and hyperparameters, and save with safetensors.torch.save_file(model.state_dict(), path).",
        missing=missing,
        unexpected=unexpected,
        shape_mismatches=mismatched,
    )


def load_safetensors(
    path: str | PathLike[str],
    *,
    architecture: str,
    hyperparams: Mapping[str, Any],
    input_shape: tuple[int, ...],
    bounds: tuple[float, float],
    num_classes: int,
    device: torch.device | str = "cpu",
) -> TorchClassifier:
    """Load a safetensors state dict into a registered architecture (strict) as a :class:`TorchClassifier`."""
    data, digest = _read_scanned(path)
    name = Path(path).name
    arch = get_architecture(architecture)
    params = dict(hyperparams)
    if params.setdefault("num_classes", num_classes) != num_classes:
        raise ModelLoadError(
            f"hyperparams say num_classes={params['num_classes']} but num_classes={num_classes} was given; "
            "make them agree."
        )
    if data.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        raise UnsupportedFormatError(
            f"{name} is not a safetensors file. {_describe_other_format(data)} Convert it where it was "
            "trained with safetensors.torch.save_file(model.state_dict(), 'model.safetensors')."
        )
    try:
        state = safetensors_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise UnsupportedFormatError(
            f"{name} is not a valid safetensors file ({exc}). Save weights with "
            "safetensors.torch.save_file(model.state_dict(), 'model.safetensors')."
        ) from exc
    model = arch.build(**params)
    _check_state_dict(name, model, state)
    model.load_state_dict(state, strict=True)
    classifier = TorchClassifier(
        model,
        input_shape=input_shape,
        bounds=bounds,
        num_classes=num_classes,
        device=device,
        sha256=digest,
        input_dtype=arch.input_dtype,
    )
    return _check_output(classifier, name)


def load_skops(
    path: str | PathLike[str],
    *,
    input_shape: tuple[int, ...],
    bounds: tuple[float, float],
    num_classes: int,
) -> SklearnClassifier:
    """Load a scikit-learn classifier saved with ``skops.io.dump``, trusting only audited types."""
    # Tell the scanner about the same allow-list, so both layers agree on what a skops file may hold.
    data, digest = _read_scanned(path, scan_config=ScanConfig(extra_safe_globals=SKOPS_ALLOWED_TYPES))
    name = Path(path).name
    if not data.startswith(_ZIP_MAGIC):
        raise UnsupportedFormatError(
            f"{name} is not a skops file. {_describe_other_format(data)} "
            "Save the fitted estimator with skops.io.dump(estimator, 'model.skops')."
        )
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - skops raises many types for malformed archives
        raise UnsupportedFormatError(
            f"{name} is not a valid skops file ({exc}). Save it with skops.io.dump(estimator, path)."
        ) from exc
    refused = sorted(set(untrusted) - SKOPS_ALLOWED_TYPES)
    if refused:
        raise UntrustedTypesError(
            f"{name} references types Garrison does not trust: {', '.join(refused)}. Only scikit-learn "
            "estimators and their fitted state can be loaded; remove custom classes and functions from "
            "the pipeline.",
            types=refused,
        )
    try:
        estimator = sio.loads(data, trusted=sorted(untrusted))
    except Exception as exc:  # noqa: BLE001 - surfaced with the file name and a fix
        raise ModelLoadError(
            f"{name} could not be loaded by skops ({exc}); re-save it with the scikit-learn version Garrison runs."
        ) from exc
    return SklearnClassifier(estimator, input_shape=input_shape, bounds=bounds, num_classes=num_classes, sha256=digest)


def load_model(path: str | PathLike[str], *, format: ModelFormat, **options: Any) -> Classifier:  # noqa: A002
    """Load ``path`` with the loader for ``format`` ('torchscript', 'safetensors' or 'skops')."""
    loaders = {"torchscript": load_torchscript, "safetensors": load_safetensors, "skops": load_skops}
    try:
        loader = loaders[format]
    except KeyError:
        raise UnsupportedFormatError(
            f"Unknown model format {format!r}; choose one of {', '.join(MODEL_FORMATS)}."
        ) from None
    try:
        inspect.signature(loader).bind(path, **options)
    except TypeError as exc:
        raise ModelLoadError(f"Wrong options for the {format} loader: {exc}.") from None
    return loader(path, **options)
