"""Arrays saved with ``np.savez(path, x=..., y=...)``, read without ever unpickling."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from os import PathLike

import numpy as np

from evaluations.engine.common import sha256_bytes
from evaluations.engine.datasets.base import Dataset, DatasetFormatError, ObjectArrayError, make_dataset, read_source

__all__ = ["DEFAULT_MAX_NPZ_BYTES", "load_npz"]

#: Cap on the declared uncompressed size of an ``.npz``: a small compressed file can claim gigabytes.
DEFAULT_MAX_NPZ_BYTES = 2 * 1024**3

_ZIP_MAGIC = b"PK\x03\x04"


def load_npz(
    path: str | PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    bounds: tuple[float, float] | None = None,
    max_bytes: int = DEFAULT_MAX_NPZ_BYTES,
) -> Dataset:
    """Load arrays ``x`` ``(N, *input_shape)`` and ``y`` ``(N,)`` from an ``.npz`` file.

    The file is parsed with ``np.load(..., allow_pickle=False)``: object arrays (which only unpickling
    can read, and unpickling runs code) raise :class:`ObjectArrayError`. ``x`` becomes float32 as is
    (no rescaling); ``y`` must hold integer labels. ``class_names`` comes from the argument, else from
    an optional unicode array ``class_names`` in the file, else ``'0'..'C-1'``. ``bounds`` defaults to
    the data's ``(min, max)``; pass the model's input bounds when you know them.
    """
    path, data = read_source(path, "npz")
    if not data.startswith(_ZIP_MAGIC):
        raise DatasetFormatError(
            f"{path.name} is not an .npz archive; save the arrays with np.savez(path, x=inputs, y=labels)."
        )
    _check_declared_size(path.name, data, max_bytes)
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DatasetFormatError(f"{path.name} is not a readable .npz archive ({exc}).") from None
    with archive:
        missing = [key for key in ("x", "y") if key not in archive.files]
        if missing:
            raise DatasetFormatError(
                f"{path.name} holds arrays {sorted(archive.files)} but needs 'x' (inputs) and 'y' (labels); "
                "save with np.savez(path, x=inputs, y=labels)."
            )
        x = _read_array(archive, "x", path.name)
        y = _read_array(archive, "y", path.name)
        names = class_names
        if names is None and "class_names" in archive.files:
            stored = _read_array(archive, "class_names", path.name)
            if stored.dtype.kind != "U" or stored.ndim != 1:
                raise DatasetFormatError(
                    f"class_names in {path.name} must be a 1-D unicode array, e.g. np.array(['cat', 'dog']); "
                    f"got {stored.dtype} {stored.shape}."
                )
            names = [str(name) for name in stored]
    return make_dataset(
        x,
        y,
        class_names=names,
        bounds=bounds,
        source=f"npz:{path.name}",
        source_sha256=sha256_bytes(data),
        provenance={"loader": "npz", "file": path.name, "arrays": sorted(archive.files)},
    )


def _read_array(archive: np.lib.npyio.NpzFile, key: str, name: str) -> np.ndarray:
    """One array of the archive; object arrays are refused rather than unpickled."""
    try:
        array = archive[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ObjectArrayError(
                f"Array {key!r} in {name} is an object array, which can only be read by unpickling, and "
                "unpickling runs code. Save numeric arrays instead (e.g. x.astype(np.float32))."
            ) from None
        raise DatasetFormatError(f"Array {key!r} in {name} cannot be read ({exc}).") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetFormatError(f"Array {key!r} in {name} cannot be read ({exc}).") from None
    if array.dtype.kind == "O":  # defensive: np.load never returns these with allow_pickle=False
        raise ObjectArrayError(f"Array {key!r} in {name} is an object array; save numeric arrays instead.")
    return array


def _check_declared_size(name: str, data: bytes, max_bytes: int) -> None:
    """Refuse archives whose members claim more than ``max_bytes`` before decompressing any of them."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            declared = sum(info.file_size for info in zf.infolist())
    except zipfile.BadZipFile as exc:
        raise DatasetFormatError(f"{name} is not a readable .npz archive ({exc}).") from None
    if declared > max_bytes:
        raise DatasetFormatError(
            f"{name} declares {declared} uncompressed bytes, more than the {max_bytes}-byte limit; "
            "upload a smaller evaluation set or raise max_bytes."
        )
