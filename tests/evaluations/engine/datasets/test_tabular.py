"""The tabular CSV loader and min-max scaling."""

from __future__ import annotations

import numpy as np
import pytest

from evaluations.engine.common import EmptyDatasetError, LabelOutOfRangeError, NonFiniteInputError, sha256_file
from evaluations.engine.datasets import (
    DatasetFormatError,
    MissingColumnError,
    NonNumericValueError,
    load_tabular_csv,
    minmax_scale,
)


def _write(tmp_path, text: str):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_round_trips_with_named_labels(tmp_path) -> None:
    path = _write(tmp_path, "age,income,label\n30,1000,no\n45,2500.5,yes\n\n22,0,no\n")
    dataset = load_tabular_csv(path, label_column="label")
    np.testing.assert_array_equal(dataset.x, np.array([[30, 1000], [45, 2500.5], [22, 0]], np.float32))
    np.testing.assert_array_equal(dataset.y, [0, 1, 0])
    assert dataset.class_names == ("no", "yes")
    assert dataset.bounds == (0.0, 2500.5)
    assert dataset.source_sha256 == sha256_file(path)
    assert dataset.provenance["features"] == ["age", "income"]


def test_integer_labels_feature_columns_and_given_bounds(tmp_path) -> None:
    path = _write(tmp_path, "a,b,c,target\n0.1,0.2,9,1\n0.3,0.4,9,0\n")
    dataset = load_tabular_csv(path, label_column="target", feature_columns=["b", "a"], bounds=(0.0, 1.0))
    np.testing.assert_array_equal(dataset.x, np.array([[0.2, 0.1], [0.4, 0.3]], np.float32))
    assert dataset.class_names == ("0", "1") and dataset.bounds == (0.0, 1.0)


def test_a_non_numeric_cell_names_line_and_column(tmp_path) -> None:
    path = _write(tmp_path, "a,label\n1,0\nred,1\n")
    with pytest.raises(NonNumericValueError, match=r"line 3, column 'a' holds 'red'"):
        load_tabular_csv(path, label_column="label")


@pytest.mark.parametrize("cell", ["nan", "", "inf"])
def test_missing_and_non_finite_cells_are_refused(tmp_path, cell) -> None:
    path = _write(tmp_path, f"a,label\n1,0\n{cell},1\n")
    with pytest.raises(NonFiniteInputError, match="line 3"):
        load_tabular_csv(path, label_column="label")


def test_a_missing_label_column_lists_the_columns(tmp_path) -> None:
    path = _write(tmp_path, "a,b\n1,0\n")
    with pytest.raises(MissingColumnError, match=r"no label column 'label'; its columns are \['a', 'b'\]"):
        load_tabular_csv(path, label_column="label")


def test_empty_files_and_header_only_files_are_empty_datasets(tmp_path) -> None:
    with pytest.raises(EmptyDatasetError, match="is empty"):
        load_tabular_csv(_write(tmp_path, ""), label_column="label")
    with pytest.raises(EmptyDatasetError, match="no data rows"):
        load_tabular_csv(_write(tmp_path, "a,label\n"), label_column="label")


def test_labels_outside_the_class_names_and_negative_labels_are_refused(tmp_path) -> None:
    path = _write(tmp_path, "a,label\n1,0\n2,7\n")
    with pytest.raises(LabelOutOfRangeError, match="line 3: label '7'"):
        load_tabular_csv(path, label_column="label", class_names=["neg", "pos"])
    with pytest.raises(LabelOutOfRangeError, match="negative"):
        load_tabular_csv(_write(tmp_path, "a,label\n1,0\n2,-1\n"), label_column="label")


def test_a_ragged_row_is_refused(tmp_path) -> None:
    with pytest.raises(DatasetFormatError, match="line 3 has 3 fields"):
        load_tabular_csv(_write(tmp_path, "a,label\n1,0\n2,1,3\n"), label_column="label")


def test_minmax_scaling_uses_train_statistics_and_clips_the_rest(tmp_path) -> None:
    train = load_tabular_csv(_write(tmp_path, "a,b,label\n0,5,0\n10,5,1\n"), label_column="label")
    test = load_tabular_csv(_write(tmp_path, "a,b,label\n5,5,0\n20,5,1\n"), label_column="label")
    train_s, test_s = minmax_scale(train, test)
    np.testing.assert_allclose(train_s.x, [[0, 0], [1, 0]])
    np.testing.assert_allclose(test_s.x, [[0.5, 0], [1, 0]])
    assert train_s.bounds == test_s.bounds == (0.0, 1.0)
    assert test_s.provenance["minmax"]["clipped_values"] == 1
    assert test_s.provenance["minmax"]["fitted_on"] == train.sha256
