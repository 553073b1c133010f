"""The Dataset container: coercion, validation, hashing, subsets and splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluations.engine.common import EngineInputError, InvalidConfigError, LabelOutOfRangeError, sha256_arrays
from evaluations.engine.datasets import DatasetFormatError, make_dataset, stratified_split


def test_make_dataset_converts_dtypes_and_hashes_the_arrays() -> None:
    dataset = make_dataset(np.arange(12, dtype=np.int32).reshape(6, 2), [0, 1, 0, 1, 0, 1.0])
    assert dataset.x.dtype == np.float32 and dataset.y.dtype == np.int64
    assert dataset.sha256 == sha256_arrays(dataset.x, dataset.y)
    assert dataset.bounds == (0.0, 11.0) and dataset.class_names == ("0", "1")
    assert json.loads(json.dumps(dataset.to_dict()))["class_counts"] == [3, 3]


def test_non_numeric_inputs_labels_and_bad_class_names_are_refused() -> None:
    with pytest.raises(DatasetFormatError, match="must hold numbers"):
        make_dataset(np.array([["a"], ["b"]]), [0, 1])
    with pytest.raises(LabelOutOfRangeError, match="integer class indices"):
        make_dataset(np.zeros((2, 1)), ["cat", "dog"])
    with pytest.raises(EngineInputError, match="unique"):
        make_dataset(np.zeros((2, 1)), [0, 1], class_names=["a", "a"])
    with pytest.raises(EngineInputError, match="lo < hi"):
        make_dataset(np.zeros((2, 1)), [0, 1], bounds=(1.0, 0.0))


def test_a_subset_keeps_the_parent_provenance_and_gets_its_own_hash() -> None:
    dataset = make_dataset(np.arange(8.0).reshape(4, 2), [0, 1, 0, 1], provenance={"loader": "test"})
    part = dataset.subset([3, 0], split="custom")
    np.testing.assert_array_equal(part.y, [1, 0])
    assert part.provenance == {"loader": "test", "split": "custom"}
    assert part.sha256 != dataset.sha256 and part.bounds == dataset.bounds


def test_a_stratified_split_keeps_class_shares_and_refuses_impossible_sizes() -> None:
    dataset = make_dataset(np.arange(20.0).reshape(10, 2), [0] * 6 + [1] * 4)
    train, test = stratified_split(dataset, test_size=5, seed=0)
    assert (len(train), len(test)) == (5, 5)
    assert sorted(np.bincount(test.y).tolist()) == [2, 3]
    assert test.provenance["split"]["part"] == "test"
    with pytest.raises(InvalidConfigError, match="test_size=20"):
        stratified_split(dataset, test_size=20, seed=0)
