"""Text classification data: a deterministic tokenizer, a vocabulary, and ``label<TAB>text`` files.

Token ids follow the ``text_embeddingbag`` architecture's input convention: an int64 array
``(N, max_length)``, right-padded with 0 (``PAD_ID``, excluded from the mean embedding); 1
(``UNK_ID``) stands for words outside the vocabulary; the model's ``vocab_size`` is ``len(vocabulary)``.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

from evaluations.engine.common import EmptyDatasetError, InvalidConfigError, LabelOutOfRangeError, sha256_bytes
from evaluations.engine.datasets.base import Dataset, DatasetFormatError, read_source
from evaluations.engine.datasets.tabular import decode_text

__all__ = [
    "PAD_ID",
    "PAD_TOKEN",
    "TOKEN_PATTERN",
    "UNK_ID",
    "UNK_TOKEN",
    "Vocabulary",
    "encode_texts",
    "load_text_csv",
    "parse_labelled_texts",
    "text_dataset",
    "tokenize",
]

PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

#: A word: letters or digits (any script), optionally joined by apostrophes ("don't", "o'clock").
TOKEN_PATTERN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased words of ``text`` (punctuation, underscores and whitespace separate words)."""
    return TOKEN_PATTERN.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Token strings by id: ``tokens[0]`` is ``<pad>``, ``tokens[1]`` is ``<unk>``, then words by frequency."""

    tokens: tuple[str, ...]
    min_frequency: int = 1
    max_size: int | None = None
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tokens = tuple(self.tokens)
        if tokens[:2] != (PAD_TOKEN, UNK_TOKEN):
            raise InvalidConfigError(f"A vocabulary starts with {PAD_TOKEN!r} and {UNK_TOKEN!r}; got {tokens[:2]}.")
        if len(set(tokens)) != len(tokens):
            raise InvalidConfigError("Vocabulary tokens must be unique.")
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "_index", {token: i for i, token in enumerate(tokens)})

    @classmethod
    def build(cls, texts: Iterable[str], *, min_frequency: int = 1, max_size: int | None = None) -> Vocabulary:
        """Words seen at least ``min_frequency`` times, most frequent first (ties alphabetical).

        ``max_size`` caps the vocabulary including the two special tokens (so at least 3).
        """
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
            raise InvalidConfigError(f"min_frequency must be an integer >= 1; got {min_frequency!r}.")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 3):
            raise InvalidConfigError(
                f"max_size must be None or an integer >= 3 (two special tokens); got {max_size!r}."
            )
        counts = Counter(token for text in texts for token in tokenize(text))
        words = sorted((w for w, n in counts.items() if n >= min_frequency), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max_size - 2]
        return cls((PAD_TOKEN, UNK_TOKEN, *words), min_frequency=min_frequency, max_size=max_size)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (unknown words become ``UNK_ID``), without padding."""
        return [self._index.get(token, UNK_ID) for token in tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Space-joined tokens of ``ids``, padding dropped."""
        return " ".join(self.tokens[i] for i in ids if i != PAD_ID)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` rebuilds it to encode new texts the same way."""
        return {"tokens": list(self.tokens), "min_frequency": self.min_frequency, "max_size": self.max_size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["tokens"]), min_frequency=data["min_frequency"], max_size=data["max_size"])


def encode_texts(texts: Sequence[str], vocabulary: Vocabulary, *, max_length: int) -> np.ndarray:
    """Token ids ``(N, max_length)`` int64: each text truncated to ``max_length`` tokens, right-padded with 0."""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise InvalidConfigError(f"max_length must be an integer >= 1; got {max_length!r}.")
    out = np.full((len(texts), max_length), PAD_ID, dtype=np.int64)
    for row, text in enumerate(texts):
        ids = vocabulary.encode(text)[:max_length]
        out[row, : len(ids)] = ids
    return out


