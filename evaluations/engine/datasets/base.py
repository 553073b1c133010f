"""The ``Dataset`` every loader returns, its validation, the dataset errors and a stratified split."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from evaluations.engine.common import (
    EmptyDatasetError,
    EngineInputError,
    InputOutOfBoundsError,
    InvalidConfigError,
    LabelOutOfRangeError,
    NonFiniteInputError,
    ShapeMismatchError,
    sha256_arrays,
)

if TYPE_CHECKING:
    from evaluations.engine.datasets.text import Vocabulary

__all__ = [
    "Dataset",
    "DatasetFormatError",
    "DatasetSplit",
    "MissingColumnError",
    "NonNumericValueError",
    "ObjectArrayError",
    "as_labels",
    "make_dataset",
    "read_source",
    "stratified_split",
]


class DatasetFormatError(EngineInputError):
    """A dataset file is unreadable or not laid out the way its loader expects."""


class MissingColumnError(DatasetFormatError):
    """A CSV file lacks a column the caller named (the label column or a feature column)."""


class NonNumericValueError(DatasetFormatError):
    """A feature cell of a CSV file is not a number."""


class ObjectArrayError(DatasetFormatError):
    """An ``.npz`` file holds object arrays, which only unpickling could read; they are refused."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Validated, read-only samples with their classes, input bounds, hashes and provenance.

    Attributes:
        x: inputs ``(N, *input_shape)``: float32 for images and tabular data, int64 token ids
            ``(N, max_length)`` (right-padded with 0) for text.
        y: int64 labels ``(N,)`` in ``[0, len(class_names))``.
        class_names: one name per class; label ``i`` means ``class_names[i]``.
        bounds: valid input range ``(lo, hi)``; every value of ``x`` lies inside it.
        source: where the data came from (``'npz:train.npz'``, ``'sklearn.datasets.load_digits'``).
        source_sha256: SHA-256 of the source bytes (the file, or a digest over a folder's files).
        provenance: JSON-ready details: loader options, columns, split, scaling, tokenizer settings.
        vocabulary: the token vocabulary of a text dataset, else None.
        texts: the raw text of each sample of a text dataset, else None.
        input_shape: shape of one sample (derived from ``x``).
        sha256: SHA-256 over ``x`` and ``y`` (dtype, shape and bytes), computed on construction.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    bounds: tuple[float, float]
    source: str
    source_sha256: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    vocabulary: Vocabulary | None = None
    texts: tuple[str, ...] | None = field(default=None, repr=False)
    input_shape: tuple[int, ...] = field(init=False)
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", _check_class_names(self.class_names))
        object.__setattr__(self, "bounds", _check_bounds(self.bounds))
        object.__setattr__(self, "provenance", dict(self.provenance))
        x, y = _frozen_copy(self.x), _frozen_copy(self.y)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        self._validate()
        object.__setattr__(self, "input_shape", tuple(int(d) for d in x.shape[1:]))
        object.__setattr__(self, "sha256", sha256_arrays(x, y))

    def _validate(self) -> None:
        x, y = self.x, self.y
        if x.ndim == 0 or x.shape[0] == 0 or y.size == 0:
            raise EmptyDatasetError(f"The dataset from {self.source} has no samples; add at least one labelled sample.")
        if x.ndim < 2 or any(d == 0 for d in x.shape[1:]):
            raise ShapeMismatchError(
                f"x must have shape (N, *input_shape) with non-empty samples, e.g. (N, 1, 8, 8); got {x.shape}."
            )
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ShapeMismatchError(
                f"y must be 1-D with one label per sample of x ({x.shape[0]}); got shape {y.shape}. "
                "Check that inputs and labels come from the same rows."
            )
        if y.dtype != np.int64:
            raise LabelOutOfRangeError(f"y must be int64 class labels; got dtype {y.dtype}. Use make_dataset().")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= len(self.class_names):
            raise LabelOutOfRangeError(
                f"Labels must lie in [0, {len(self.class_names)}) for the {len(self.class_names)} classes "
                f"{list(self.class_names)}; got values from {low} to {high}. Encode labels as 0..num_classes-1 "
                "or pass every class name."
            )
        if self.texts is not None and len(self.texts) != x.shape[0]:
            raise ShapeMismatchError(f"texts has {len(self.texts)} entries but x has {x.shape[0]} samples.")
        if self.vocabulary is not None:
            self._validate_token_ids()
            return
        if x.dtype != np.float32:
            raise EngineInputError(f"x must be float32; got {x.dtype}. Use make_dataset() to convert it.")
        finite = np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
        if not finite.all():
            rows = np.flatnonzero(~finite)
            raise NonFiniteInputError(
                f"x contains NaN or infinite values in {rows.size} sample(s) (first at index {int(rows[0])}); "
                "impute or drop those samples."
            )
        lo, hi = self.bounds
        x_min, x_max = float(x.min()), float(x.max())
        if x_min < lo or x_max > hi:
            raise InputOutOfBoundsError(
                f"x ranges over [{x_min:g}, {x_max:g}] but the declared bounds are [{lo:g}, {hi:g}]; "
                "declare bounds that contain the data, or rescale it."
            )

    def _validate_token_ids(self) -> None:
        x, size = self.x, len(self.vocabulary)  # type: ignore[arg-type]
        if x.dtype != np.int64 or x.ndim != 2:
            raise ShapeMismatchError(
                f"A text dataset needs int64 token ids of shape (N, max_length); got {x.dtype} {x.shape}."
            )
        if int(x.min()) < 0 or int(x.max()) >= size:
            raise LabelOutOfRangeError(
                f"Token ids must lie in [0, {size}) for this vocabulary; got values from {int(x.min())} to "
                f"{int(x.max())}. Encode the texts with the dataset's own vocabulary."
            )
        if self.bounds != (0.0, float(size - 1)):
            raise EngineInputError(
                f"A text dataset's bounds are its token-id range (0, {size - 1}); got {self.bounds}."
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def size(self) -> int:
        """Number of samples."""
        return len(self)

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(class_names)``), whether or not each occurs in ``y``."""
        return len(self.class_names)

    @property
    def class_counts(self) -> list[int]:
        """Samples per class, indexed by label."""
        return np.bincount(self.y, minlength=self.num_classes).tolist()

    def as_tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` as writable torch tensors on ``device`` (copies, so the dataset stays read-only)."""
        return torch.tensor(self.x, device=device), torch.tensor(self.y, device=device)

    def subset(self, indices: Sequence[int] | np.ndarray, *, source: str | None = None, **provenance: Any) -> Dataset:
        """The samples at ``indices`` (in that order), with ``provenance`` merged into the parent's."""
        index = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            x=self.x[index],
            y=self.y[index],
            source=source or self.source,
            provenance={**self.provenance, **provenance},
            texts=None if self.texts is None else tuple(self.texts[i] for i in index.tolist()),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (no arrays): what to record next to any result computed on this data."""
        return {
            "source": self.source,
            "source_sha256": self.source_sha256,
            "sha256": self.sha256,
            "size": self.size,
            "input_shape": list(self.input_shape),
            "dtype": str(self.x.dtype),
            "bounds": list(self.bounds),
            "class_names": list(self.class_names),
            "class_counts": self.class_counts,
            "vocabulary_size": None if self.vocabulary is None else len(self.vocabulary),
            "provenance": dict(self.provenance),
        }


class DatasetSplit(NamedTuple):
    """A train and a test :class:`Dataset` from one source (unpacks as ``train, test``)."""

    train: Dataset
    test: Dataset


def _frozen_copy(array: Any) -> np.ndarray:
    """A C-contiguous read-only array that no caller holds a writable view of."""
    if not isinstance(array, np.ndarray):
        raise EngineInputError(f"Dataset arrays must be numpy arrays; got {type(array).__name__}. Use make_dataset().")
    # A read-only view can still be written through its writable base, so only an owned read-only array is reused.
    if array.flags.writeable or not array.flags.c_contiguous or not array.flags.owndata:
        array = np.array(array, order="C", copy=True)
    array.flags.writeable = False
    return array


def _check_class_names(names: Any) -> tuple[str, ...]:
    names = tuple(names)
    if len(names) < 2:
        raise EngineInputError(f"A dataset needs at least two classes; got class_names={list(names)}.")
    if not all(isinstance(name, str) and name for name in names):
        raise EngineInputError(f"class_names must be non-empty strings; got {list(names)}.")
    if len(set(names)) != len(names):
        raise EngineInputError(f"class_names must be unique; got {list(names)}.")
    return names


def _check_bounds(bounds: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise EngineInputError(f"bounds must be a pair (lo, hi), e.g. (0.0, 1.0); got {bounds!r}.") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise EngineInputError(f"bounds must be finite with lo < hi, e.g. (0.0, 1.0); got {bounds!r}.")
    return lo, hi


def as_labels(y: Any) -> np.ndarray:
    """``y`` as int64 labels, refusing non-integer values (``1.5``, NaN), booleans and non-numbers."""
    array = np.asarray(y)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise LabelOutOfRangeError(
            f"Labels must be integer class indices; got dtype {array.dtype}. Encode labels as 0..num_classes-1."
        )
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array) & (array == np.round(array))):
            raise LabelOutOfRangeError(
                "Labels must be integer class indices; got non-integer or NaN values. Encode labels as "
                "0..num_classes-1."
            )
    return array.astype(np.int64)


def make_dataset(
    x: Any,
    y: Any,
    *,
    class_names: Sequence[str] | None = None,
    bounds: tuple[float, float] | None = None,
    source: str = "arrays",
    source_sha256: str | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Dataset:
    """Build a :class:`Dataset` from array-likes: x becomes float32, y int64 labels.

    ``class_names`` defaults to ``'0'..'C-1'`` with ``C = max(y) + 1`` (at least 2); ``bounds`` defaults
    to the data's own ``(min, max)``.
    """
    array = np.asarray(x)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise DatasetFormatError(f"x must hold numbers; got dtype {array.dtype}. Convert features to numbers first.")
    array = array.astype(np.float32)
    labels = as_labels(y)
    if array.ndim == 0 or array.shape[0] == 0 or labels.size == 0:
        raise EmptyDatasetError(f"The dataset from {source} has no samples; add at least one labelled sample.")
    if class_names is None:
        class_names = tuple(str(i) for i in range(max(int(labels.max()) + 1, 2)))
    if bounds is None:
        lo, hi = _data_range(array)
        bounds = (lo, hi)
    return Dataset(
        x=array,
        y=labels,
        class_names=tuple(class_names),
        bounds=bounds,
        source=source,
        source_sha256=source_sha256,
        provenance=dict(provenance or {}),
    )


def _data_range(x: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of finite data, widened to a unit interval when the data is constant."""
    if not np.isfinite(x).all():
        raise NonFiniteInputError("x contains NaN or infinite values; impute or drop those samples.")
    lo, hi = float(x.min()), float(x.max())
    return (lo, hi) if lo < hi else (lo, lo + 1.0)


def read_source(path: str | PathLike[str], what: str) -> tuple[Path, bytes]:
    """The path and bytes of the file at ``path``, or :class:`DatasetFormatError` saying it is missing."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"No {what} file at {path}; check the path of the uploaded dataset.")
    return path, path.read_bytes()


def stratified_split(dataset: Dataset, *, test_size: int | float, seed: int) -> DatasetSplit:
    """Split ``dataset`` like ``train_test_split(x, y, test_size=..., stratify=y, random_state=seed)`` does.

    Samples keep the order ``train_test_split`` returns, so the arrays equal scikit-learn's own split.
    """
    from sklearn.model_selection import train_test_split

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(dataset)), test_size=test_size, stratify=dataset.y, random_state=seed
        )
    except ValueError as exc:
        raise InvalidConfigError(
            f"Cannot split {len(dataset)} samples with test_size={test_size!r} ({exc}); every class needs at "
            "least two samples and both parts must be non-empty."
        ) from None
    split = {"test_size": test_size, "seed": seed, "stratified": True}
    return DatasetSplit(
        train=dataset.subset(train_idx, split={**split, "part": "train"}),
        test=dataset.subset(test_idx, split={**split, "part": "test"}),
    )
