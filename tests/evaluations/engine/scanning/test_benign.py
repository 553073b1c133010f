"""Benign model files produced by the usual libraries scan clean (nothing above INFO/LOW)."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from evaluations.engine.scanning import Code, ScanConfig, Severity, Verdict, scan_path


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))


@pytest.fixture(scope="module")
def logistic_regression() -> LogisticRegression:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    return LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))


def assert_clean(path: Path) -> None:
    report = scan_path(path)
    assert report.is_clean, report.summary()
    assert report.findings_at_least(Severity.MEDIUM) == ()


def test_torch_state_dict_is_clean(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    path = tmp_path / "weights.pt"
    torch.save(tiny_model.state_dict(), path)

    assert_clean(path)
    assert scan_path(path).format == "torch"


def test_legacy_torch_state_dict_is_clean(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    path = tmp_path / "weights.pt"
    torch.save(tiny_model.state_dict(), path, _use_new_zipfile_serialization=False)

    assert_clean(path)
    assert scan_path(path).format == "torch-legacy"


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_archive_is_clean(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(tiny_model.eval()), path)

    assert_clean(path)
    assert scan_path(path).format == "torchscript"


def test_whole_pickled_torch_module_is_suspicious_not_clean(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    path = tmp_path / "model.pt"
    torch.save(tiny_model, path)

    report = scan_path(path)

    assert report.verdict is Verdict.SUSPICIOUS
    assert {f.code for f in report.findings} == {Code.LIBRARY_GLOBAL}


def test_safetensors_file_is_clean(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file(tiny_model.state_dict(), path, metadata={"framework": "pt"})

    assert_clean(path)
    assert scan_path(path).format == "safetensors"


def test_skops_logistic_regression_is_clean(tmp_path: Path, logistic_regression: LogisticRegression) -> None:
    import skops.io as sio

    path = tmp_path / "model.skops"
    sio.dump(logistic_regression, path)

    assert_clean(path)


def test_numeric_npy_and_npz_are_clean(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    np.savez(tmp_path / "b.npz", w=np.ones((2, 2)), b=np.zeros(2, dtype=np.int64))
    np.savez_compressed(tmp_path / "c.npz", w=np.random.default_rng(0).normal(size=(512, 512)))

    for name in ("a.npy", "b.npz", "c.npz"):
        assert_clean(tmp_path / name)


def test_joblib_numeric_arrays_are_clean(tmp_path: Path) -> None:
    path = tmp_path / "arrays.joblib"
    joblib.dump({"w": np.ones((3, 3)), "b": np.arange(5, dtype=">i4"), "f": np.zeros((2, 3), order="F")}, path)

    assert_clean(path)


def test_sklearn_pickle_is_suspicious_by_default_because_unpickling_runs_library_code(
    tmp_path: Path, logistic_regression: LogisticRegression
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(logistic_regression))

    report = scan_path(path)

    assert report.verdict is Verdict.SUSPICIOUS
    [finding] = report.findings
    assert finding.code is Code.LIBRARY_GLOBAL
    assert finding.global_name == "sklearn.linear_model._logistic.LogisticRegression"
    assert "skops" in finding.message


def test_sklearn_joblib_is_clean_when_the_team_trusts_sklearn(
    tmp_path: Path, logistic_regression: LogisticRegression
) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(logistic_regression, path, compress=3)

    report = scan_path(path, config=ScanConfig(trusted_module_prefixes=("sklearn.",)))

    assert report.is_clean
    assert {f.code for f in report.findings} == {Code.TRUSTED_GLOBAL}