def text_dataset(
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    *,
    class_names: Sequence[str],
    vocabulary: Vocabulary,
    max_length: int,
    source: str,
    source_sha256: str | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Dataset:
    """A text :class:`Dataset` of token ids ``(N, max_length)``, keeping the raw texts alongside."""
    x = encode_texts(texts, vocabulary, max_length=max_length)
    return Dataset(
        x=x,
        y=np.asarray(labels, dtype=np.int64),
        class_names=tuple(class_names),
        bounds=(0.0, float(len(vocabulary) - 1)),
        source=source,
        source_sha256=source_sha256,
        provenance={
            **dict(provenance or {}),
            "tokenizer": {"pattern": TOKEN_PATTERN.pattern, "lowercase": True},
            "max_length": max_length,
            "vocabulary_size": len(vocabulary),
            "unknown_token_rate": float(np.mean(x[x != PAD_ID] == UNK_ID)) if (x != PAD_ID).any() else 0.0,
        },
        vocabulary=vocabulary,
        texts=tuple(texts),
    )


def parse_labelled_texts(text: str, name: str, *, delimiter: str = "\t") -> tuple[list[str], list[str]]:
    """``(labels, texts)`` from ``label<delimiter>text`` lines; blank lines are skipped.

    With a tab, each line splits at its first tab and the rest is the text verbatim (quotes included);
    with another delimiter, lines are read as CSV (quote texts that contain the delimiter).
    """
    labels: list[str] = []
    texts: list[str] = []
    if delimiter == "\t":
        rows: Iterable[tuple[int, list[str]]] = (
            (number, line.split("\t", 1)) for number, line in enumerate(text.splitlines(), start=1)
        )
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows = ((reader.line_num, row) for row in reader)
    for number, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2 or not row[0].strip():
            raise DatasetFormatError(
                f"{name} line {number} is not 'label{'<TAB>' if delimiter == chr(9) else delimiter}text'; "
                "put the label first, then the text, on every line."
            )
        labels.append(row[0].strip())
        texts.append(row[1])
    if not labels:
        raise EmptyDatasetError(f"{name} has no labelled lines; add lines of the form 'label<TAB>text'.")
    return labels, texts


def label_indices(
    labels: Sequence[str], class_names: Sequence[str] | None, name: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Label strings as indices into ``class_names`` (default: the sorted unique labels)."""
    names = tuple(sorted(set(labels))) if class_names is None else tuple(class_names)
    index = {label: i for i, label in enumerate(names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise LabelOutOfRangeError(
            f"{name} has labels {unknown} that are not among the class names {list(names)}; fix the labels "
            "or pass every class name."
        )
    return np.asarray([index[label] for label in labels], dtype=np.int64), names


def load_text_csv(
    path: str | PathLike[str],
    *,
    delimiter: str = "\t",
    class_names: Sequence[str] | None = None,
    vocabulary: Vocabulary | None = None,
    min_frequency: int = 1,
    max_vocab: int | None = None,
    max_length: int | None = None,
) -> Dataset:
    """Load ``label<TAB>text`` lines (or ``label,text`` CSV with ``delimiter=','``) as token ids.

    Without ``vocabulary``, one is built from this file (``min_frequency``, ``max_vocab``); to encode a
    test file like its train file, pass the train set's ``vocabulary`` and ``max_length``. ``max_length``
    defaults to the longest text's token count. ``class_names`` defaults to the sorted unique labels.
    """
    path, data = read_source(path, "text")
    labels, texts = parse_labelled_texts(decode_text(data, path.name), path.name, delimiter=delimiter)
    y, names = label_indices(labels, class_names, path.name)
    if vocabulary is None:
        vocabulary = Vocabulary.build(texts, min_frequency=min_frequency, max_size=max_vocab)
    if max_length is None:
        max_length = max(1, max(len(tokenize(text)) for text in texts))
    return text_dataset(
        texts,
        y,
        class_names=names,
        vocabulary=vocabulary,
        max_length=max_length,
        source=f"text:{path.name}",
        source_sha256=sha256_bytes(data),
        provenance={"loader": "text_csv", "file": path.name, "delimiter": delimiter},
    )
