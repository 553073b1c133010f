"""Resource attacks and broken files are rejected with a reason instead of crashing or exhausting the worker."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from numpy.lib import format as npy_format

from evaluations.engine.scanning import Code, ScanConfig, Verdict, scan_bytes, scan_path
from tests.evaluations.engine.scanning.payloads import safetensors_bytes, torch_zip

_MIB = 1024 * 1024


def reasons(report) -> str:
    return " | ".join(f.message for f in report.findings)


def zip_with(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_zip_bomb_member_beyond_the_ratio_cap_is_rejected() -> None:
    report = scan_bytes(zip_with({"archive/data.pkl": bytes(4 * _MIB)}), name="bomb.pt")

    assert report.verdict is Verdict.REJECTED
    assert report.findings[0].code is Code.RESOURCE_LIMIT
    assert "max_compression_ratio" in reasons(report) and "zip bomb" in reasons(report)


def test_zip_whose_members_expand_past_the_total_cap_is_rejected() -> None:
    data = zip_with({f"archive/data/{i}": bytes(300 * 1024) for i in range(4)})

    report = scan_bytes(data, name="big.pt", config=ScanConfig(max_total_uncompressed_bytes=_MIB))

    assert report.verdict is Verdict.REJECTED
    assert "max_total_uncompressed_bytes" in reasons(report)


def test_zip_with_too_many_members_is_rejected() -> None:
    data = zip_with({f"m{i}.npy": b"" for i in range(20)})

    report = scan_bytes(data, name="many.npz", config=ScanConfig(max_members=10))

    assert report.verdict is Verdict.REJECTED
    assert "max_members" in reasons(report)


def test_zips_nested_past_the_depth_cap_are_rejected() -> None:
    data = torch_zip(b"\x80\x02}.")
    for level in range(4):
        data = zip_with({f"level{level}.zip": data})

    report = scan_bytes(data, name="nested.zip", config=ScanConfig(max_nesting_depth=2))

    assert report.verdict is Verdict.REJECTED
    assert "max_nesting_depth" in reasons(report)


def test_decompression_bomb_in_a_joblib_stream_is_rejected() -> None:
    data = zlib.compress(bytes(4 * _MIB), 9)

    report = scan_bytes(data, name="model.joblib", config=ScanConfig(max_decompressed_bytes=_MIB))

    assert report.verdict is Verdict.REJECTED
    assert "max_decompressed_bytes" in reasons(report)


def test_unknown_compression_is_rejected_with_advice() -> None:
    report = scan_bytes(b"\x04\x22\x4d\x18" + bytes(32), name="model.joblib")

    assert report.verdict is Verdict.REJECTED
    assert report.findings[0].code is Code.UNSUPPORTED_COMPRESSION
    assert "compress='zlib'" in report.findings[0].message


def test_safetensors_header_length_beyond_file_size_is_rejected() -> None:
    data = safetensors_bytes(
        {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(4), declared_len=10_000
    )

    report = scan_bytes(data, name="w.safetensors")

    assert report.format == "safetensors"
    assert report.verdict is Verdict.REJECTED
    assert "runs past the end" in reasons(report)


def test_safetensors_header_length_beyond_the_cap_is_rejected() -> None:
    data = safetensors_bytes({}, b"", declared_len=2**40)

    report = scan_bytes(data, name="w.safetensors")

    assert report.verdict is Verdict.REJECTED
    assert "max_safetensors_header_bytes" in reasons(report)


def test_safetensors_overlapping_offsets_are_rejected() -> None:
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    }

    report = scan_bytes(safetensors_bytes(header, bytes(12)), name="w.safetensors")

    assert report.verdict is Verdict.REJECTED
    assert "overlaps" in reasons(report)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, "needs 12"),
        ({"a": {"dtype": "EVIL", "shape": [2], "data_offsets": [0, 8]}}, "unknown dtype"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, "invalid shape"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, "gap"),
        ({"__metadata__": {"k": 1}}, "__metadata__"),
    ],
)
def test_safetensors_header_errors_are_rejected(header: dict, expected: str) -> None:
    report = scan_bytes(safetensors_bytes(header, bytes(8)), name="w.safetensors")

    assert report.verdict is Verdict.REJECTED
    assert expected in reasons(report)


def test_safetensors_duplicate_tensor_names_are_rejected() -> None:
    raw = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'

    report = scan_bytes(struct.pack("<Q", len(raw)) + raw + b"\x00", name="w.safetensors")

    assert report.verdict is Verdict.REJECTED
    assert "duplicate key" in reasons(report)


def test_npy_header_claiming_more_data_than_the_file_holds_is_rejected() -> None:
    fp = io.BytesIO()
    npy_format.write_array_header_1_0(fp, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
    fp.write(bytes(32))

    report = scan_bytes(fp.getvalue(), name="a.npy")

    assert report.verdict is Verdict.REJECTED
    assert "only 32 bytes follow" in reasons(report)


def test_empty_file_is_rejected_with_a_clear_reason(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"")

    report = scan_path(path)

    assert report.verdict is Verdict.REJECTED
    assert report.findings[0].code is Code.EMPTY_FILE
    assert "empty" in report.findings[0].message


def test_random_bytes_are_an_unknown_format() -> None:
    report = scan_bytes(b"hello, this is not a model", name="model.bin")

    assert report.verdict is Verdict.REJECTED
    assert report.findings[0].code is Code.UNKNOWN_FORMAT
    assert "safetensors" in report.findings[0].message


def test_corrupt_zip_is_rejected() -> None:
    report = scan_bytes(b"PK\x03\x04" + bytes(40), name="model.pt")

    assert report.verdict is Verdict.REJECTED
    assert report.findings[0].code is Code.MALFORMED_ARCHIVE


def test_unrecognised_zip_layout_is_rejected_even_without_pickles() -> None:
    report = scan_bytes(zip_with({"config.json": b"{}", "weights.h5": b"\x89HDF\r\n\x1a\n"}), name="model.keras")

    assert report.verdict is Verdict.REJECTED
    assert Code.UNSUPPORTED_FORMAT in {f.code for f in report.findings}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_members": 0},
        {"max_compression_ratio": 0.5},
        {"max_pickle_bytes": -1},
        {"extra_safe_globals": frozenset({"nodot"})},
    ],
)
def test_scan_config_rejects_invalid_limits(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="ScanConfig"):
        ScanConfig(**kwargs)
