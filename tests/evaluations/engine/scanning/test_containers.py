"""Malicious pickles hidden inside containers: torch zips, joblib, npy/npz, skops, nested archives."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path

import joblib
import numpy as np
import pytest

from evaluations.engine.scanning import Code, Severity, Verdict, scan_bytes, scan_path
from tests.evaluations.engine.scanning.payloads import Exploit, malicious_pickle, torch_zip, touch_command


def test_malicious_data_pkl_in_a_torch_zip_is_critical_and_located(canary: Path) -> None:
    report = scan_bytes(torch_zip(malicious_pickle(canary, protocol=2)), name="model.pt")

    assert report.format == "torch"
    assert report.verdict is Verdict.MALICIOUS
    finding = report.findings[0]
    assert finding.member == "archive/data.pkl"
    assert finding.global_name == "posix.system" or finding.name == "system"


def test_malicious_pickle_in_an_unnamed_zip_member_is_found_by_sniffing(canary: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"ok": 1}, protocol=2))
        zf.writestr("archive/extra", malicious_pickle(canary, protocol=4))

    report = scan_bytes(buffer.getvalue(), name="model.pt")

    assert report.verdict is Verdict.MALICIOUS
    assert report.findings[0].member == "archive/extra"


def test_every_copy_of_a_duplicated_member_is_scanned(canary: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("archive/data.pkl", malicious_pickle(canary, protocol=2))
        zf.writestr("archive/data.pkl", pickle.dumps({"ok": 1}, protocol=2))

    report = scan_bytes(buffer.getvalue(), name="model.pt")

    assert report.verdict is Verdict.MALICIOUS
    assert Code.DUPLICATE_MEMBER in {f.code for f in report.findings}


@pytest.mark.parametrize("method", ["zlib", "gzip", "bz2", "xz", "lzma"])
def test_malicious_object_in_a_compressed_joblib_file_is_critical(method: str, tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump({"coef": np.arange(4.0), "hook": Exploit(touch_command(canary))}, path, compress=(method, 3))

    report = scan_path(path)

    assert report.verdict is Verdict.MALICIOUS
    assert report.format == f"joblib+{method}"


def test_raw_zlib_compressed_pickle_is_decompressed_and_scanned(canary: Path) -> None:
    report = scan_bytes(zlib.compress(malicious_pickle(canary)), name="model.joblib")

    assert report.verdict is Verdict.MALICIOUS
    assert report.findings[0].member == "<zlib>"


def test_malicious_object_after_joblib_array_bytes_is_found(tmp_path: Path, canary: Path) -> None:
    # joblib writes raw array bytes inside the pickle stream; the scanner must step over them to see what follows.
    path = tmp_path / "model.joblib"
    joblib.dump([np.arange(1000, dtype=np.float32), Exploit(touch_command(canary))], path)

    report = scan_path(path)

    assert report.format == "joblib"
    assert report.verdict is Verdict.MALICIOUS


def test_malicious_object_inside_a_joblib_object_array_is_found(tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(np.array([1, Exploit(touch_command(canary))], dtype=object), path)

    report = scan_path(path)

    assert report.verdict is Verdict.MALICIOUS


def _object_array(canary: Path) -> np.ndarray:
    array = np.empty(2, dtype=object)
    array[0] = "fine"
    array[1] = Exploit(touch_command(canary))
    return array


def test_npy_with_object_dtype_carrying_a_malicious_pickle_is_critical(tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "features.npy"
    np.save(path, _object_array(canary), allow_pickle=True)

    report = scan_path(path)

    assert report.format == "npy-object"
    assert report.verdict is Verdict.MALICIOUS
    assert {Code.PICKLED_ARRAY, Code.DANGEROUS_GLOBAL} <= {f.code for f in report.findings}


def test_npz_with_a_malicious_object_array_is_critical(tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "features.npz"
    np.savez(path, weights=np.ones(3), evil=_object_array(canary))

    report = scan_path(path)

    assert report.format == "npz"
    assert report.verdict is Verdict.MALICIOUS
    assert any(f.member == "evil.npy" and f.severity is Severity.CRITICAL for f in report.findings)


def test_malicious_torch_zip_nested_in_a_zip_is_found(canary: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("bundle/model.pt", torch_zip(malicious_pickle(canary)))

    report = scan_bytes(buffer.getvalue(), name="bundle.zip")

    assert report.verdict is Verdict.MALICIOUS
    assert report.findings[0].member == "bundle/model.pt::archive/data.pkl"


def test_skops_file_referencing_os_system_is_critical(tmp_path: Path) -> None:
    import skops.io as sio

    path = tmp_path / "model.skops"
    sio.dump({"hook": os.system}, path)

    report = scan_path(path)

    assert report.format == "skops"
    assert report.verdict is Verdict.MALICIOUS
    assert report.findings[0].member == "schema.json"


class Custom:
    """A class skops does not trust by default."""

    def __init__(self) -> None:
        self.value = 1


def test_skops_untrusted_type_is_high(tmp_path: Path) -> None:
    import skops.io as sio

    path = tmp_path / "model.skops"
    sio.dump(Custom(), path)

    report = scan_path(path)

    [finding] = [f for f in report.findings if f.code is Code.UNTRUSTED_TYPE]
    assert finding.severity is Severity.HIGH
    assert finding.name == "Custom"
    assert report.verdict is Verdict.SUSPICIOUS


def test_opcodes_smuggled_into_joblib_array_bytes_are_found() -> None:
    # joblib.load skips the "array bytes" after a NumpyArrayWrapper, but pickle.load and torch.load run them.
    smuggled = b"0cos\nsystem\n(S'id'\ntR."
    payload = (
        (
            b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(S'shape'\n(I%d\ntS'dtype'\n"
            b"cnumpy\ndtype\n(S'u1'\nI00\nI01\ntRS'order'\nS'C'\nub" % len(smuggled)
        )
        + smuggled
        + b"."
    )

    report = scan_bytes(payload, name="model.joblib")

    assert report.format == "joblib"
    assert report.verdict is Verdict.MALICIOUS
    assert "plain pickle" in report.findings[0].message
