"""The .npz loader: round trip, hashes, and refusal of object arrays and malformed files."""

from __future__ import annotations

import numpy as np
import pytest

from evaluations.engine.common import (
    EmptyDatasetError,
    InputOutOfBoundsError,
    LabelOutOfRangeError,
    NonFiniteInputError,
    ShapeMismatchError,
    sha256_arrays,
    sha256_file,
)
from evaluations.engine.datasets import DatasetFormatError, ObjectArrayError, load_npz


def _arrays(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 4, 4)).astype(np.float32), np.arange(n) % 3


def test_an_npz_file_round_trips_with_its_hashes(tmp_path) -> None:
    x, y = _arrays()
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=y, class_names=np.array(["cat", "dog", "eel"]))
    dataset = load_npz(path, bounds=(0.0, 1.0))
    np.testing.assert_array_equal(dataset.x, x)
    np.testing.assert_array_equal(dataset.y, y)
    assert dataset.x.dtype == np.float32 and dataset.y.dtype == np.int64
    assert dataset.class_names == ("cat", "dog", "eel")
    assert dataset.input_shape == (1, 4, 4) and dataset.size == 12 and dataset.bounds == (0.0, 1.0)
    assert dataset.source_sha256 == sha256_file(path)
    assert dataset.sha256 == sha256_arrays(x, y.astype(np.int64))
    assert dataset.to_dict()["class_counts"] == [4, 4, 4]


def test_dataset_arrays_are_read_only(tmp_path) -> None:
    x, y = _arrays()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    dataset = load_npz(tmp_path / "data.npz")
    with pytest.raises(ValueError, match="read-only"):
        dataset.x[0] = 0


def test_bounds_default_to_the_data_range_and_class_names_to_indices(tmp_path) -> None:
    x, y = _arrays()
    np.savez_compressed(tmp_path / "data.npz", x=x * 4, y=y)
    dataset = load_npz(tmp_path / "data.npz")
    assert dataset.bounds == (float(dataset.x.min()), float(dataset.x.max()))
    assert dataset.class_names == ("0", "1", "2")


def test_an_object_array_is_refused_without_unpickling(tmp_path) -> None:
    x, y = _arrays()
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}] * len(y), dtype=object), y=y)
    with pytest.raises(ObjectArrayError, match="object array"):
        load_npz(path)


def test_a_file_without_x_and_y_says_which_arrays_it_needs(tmp_path) -> None:
    np.savez(tmp_path / "data.npz", inputs=np.zeros((2, 2)))
    with pytest.raises(DatasetFormatError, match="needs 'x'"):
        load_npz(tmp_path / "data.npz")


def test_a_non_npz_file_and_a_missing_file_are_refused(tmp_path) -> None:
    (tmp_path / "data.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetFormatError, match="np.savez"):
        load_npz(tmp_path / "data.npz")
    with pytest.raises(DatasetFormatError, match="No npz file"):
        load_npz(tmp_path / "missing.npz")


def test_an_archive_claiming_too_many_bytes_is_refused_before_decompression(tmp_path) -> None:
    x, y = _arrays()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    with pytest.raises(DatasetFormatError, match="limit"):
        load_npz(tmp_path / "data.npz", max_bytes=100)


@pytest.mark.parametrize(
    ("x", "y", "error", "message"),
    [
        (np.zeros((0, 3), np.float32), np.zeros(0, np.int64), EmptyDatasetError, "no samples"),
        (np.array([[np.nan, 1.0], [0.0, 1.0]]), np.array([0, 1]), NonFiniteInputError, "NaN"),
        (np.zeros((2, 3)), np.array([0, 5]), LabelOutOfRangeError, "from 0 to 5"),
        (np.zeros((2, 3)), np.array([-1, 1]), LabelOutOfRangeError, "from -1 to 1"),
        (np.zeros((2, 3)), np.array([0.0, 1.5]), LabelOutOfRangeError, "non-integer"),
        (np.zeros((3, 3)), np.array([0, 1]), ShapeMismatchError, "one label per sample"),
    ],
)
def test_bad_arrays_raise_named_errors(tmp_path, x, y, error, message) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=y)
    with pytest.raises(error, match=message):
        load_npz(path, class_names=["a", "b", "c"])


def test_data_outside_declared_bounds_is_refused(tmp_path) -> None:
    x, y = _arrays()
    np.savez(tmp_path / "data.npz", x=x * 2, y=y)
    with pytest.raises(InputOutOfBoundsError, match="declared bounds"):
        load_npz(tmp_path / "data.npz", bounds=(0.0, 1.0))
