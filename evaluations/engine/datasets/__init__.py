"""Datasets for the engine: validated arrays with hashes and provenance, file loaders, reference workloads.

Every loader returns a :class:`Dataset` (float32 inputs, or int64 token ids for text; int64 labels;
class names; input bounds; SHA-256 of the source bytes and of the arrays). Loaders never unpickle:
``.npz`` files are read with ``allow_pickle=False`` and images only through Pillow's PNG and JPEG decoders.
"""

from __future__ import annotations

from evaluations.engine.datasets.base import (
    Dataset,
    DatasetFormatError,
    DatasetSplit,
    MissingColumnError,
    NonNumericValueError,
    ObjectArrayError,
    make_dataset,
    stratified_split,
)
from evaluations.engine.datasets.images import load_image_folder
from evaluations.engine.datasets.npz import load_npz
from evaluations.engine.datasets.reference import REFERENCE_DATASETS, load_reference
from evaluations.engine.datasets.tabular import load_tabular_csv, minmax_scale
from evaluations.engine.datasets.text import PAD_ID, UNK_ID, Vocabulary, encode_texts, load_text_csv, tokenize

__all__ = [
    "PAD_ID",
    "REFERENCE_DATASETS",
    "UNK_ID",
    "Dataset",
    "DatasetFormatError",
    "DatasetSplit",
    "MissingColumnError",
    "NonNumericValueError",
    "ObjectArrayError",
    "Vocabulary",
    "encode_texts",
    "load_image_folder",
    "load_npz",
    "load_reference",
    "load_tabular_csv",
    "load_text_csv",
    "make_dataset",
    "minmax_scale",
    "stratified_split",
    "tokenize",
]
