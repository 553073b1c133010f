"""Reading, validating and writing ingestion records: text (``label<TAB>text``), tabular CSV and tensors (npz).

Pure Python and numpy (no Django, no torch), so the web process can validate a pushed batch before it
is accepted into quarantine, and the worker and the merge step read stored data the same way.

A dataset's *schema* (a dict, stored on its ingestion policy) fixes what every batch must look like:

* text: ``{"format": "tsv", "class_names": [...]}``
* tabular: ``{"format": "csv", "columns": [...], "label_column": "label", "class_names": [...]}``
  (``columns`` is the full header, the label column included, in file order)
* tensor: ``{"format": "npz", "input_shape": [...], "class_names": [...]}``

Every error is a :class:`BatchInputError` with a ``code`` (``encoding``, ``empty``, ``schema``,
``label``, ``too_large``, ``format``) and a message that says how to fix the input.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "FORMATS",
    "BatchInputError",
    "Records",
    "infer_schema",
    "merge_records",
    "parse_file",
    "parse_json_records",
    "serialize",
]

FORMATS = ("tsv", "csv", "npz")
#: A text record longer than this is refused (SMS-sized messages to e-mails fit easily).
MAX_TEXT_CHARS = 20_000
#: Declared uncompressed size cap of an npz batch: a small archive can claim gigabytes.
MAX_NPZ_UNCOMPRESSED = 512 * 1024**2
_ZIP = b"PK\x03\x04"


class BatchInputError(ValueError):
    """The batch (or base data) cannot be read as the dataset's schema; ``code`` says which kind of problem."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, eq=False)
class Records:
    """Labelled records in one of the three shapes: texts, a feature matrix, or a tensor stack."""

    format: str
    labels: tuple[str, ...]
    texts: tuple[str, ...] | None = None
    features: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None  # as stored in an npz file, in label-index order

    def __len__(self) -> int:
        return len(self.labels)

    def label_counts(self, class_names: Sequence[str]) -> dict[str, int]:
        """Rows per label, every known class included (zero when absent)."""
        counts = Counter(self.labels)
        return {name: int(counts.get(name, 0)) for name in class_names}

    def subset(self, keep: Sequence[int] | np.ndarray) -> Records:
        """The records at positions ``keep`` (in that order)."""
        index = [int(i) for i in keep]
        return Records(
            format=self.format,
            labels=tuple(self.labels[i] for i in index),
            texts=None if self.texts is None else tuple(self.texts[i] for i in index),
            features=None if self.features is None else self.features[index],
        )

    def record(self, index: int) -> dict[str, Any]:
        """One record as JSON-ready values (for the review page and the API)."""
        out: dict[str, Any] = {"index": index, "label": self.labels[index]}
        if self.texts is not None:
            out["text"] = self.texts[index]
        elif self.features is not None:
            values = self.features[index].ravel()
            out["values"] = [round(float(v), 6) for v in values[:32]]
            out["truncated"] = values.size > 32
        return out


