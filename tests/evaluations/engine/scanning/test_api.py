"""Public API: reports, JSON export, ensure_clean and the engine's independence from Django."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from evaluations.engine.scanning import (
    SCANNER_VERSION,
    ScanConfig,
    UnsafeModelFile,
    Verdict,
    ensure_clean,
    scan_path,
)
from tests.evaluations.engine.scanning.payloads import malicious_pickle


def test_ensure_clean_raises_unsafe_model_file_for_a_malicious_file(tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(malicious_pickle(canary))

    with pytest.raises(UnsafeModelFile, match="malicious") as excinfo:
        ensure_clean(path)

    assert excinfo.value.report.verdict is Verdict.MALICIOUS
    assert "posix.system" in str(excinfo.value) or "os.system" in str(excinfo.value)


def test_ensure_clean_raises_for_a_rejected_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"")

    with pytest.raises(UnsafeModelFile):
        ensure_clean(path)


def test_ensure_clean_returns_the_report_for_a_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))

    report = ensure_clean(path)

    assert report.is_clean
    assert report.path == str(path) and report.name == "weights.pkl"


def test_report_records_hash_size_version_config_and_timing(tmp_path: Path, canary: Path) -> None:
    data = malicious_pickle(canary)
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    config = ScanConfig(max_members=50)

    report = scan_path(path, config=config)

    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.size_bytes == len(data)
    assert report.scanner_version == SCANNER_VERSION
    assert report.config is config
    assert report.elapsed_seconds >= 0


def test_report_to_dict_is_json_serialisable(tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(malicious_pickle(canary))

    payload = json.loads(json.dumps(scan_path(path).to_dict()))

    assert payload["verdict"] == "malicious"
    assert payload["is_clean"] is False
    assert payload["max_severity"] == "critical"
    assert payload["findings"][0]["code"] == "dangerous-global"
    assert payload["findings"][0]["technique"] == "AML.T0011.000"
    assert payload["config"]["max_members"] == ScanConfig().max_members


def test_report_and_config_are_frozen(tmp_path: Path) -> None:
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps([1], protocol=2))
    report = scan_path(path)

    with pytest.raises(AttributeError):
        report.verdict = Verdict.CLEAN  # type: ignore[misc]
    with pytest.raises(AttributeError):
        report.config.max_members = 1  # type: ignore[misc]


def test_scan_path_raises_for_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan_path(tmp_path / "missing.pt")


def test_scanning_package_imports_neither_django_nor_torch() -> None:
    code = (
        "import sys, evaluations.engine.scanning; "
        "print(sorted(m for m in ('django', 'celery', 'torch', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[4],
    )

    assert out.stdout.strip() == "[]"
