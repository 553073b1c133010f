"""Reading batches: every kind of bad input is refused with a code and a message that says how to fix it."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from evaluations.ingestion.parsing import BatchInputError, parse_file, parse_json_records, serialize

TEXT = {"format": "tsv", "class_names": ["ham", "spam"]}
TABLE = {"format": "csv", "columns": ["a", "label", "b"], "label_column": "label", "class_names": ["no", "yes"]}
TENSOR = {"format": "npz", "input_shape": [2, 2], "class_names": ["0", "1", "2"]}


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "fmt", "schema", "code", "words"),
    [
        (b"", "tsv", TEXT, "empty", "no records"),
        (b"\n\n", "tsv", TEXT, "empty", "no records"),
        (b"ham\thello\n\xff\xfe bad\n", "tsv", TEXT, "encoding", "not UTF-8"),
        (b"ham\thello\x00\n", "tsv", TEXT, "encoding", "NUL"),
        (b"ham hello without a tab\n", "tsv", TEXT, "schema", "label<TAB>text"),
        (b"eggs\thello\n", "tsv", TEXT, "label", "not one of the dataset's classes"),
        (b"ham\t   \n", "tsv", TEXT, "schema", "text is empty"),
        (b"a,label\n1,no\n", "csv", TABLE, "schema", "wrong columns"),
        (b"a,label,b\n1,no,x\n", "csv", TABLE, "schema", "not a number"),
        (b"a,label,b\n1,maybe,2\n", "csv", TABLE, "label", "not one of"),
        (b"a,label,b\n1,no,nan\n", "csv", TABLE, "schema", "finite"),
        (b"not a zip", "npz", TENSOR, "format", "not an .npz"),
        (_npz(x=np.zeros((2, 3, 3)), y=np.zeros(2, dtype=int)), "npz", TENSOR, "schema", "shape"),
        (_npz(x=np.zeros((2, 2, 2)), y=np.array([0, 5])), "npz", TENSOR, "label", "outside"),
        (_npz(x=np.zeros((2, 2, 2))), "npz", TENSOR, "schema", "needs arrays"),
    ],
)
def test_bad_files_are_refused_with_a_code_and_a_fix(data, fmt, schema, code, words):
    with pytest.raises(BatchInputError) as caught:
        parse_file(data, format=fmt, schema=schema)
    assert caught.value.code == code
    assert words in caught.value.message


def test_an_npz_with_a_pickled_object_array_is_refused_without_unpickling(tmp_path):
    canary = tmp_path / "ran"
    payload = np.array([pickle.dumps(str(canary))], dtype=object)
    data = _npz(x=payload, y=np.array([0]))
    with pytest.raises(BatchInputError) as caught:
        parse_file(data, format="npz", schema=TENSOR)
    assert caught.value.code == "format" and not canary.exists()


@pytest.mark.parametrize(
    ("records", "code"),
    [
        ([], "empty"),
        ({"label": "ham"}, "schema"),
        (["ham\thello"], "schema"),
        ([{"label": "ham"}], "schema"),
        ([{"label": "ham", "text": "hi", "extra": 1}], "schema"),
        ([{"label": "eggs", "text": "hi"}], "label"),
        ([{"label": "ham", "text": 5}], "schema"),
        ([{"label": "ham", "text": "two\nlines"}], "schema"),
    ],
)
def test_bad_json_records_are_refused(records, code):
    with pytest.raises(BatchInputError) as caught:
        parse_json_records(records, schema=TEXT)
    assert caught.value.code == code


def test_csv_columns_may_come_in_any_order_and_are_written_back_in_the_schemas_order():
    records = parse_file(b"b,a,label\n2,1,yes\n4,3,no\n", format="csv", schema=TABLE)
    assert records.features.tolist() == [[1.0, 2.0], [3.0, 4.0]] and records.labels == ("yes", "no")
    assert serialize(records, TABLE).decode().splitlines() == ["a,label,b", "1.0,yes,2.0", "3.0,no,4.0"]


def test_tensor_records_round_trip_through_npz():
    records = parse_json_records(
        [{"label": "2", "x": [[0, 1], [2, 3]]}, {"label": 0, "x": [[1, 1], [1, 1]]}], schema=TENSOR
    )
    again = parse_file(serialize(records, TENSOR), format="npz", schema=TENSOR)
    assert again.labels == ("2", "0") and np.array_equal(again.features, records.features)
