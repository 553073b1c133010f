"""Model wrappers, the architecture registry and safe (scan-first) loaders."""

from __future__ import annotations

from evaluations.engine.models.architectures import ARCHITECTURES, ArchitectureError, build, get_architecture
from evaluations.engine.models.classifier import Classifier, SklearnClassifier, TorchClassifier
from evaluations.engine.models.loaders import (
    MODEL_FORMATS,
    ModelLoadError,
    StateDictMismatchError,
    UnsupportedFormatError,
    UntrustedTypesError,
    load_model,
    load_safetensors,
    load_skops,
    load_torchscript,
)

__all__ = [
    "ARCHITECTURES",
    "MODEL_FORMATS",
    "ArchitectureError",
    "Classifier",
    "ModelLoadError",
    "SklearnClassifier",
    "StateDictMismatchError",
    "TorchClassifier",
    "UnsupportedFormatError",
    "UntrustedTypesError",
    "build",
    "get_architecture",
    "load_model",
    "load_safetensors",
    "load_skops",
    "load_torchscript",
]