def _decode(data: bytes, what: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BatchInputError(
            "encoding",
            f"{what} is not UTF-8: byte {exc.start} (line {line}) is {data[exc.start : exc.start + 1]!r}. "
            "Re-export the file as UTF-8 and push it again.",
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise BatchInputError(
            "encoding", f"{what} holds a NUL byte on line {line}; it is binary, not text. Send UTF-8 text."
        )
    return text


def _check_label(label: str, class_names: Sequence[str] | None, where: str) -> str:
    label = label.strip()
    if not label:
        raise BatchInputError("schema", f"{where}: the label is empty; every record needs a label.")
    if class_names is not None and label not in class_names:
        raise BatchInputError(
            "label",
            f"{where}: label {label!r} is not one of the dataset's classes {list(class_names)}. Fix the label, "
            "or ask an approver to register the new class in a new base version first.",
        )
    return label


def _check_text(text: str, where: str) -> str:
    if not text.strip():
        raise BatchInputError("schema", f"{where}: the text is empty; drop the record or give it a text.")
    if "\n" in text or "\r" in text:
        raise BatchInputError(
            "schema", f"{where}: the text contains a line break; the dataset holds one message per line."
        )
    if len(text) > MAX_TEXT_CHARS:
        raise BatchInputError(
            "schema", f"{where}: the text has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,} per record."
        )
    return text


def _empty(what: str) -> BatchInputError:
    return BatchInputError("empty", f"{what} holds no records; send at least one labelled record.")


# --- text -------------------------------------------------------------------------------------------


def _parse_tsv(data: bytes, schema: Mapping[str, Any] | None, what: str) -> Records:
    class_names = None if schema is None else schema["class_names"]
    labels: list[str] = []
    texts: list[str] = []
    for number, line in enumerate(_decode(data, what).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if "\t" not in line:
            raise BatchInputError(
                "schema",
                f"{what} line {number} is not 'label<TAB>text'; put the label, a tab, then the text on every line.",
            )
        label, text = line.split("\t", 1)
        labels.append(_check_label(label, class_names, f"{what} line {number}"))
        texts.append(_check_text(text, f"{what} line {number}"))
    if not labels:
        raise _empty(what)
    return Records(format="tsv", labels=tuple(labels), texts=tuple(texts))


# --- tabular ----------------------------------------------------------------------------------------


def _number(cell: Any, where: str, column: str) -> float:
    if isinstance(cell, bool):
        raise BatchInputError("schema", f"{where}, column {column!r}: {cell!r} is a boolean; send a number.")
    if isinstance(cell, (int, float)):
        value = float(cell)
    else:
        text = str(cell).strip()
        if not text:
            raise BatchInputError("schema", f"{where}, column {column!r} is empty; impute the value or drop the row.")
        try:
            value = float(text)
        except ValueError:
            raise BatchInputError(
                "schema", f"{where}, column {column!r} holds {text!r}, which is not a number."
            ) from None
    if not math.isfinite(value):
        raise BatchInputError("schema", f"{where}, column {column!r} is {cell!r}; send finite numbers only.")
    return value


def _parse_csv(data: bytes, schema: Mapping[str, Any] | None, what: str, label_column: str) -> Records:
    rows = csv.reader(io.StringIO(_decode(data, what), newline=""))
    header = next(rows, None)
    if header is None or not any(cell.strip() for cell in header):
        raise _empty(what)
    header = [cell.strip() for cell in header]
    if schema is not None:
        expected = list(schema["columns"])
        if sorted(header) != sorted(expected):
            missing = sorted(set(expected) - set(header))
            extra = sorted(set(header) - set(expected))
            raise BatchInputError(
                "schema",
                f"{what} has the wrong columns (missing {missing}, unexpected {extra}); the dataset's columns "
                f"are {expected}.",
            )
        label_column = schema["label_column"]
    elif label_column not in header:
        raise BatchInputError("schema", f"{what} has no label column {label_column!r}; its columns are {header}.")
    if len(set(header)) != len(header):
        raise BatchInputError("schema", f"{what} repeats a column name; give every column a unique name.")
    class_names = None if schema is None else schema["class_names"]
    order = list(schema["columns"]) if schema is not None else header
    features_at = [header.index(name) for name in order if name != label_column]
    label_at = header.index(label_column)
    labels: list[str] = []
    values: list[list[float]] = []
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{what} line {rows.line_num}"
        if len(row) != len(header):
            raise BatchInputError(
                "schema", f"{where} has {len(row)} fields but the header has {len(header)}; quote cells with commas."
            )
        labels.append(_check_label(row[label_at], class_names, where))
        values.append([_number(row[i], where, header[i]) for i in features_at])
    if not labels:
        raise _empty(what)
    return Records(format="csv", labels=tuple(labels), features=np.asarray(values, dtype=np.float64))


# --- tensors ----------------------------------------------------------------------------------------


def _parse_npz(data: bytes, schema: Mapping[str, Any] | None, what: str) -> Records:
    if not data.startswith(_ZIP):
        raise BatchInputError("format", f"{what} is not an .npz archive; save it with numpy.savez(path, x=..., y=...).")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            declared = sum(info.file_size for info in archive.infolist())
        if declared > MAX_NPZ_UNCOMPRESSED:
            raise BatchInputError(
                "too_large", f"{what} unpacks to {declared:,} bytes; the limit is {MAX_NPZ_UNCOMPRESSED:,}."
            )
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if "x" not in archive.files or "y" not in archive.files:
                raise BatchInputError(
                    "schema", f"{what} holds {sorted(archive.files)} but needs arrays 'x' (inputs) and 'y' (labels)."
                )
            x, y = archive["x"], archive["y"]
            stored = archive["class_names"] if "class_names" in archive.files else None
    except BatchInputError:
        raise
    except ValueError as exc:  # object arrays need pickle, which is never allowed
        raise BatchInputError(
            "format", f"{what} cannot be read without unpickling ({exc}); save plain arrays."
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise BatchInputError("format", f"{what} is not a readable .npz archive ({exc}).") from None
    if x.dtype.kind not in "fiub" or y.dtype.kind not in "iu" or y.ndim != 1:
        raise BatchInputError(
            "schema", f"{what}: x must be numeric and y a 1-D integer array; got x {x.dtype}, y {y.dtype} {y.shape}."
        )
    if x.shape[0] != y.shape[0]:
        raise BatchInputError("schema", f"{what}: x has {x.shape[0]} rows but y has {y.shape[0]} labels.")
    if y.shape[0] == 0:
        raise _empty(what)
    if schema is not None:
        class_names = list(schema["class_names"])
        if list(x.shape[1:]) != list(schema["input_shape"]):
            raise BatchInputError(
                "schema",
                f"{what}: each sample has shape {list(x.shape[1:])}; the dataset's is {schema['input_shape']}.",
            )
    elif stored is not None and stored.dtype.kind == "U" and stored.ndim == 1:
        class_names = [str(name) for name in stored]
    else:
        class_names = [str(i) for i in range(int(y.max()) + 1)]
    bad = np.flatnonzero((y < 0) | (y >= len(class_names)))
    if bad.size:
        raise BatchInputError(
            "label",
            f"{what}: label {int(y[bad[0]])} at row {int(bad[0])} is outside 0..{len(class_names) - 1} "
            f"(classes {class_names}).",
        )
    values = x.astype(np.float64)
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise BatchInputError("schema", f"{what}: row {row} holds NaN or infinite values; send finite numbers.")
    return Records(
        format="npz", labels=tuple(class_names[int(i)] for i in y), features=values, class_names=tuple(class_names)
    )


# --- entry points -----------------------------------------------------------------------------------


def parse_file(
    data: bytes, *, format: str, schema: Mapping[str, Any] | None = None, label_column: str = "", what: str = "the file"
) -> Records:  # noqa: A002
    """Read a file's records; with ``schema`` every record must match it (columns, shape, known labels)."""
    if not data:
        raise _empty(what)
    if format == "tsv":
        return _parse_tsv(data, schema, what)
    if format == "csv":
        return _parse_csv(data, schema, what, label_column)
    if format == "npz":
        return _parse_npz(data, schema, what)
    raise BatchInputError("format", f"Unknown format {format!r}; datasets are one of {', '.join(FORMATS)}.")


def parse_json_records(records: Any, *, schema: Mapping[str, Any]) -> Records:
    """Read JSON records (a list of objects) against the dataset's schema.

    text: ``{"label": "ham", "text": "..."}``; tabular: one key per column (label column included);
    tensor: ``{"label": "3", "x": [[...]]}`` with ``x`` of the dataset's input shape.
    """
    if not isinstance(records, list):
        raise BatchInputError("schema", "records must be a JSON list of objects, one per record.")
    if not records:
        raise _empty("The batch")
    fmt = schema["format"]
    class_names = schema["class_names"]
    expected = {"tsv": {"label", "text"}, "npz": {"label", "x"}}.get(fmt) or set(schema.get("columns", []))
    labels: list[str] = []
    texts: list[str] = []
    values: list[Any] = []
    for number, record in enumerate(records):
        where = f"record {number}"
        if not isinstance(record, dict):
            raise BatchInputError("schema", f"{where} is a {type(record).__name__}; each record is a JSON object.")
        if set(record) != expected:
            missing, extra = sorted(expected - set(record)), sorted(set(record) - expected)
            raise BatchInputError(
                "schema",
                f"{where} has the wrong fields (missing {missing}, unexpected {extra}); use {sorted(expected)}.",
            )
        label_key = "label" if fmt != "csv" else schema["label_column"]
        raw_label = record[label_key]
        if isinstance(raw_label, int) and not isinstance(raw_label, bool) and 0 <= raw_label < len(class_names):
            raw_label = class_names[raw_label]
        if not isinstance(raw_label, str):
            raise BatchInputError("label", f"{where}: the label must be a class name (a string); got {raw_label!r}.")
        labels.append(_check_label(raw_label, class_names, where))
        if fmt == "tsv":
            if not isinstance(record["text"], str):
                raise BatchInputError("schema", f"{where}: text must be a string; got {type(record['text']).__name__}.")
            texts.append(_check_text(record["text"], where))
        elif fmt == "csv":
            values.append([_number(record[c], where, c) for c in schema["columns"] if c != schema["label_column"]])
        else:
            try:
                array = np.asarray(record["x"], dtype=np.float64)
            except (TypeError, ValueError):
                raise BatchInputError("schema", f"{where}: x must be a nested list of numbers.") from None
            if list(array.shape) != list(schema["input_shape"]):
                raise BatchInputError(
                    "schema", f"{where}: x has shape {list(array.shape)}; the dataset's is {schema['input_shape']}."
                )
            if not np.isfinite(array).all():
                raise BatchInputError("schema", f"{where}: x holds NaN or infinite values; send finite numbers.")
            values.append(array)
    if fmt == "tsv":
        return Records(format="tsv", labels=tuple(labels), texts=tuple(texts))
    return Records(format=fmt, labels=tuple(labels), features=np.asarray(values, dtype=np.float64))


def infer_schema(records: Records, *, format: str, label_column: str = "", columns: Sequence[str] = ()) -> dict:  # noqa: A002
    """The schema a base version defines (class names sorted, or as stored for npz)."""
    names = list(records.class_names) if records.class_names else sorted(set(records.labels))
    if format == "tsv":
        return {"format": "tsv", "class_names": names}
    if format == "csv":
        return {"format": "csv", "columns": list(columns), "label_column": label_column, "class_names": names}
    return {"format": "npz", "input_shape": list(records.features.shape[1:]), "class_names": names}


def csv_header(data: bytes) -> list[str]:
    """The header row of a CSV file (to record the base's column order)."""
    first = _decode(data, "the file").split("\n", 1)[0]
    return [cell.strip() for cell in next(csv.reader([first]))]


def merge_records(parts: Sequence[Records]) -> Records:
    """The records of ``parts`` one after the other."""
    fmt = parts[0].format
    labels = tuple(label for part in parts for label in part.labels)
    if fmt == "tsv":
        return Records(format=fmt, labels=labels, texts=tuple(t for part in parts for t in part.texts or ()))
    return Records(format=fmt, labels=labels, features=np.concatenate([p.features for p in parts], axis=0))


def serialize(records: Records, schema: Mapping[str, Any]) -> bytes:
    """The canonical file of ``records`` (TSV, CSV with the schema's column order, or npz), deterministic."""
    if records.format == "tsv":
        return "".join(
            f"{label}\t{text}\n" for label, text in zip(records.labels, records.texts or (), strict=True)
        ).encode()
    if records.format == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        columns = list(schema["columns"])
        writer.writerow(columns)
        features = [c for c in columns if c != schema["label_column"]]
        label_at = columns.index(schema["label_column"])
        for label, row in zip(records.labels, records.features, strict=True):
            cells = [repr(float(v)) for v in row]
            cells.insert(label_at, label)
            assert len(cells) == len(features) + 1
            writer.writerow(cells)
        return buffer.getvalue().encode()
    class_names = list(schema["class_names"])
    index = {name: i for i, name in enumerate(class_names)}
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x=records.features.astype(np.float32),
        y=np.asarray([index[label] for label in records.labels], dtype=np.int64),
        class_names=np.asarray(class_names),
    )
    return buffer.getvalue()


def sha256_hex(data: bytes) -> str:
    """SHA-256 of bytes, lowercase hex."""
    return hashlib.sha256(data).hexdigest()
