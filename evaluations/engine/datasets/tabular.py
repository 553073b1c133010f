"""Tabular data: a CSV file with a header, numeric feature columns and one label column; min-max scaling."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import replace
from os import PathLike

import numpy as np

from evaluations.engine.common import EmptyDatasetError, LabelOutOfRangeError, NonFiniteInputError, sha256_bytes
from evaluations.engine.datasets.base import (
    Dataset,
    DatasetFormatError,
    MissingColumnError,
    NonNumericValueError,
    make_dataset,
    read_source,
)

__all__ = ["decode_text", "load_tabular_csv", "minmax_scale"]


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 text of a file (a leading byte-order mark is dropped), or :class:`DatasetFormatError`."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(f"{name} is not UTF-8 text ({exc}); re-export it as UTF-8.") from None


def load_tabular_csv(
    path: str | PathLike[str],
    *,
    label_column: str,
    feature_columns: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    bounds: tuple[float, float] | None = None,
    delimiter: str = ",",
) -> Dataset:
    """Load a CSV file whose first row names the columns; features become float32 ``(N, n_features)``.

    Labels: with ``class_names``, a label cell is a class name or an index into it; without, integer
    cells are used as labels and anything else is mapped to sorted unique names. Features are taken
    as is (no scaling; see :func:`minmax_scale`); ``bounds`` defaults to the data's ``(min, max)``.
    Errors name the line and column: :class:`MissingColumnError`, :class:`NonNumericValueError`,
    :class:`~evaluations.engine.common.NonFiniteInputError` (empty, NaN or infinite cells),
    :class:`~evaluations.engine.common.EmptyDatasetError`.
    """
    path, data = read_source(path, "CSV")
    rows = csv.reader(io.StringIO(decode_text(data, path.name), newline=""), delimiter=delimiter)
    header = next(rows, None)
    if header is None or not any(cell.strip() for cell in header):
        raise EmptyDatasetError(f"{path.name} is empty; it needs a header row naming the columns, then data rows.")
    header = [cell.strip() for cell in header]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DatasetFormatError(
            f"{path.name} repeats the column name(s) {duplicated}; give every column a unique name."
        )
    if label_column not in header:
        raise MissingColumnError(
            f"{path.name} has no label column {label_column!r}; its columns are {header}. Pass label_column= "
            "with one of them."
        )
    features = [name for name in header if name != label_column] if feature_columns is None else list(feature_columns)
    unknown = [name for name in features if name not in header]
    if unknown:
        raise MissingColumnError(f"{path.name} has no column(s) {unknown}; its columns are {header}.")
    if not features or label_column in features:
        raise DatasetFormatError(
            f"feature_columns must name at least one column other than the label column {label_column!r}."
        )
    label_at, feature_at = header.index(label_column), [header.index(name) for name in features]

    values: list[list[float]] = []
    raw_labels: list[tuple[int, str]] = []
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue  # blank line
        line = rows.line_num
        if len(row) != len(header):
            raise DatasetFormatError(
                f"{path.name} line {line} has {len(row)} fields but the header has {len(header)}; "
                "quote cells that contain the delimiter."
            )
        values.append([_number(row[i], path.name, line, header[i]) for i in feature_at])
        raw_labels.append((line, row[label_at].strip()))
    if not values:
        raise EmptyDatasetError(f"{path.name} has a header but no data rows; add labelled rows.")
    labels, names = _encode_labels(raw_labels, class_names, path.name, label_column)
    return make_dataset(
        np.asarray(values, dtype=np.float64),
        labels,
        class_names=names,
        bounds=bounds,
        source=f"csv:{path.name}",
        source_sha256=sha256_bytes(data),
        provenance={"loader": "tabular_csv", "file": path.name, "label_column": label_column, "features": features},
    )


def _number(cell: str, name: str, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        raise NonFiniteInputError(
            f"{name} line {line}, column {column!r} is empty; impute the missing value or drop the row."
        )
    try:
        value = float(text)
    except ValueError:
        raise NonNumericValueError(
            f"{name} line {line}, column {column!r} holds {text!r}, which is not a number; encode categorical "
            "features as numbers or leave the column out with feature_columns=."
        ) from None
    if not math.isfinite(value):
        raise NonFiniteInputError(
            f"{name} line {line}, column {column!r} is {text!r}; impute the missing value or drop the row."
        )
    return value


def _encode_labels(
    raw: list[tuple[int, str]], class_names: Sequence[str] | None, name: str, column: str
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Label indices and class names for the label cells (``(line, text)`` pairs)."""
    if class_names is not None:
        names = tuple(class_names)
        index = {label: i for i, label in enumerate(names)}
        out = []
        for line, text in raw:
            if text in index:
                out.append(index[text])
            elif _is_int(text) and 0 <= int(text) < len(names):
                out.append(int(text))
            else:
                raise LabelOutOfRangeError(
                    f"{name} line {line}: label {text!r} in column {column!r} is neither one of the class names "
                    f"{list(names)} nor an index into them; fix the label or pass every class name."
                )
        return np.asarray(out, dtype=np.int64), names
    for line, text in raw:
        if not text:
            raise LabelOutOfRangeError(f"{name} line {line}: the label in column {column!r} is empty; label the row.")
    if all(_is_int(text) for _, text in raw):
        labels = np.asarray([int(text) for _, text in raw], dtype=np.int64)
        if labels.min() < 0:
            line = raw[int(np.argmin(labels))][0]
            raise LabelOutOfRangeError(
                f"{name} line {line}: label {int(labels.min())} is negative; labels must be 0..num_classes-1 "
                "or class names."
            )
        return labels, None
    names = tuple(sorted({text for _, text in raw}))
    index = {label: i for i, label in enumerate(names)}
    return np.asarray([index[text] for _, text in raw], dtype=np.int64), names


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def minmax_scale(train: Dataset, *others: Dataset) -> tuple[Dataset, ...]:
    """Scale every feature to [0, 1] with ``train``'s per-feature minimum and maximum.

    The other datasets (validation, test) reuse the train statistics, so values outside the train range
    are clipped to [0, 1] (the count is recorded in ``provenance['minmax']['clipped_values']``). A
    constant feature maps to 0. All results have bounds ``(0, 1)``.
    """
    for dataset in (train, *others):
        if dataset.vocabulary is not None:
            raise DatasetFormatError(f"{dataset.source} holds token ids; min-max scaling applies to numeric features.")
        if dataset.input_shape != train.input_shape:
            raise DatasetFormatError(
                f"{dataset.source} has samples of shape {dataset.input_shape} but the train set has "
                f"{train.input_shape}; scale datasets with the same features."
            )
    flat = train.x.reshape(len(train), -1).astype(np.float64)
    low, high = flat.min(axis=0), flat.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = []
    for dataset in (train, *others):
        values = (dataset.x.reshape(len(dataset), -1) - low) / span
        clipped = int(np.count_nonzero((values < 0) | (values > 1)))
        values = np.clip(values, 0.0, 1.0).astype(np.float32).reshape(dataset.x.shape)
        stats = {"min": low.tolist(), "max": high.tolist(), "fitted_on": train.sha256, "clipped_values": clipped}
        scaled.append(replace(dataset, x=values, bounds=(0.0, 1.0), provenance={**dataset.provenance, "minmax": stats}))
    return tuple(scaled)
