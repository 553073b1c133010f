"""Small helpers shared by every engine module: seeding, hashing, versions, errors, progress."""

from __future__ import annotations

import hashlib
import platform
import random
from collections.abc import Callable
from importlib import metadata
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CancelCheck",
    "Cancelled",
    "EmptyDatasetError",
    "EngineInputError",
    "EpsilonOutOfRangeError",
    "InputOutOfBoundsError",
    "InvalidConfigError",
    "LabelOutOfRangeError",
    "NonFiniteInputError",
    "NotDifferentiableError",
    "ProgressCallback",
    "ShapeMismatchError",
    "check_cancelled",
    "library_versions",
    "make_generator",
    "resolve_device",
    "seed_everything",
    "sha256_arrays",
    "sha256_bytes",
    "sha256_file",
]

ProgressCallback = Callable[[float], None]
"""Called with the fraction of work done, in [0, 1], after each unit of work."""

CancelCheck = Callable[[], bool]
"""Returns True when the caller wants the running job to stop."""

_HASH_CHUNK = 1 << 20


# --- errors ---------------------------------------------------------------------------------------


class Cancelled(Exception):  # noqa: N818 - reads as a state, like asyncio.CancelledError
    """The caller asked the running job to stop (``should_cancel()`` returned True)."""


class EngineInputError(ValueError):
    """Input handed to the engine is invalid; the message says what to fix."""


class InvalidConfigError(EngineInputError):
    """An attack, defense or detector config has an invalid value."""


class EpsilonOutOfRangeError(EngineInputError):
    """A perturbation budget is not positive or does not fit the model's input bounds."""


class ShapeMismatchError(EngineInputError):
    """Tensor shapes do not match what the model or the other inputs expect."""


class NonFiniteInputError(EngineInputError):
    """Input data contains NaN or infinite values."""


class LabelOutOfRangeError(EngineInputError):
    """Labels are not integers in ``[0, num_classes)``."""


class EmptyDatasetError(EngineInputError):
    """The dataset has no samples."""


class InputOutOfBoundsError(EngineInputError):
    """Input values fall outside the model's declared input bounds."""


class NotDifferentiableError(EngineInputError):
    """A white-box method was given a model without input gradients."""


def check_cancelled(should_cancel: CancelCheck | None) -> None:
    """Raise :class:`Cancelled` when ``should_cancel`` is given and returns True."""
    if should_cancel is not None and should_cancel():
        raise Cancelled("The job was cancelled by the caller.")


# --- seeding and devices --------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (for training and tests, not attacks)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Return a fresh torch generator on ``device`` seeded with ``seed`` (no global state)."""
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(int(seed))
    return generator


def resolve_device(device: torch.device | str | None, default: torch.device | str = "cpu") -> torch.device:
    """Turn ``None``/str/device into a ``torch.device``, falling back to ``default``."""
    return torch.device(default if device is None else device)


# --- hashing --------------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_arrays(*arrays: np.ndarray | torch.Tensor) -> str:
    """Hex SHA-256 over arrays' dtype, shape and C-ordered bytes, so reshapes and casts hash differently."""
    digest = hashlib.sha256()
    for array in arrays:
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


# --- provenance -----------------------------------------------------------------------------------


def library_versions() -> dict[str, str]:
    """Versions of Python and the numeric libraries that shape engine results."""
    versions: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__}
    for key, dist in (("numpy", "numpy"), ("sklearn", "scikit-learn")):
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = "not installed"
    return versions
