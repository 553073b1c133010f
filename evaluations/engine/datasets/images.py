"""Images: a folder with one subfolder of PNG/JPEG files per class, decoded with Pillow."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import warnings
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np

from evaluations.engine.common import InvalidConfigError, sha256_bytes
from evaluations.engine.datasets.base import Dataset, DatasetFormatError

__all__ = ["IMAGE_SUFFIXES", "load_image_folder"]

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg"})


def load_image_folder(
    root: str | PathLike[str],
    *,
    size: tuple[int, int],
    channels: Literal[1, 3] = 1,
) -> Dataset:
    """Load ``root/<class name>/*.png|jpg|jpeg`` as float32 ``(N, channels, height, width)`` in [0, 1].

    Classes are the subfolders in sorted order (label ``i`` is the i-th name); files in each are read in
    sorted order, converted to grayscale (``channels=1``) or RGB (``channels=3``), resized bilinearly to
    ``size = (height, width)`` and divided by 255. Only the PNG and JPEG decoders are used; hidden files
    and files with other suffixes are skipped (and counted in ``provenance``). ``source_sha256`` covers
    every image's relative path and bytes.
    """
    if importlib.util.find_spec("PIL") is None:  # pragma: no cover - Pillow comes with WeasyPrint
        raise DatasetFormatError("Loading image folders needs Pillow; install it (pip install pillow).")
    height, width = _check_size(size)
    if channels not in (1, 3):
        raise InvalidConfigError(f"channels must be 1 (grayscale) or 3 (RGB); got {channels!r}.")
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"No image folder at {root}; point to a folder with one subfolder per class.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DatasetFormatError(
            f"{root.name} has {len(class_dirs)} class subfolder(s); it needs one subfolder of images per class, "
            "at least two."
        )
    mode = "L" if channels == 1 else "RGB"
    images: list[np.ndarray] = []
    labels: list[int] = []
    skipped = 0
    digest = hashlib.sha256()
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        accepted = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        skipped += len(files) - len(accepted)
        if not accepted:
            raise DatasetFormatError(
                f"Class folder {class_dir.name!r} has no PNG or JPEG images; add images or remove the folder."
            )
        for path in accepted:
            data = path.read_bytes()
            digest.update(f"{class_dir.name}/{path.name}\0{sha256_bytes(data)}\n".encode())
            images.append(_decode(data, path, mode, (width, height)))
            labels.append(label)
    x = np.stack(images).astype(np.float32) / np.float32(255.0)
    if channels == 1:
        x = x[:, None]
    else:
        x = x.transpose(0, 3, 1, 2)
    return Dataset(
        x=x,
        y=np.asarray(labels, dtype=np.int64),
        class_names=tuple(p.name for p in class_dirs),
        bounds=(0.0, 1.0),
        source=f"images:{root.name}",
        source_sha256=digest.hexdigest(),
        provenance={
            "loader": "image_folder",
            "folder": root.name,
            "size": [height, width],
            "channels": channels,
            "resample": "bilinear",
            "skipped_files": skipped,
        },
    )


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = size
    except (TypeError, ValueError):
        raise InvalidConfigError(f"size must be (height, width), e.g. (28, 28); got {size!r}.") from None
    for value in (height, width):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidConfigError(f"size must be two positive integers (height, width); got {size!r}.")
    return height, width


def _decode(data: bytes, path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """Decode one PNG/JPEG to a uint8 array ``(H, W)`` or ``(H, W, 3)``; bombs and broken files are errors."""
    from PIL import Image, UnidentifiedImageError

    where = f"{path.parent.name}/{path.name}"
    try:
        with warnings.catch_warnings():
            # Pillow only warns up to twice its pixel limit; treat any oversized image as hostile.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=("PNG", "JPEG")) as image:
                converted = image.convert(mode).resize(size, Image.Resampling.BILINEAR)
                return np.asarray(converted, dtype=np.uint8)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DatasetFormatError(f"{where} is too large to decode safely ({exc}).") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetFormatError(f"{where} is not a readable PNG or JPEG image ({exc}).") from None
