"""The extraction detector's C kernels measure what its numpy versions measure, and refuse what they cannot read."""

from __future__ import annotations

import math
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from evaluations.engine.extraction import detection

kernels = detection._kernels


def test_the_kernels_are_built_where_a_compiler_and_the_python_headers_are():
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if shutil.which("cc") is None or not headers.exists():
        pytest.skip("no C compiler or Python headers here: the package installs without its kernels (numpy runs)")
    assert kernels is not None, "setup.py's optional extension failed to build: see the pip install log"


needs_kernels = pytest.mark.skipif(kernels is None, reason="the C kernels are not built here")


def _numpy_versions(monkeypatch):
    monkeypatch.setattr(detection, "_kernels", None)


@needs_kernels
@pytest.mark.parametrize("dim", [1, 7, 64, 3072])
def test_min_distance_is_numpys_in_float64(dim, monkeypatch):
    rng = np.random.default_rng(dim)
    growing = detection._GrowingSet(dim)
    for row in rng.uniform(0, 1, size=(40, dim)):
        growing.add(row)
    queries = [rng.uniform(0, 1, size=dim), rng.uniform(0, 1, size=dim).astype(np.float32), growing.data[3].copy()]
    got = [growing.min_distance(q) for q in queries]
    _numpy_versions(monkeypatch)
    expected = [growing.min_distance(q) for q in queries]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert got[2] == 0.0  # a stored row is at distance 0


@needs_kernels
@pytest.mark.parametrize("dim", [3, 64, 3072])
def test_norm_and_mean_minus_std_are_numpys(dim):
    rng = np.random.default_rng(dim)
    x = rng.uniform(-2, 2, size=dim).astype(np.float32)
    assert kernels.norm(x) == pytest.approx(float(np.linalg.norm(x.astype(np.float64))), rel=1e-6)
    values = rng.exponential(size=dim + 20)
    for n in (1, 2, 9, dim + 20):
        expected = float(values[:n].mean() - values[:n].std())
        assert kernels.mean_minus_std(values, n) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@needs_kernels
def test_a_history_row_holds_the_query_its_squared_norm_and_norm_as_numpy_writes_them(monkeypatch):
    rng = np.random.default_rng(5)
    queries = rng.uniform(0, 1, size=(40, 64)).astype(np.float32)
    histories = {}
    for mode in ("c", "numpy"):
        if mode == "numpy":
            _numpy_versions(monkeypatch)
        history = histories[mode] = detection._History(64, np.float32, tokens=False)
        for query in queries:  # 40 rows: the 16-row buffer doubles twice
            history.add(query)
    c, plain = histories["c"].data[:40], histories["numpy"].data[:40]
    assert np.array_equal(c[:, :64], queries)
    assert np.allclose(c[:, 64:], plain[:, 64:], rtol=1e-6)
    legacy = detection._History(64, np.float64, tokens=False)  # rows of another dtype: the numpy path writes them
    monkeypatch.undo()
    legacy.add(queries[0].astype(np.float64))
    assert np.allclose(legacy.data[0, :64], queries[0]) and legacy.size == 1
    with pytest.raises(ValueError, match="fewer than 3 rows"):
        kernels.history_row(np.zeros((2, 66), np.float32), 2, queries[0])


@needs_kernels
def test_the_normalised_entropy_is_the_python_loops_to_the_bit(monkeypatch):
    rng = np.random.default_rng(0)
    cases = [rng.dirichlet(np.ones(c) * a) for c in (2, 3, 10, 64) for a in (0.05, 1.0, 20.0)]
    cases += [np.array([1.0, 0.0]), np.array([0.0, 0.0, 0.0]), np.array([-0.2, 0.7, math.nan, 0.5]), np.eye(10)[3]]
    arrays = [p for case in cases for p in (case, case.astype(np.float32))]
    got = [detection._normalised_entropy(p) for p in arrays]
    _numpy_versions(monkeypatch)
    assert got == [detection._normalised_entropy(p) for p in arrays]


@needs_kernels
@pytest.mark.parametrize("dim", [64, 3072])
def test_the_edit_test_is_the_numpy_screens_on_every_kind_of_query(dim, monkeypatch):
    answers = {"c": [], "numpy": []}
    for mode in ("c", "numpy"):
        if mode == "numpy":
            _numpy_versions(monkeypatch)
        trial_rng = np.random.default_rng(dim)
        for trial in range(120):
            history = detection._History(dim, np.float32, tokens=False)
            rows = trial_rng.uniform(0, 1, size=(int(trial_rng.integers(1, 30)), dim)).astype(np.float32)
            if trial % 6 == 0:
                rows[0] = 0.0
            for row in rows:
                history.add(row)
            base = rows[int(trial_rng.integers(len(rows)))].astype(np.float64)
            step = trial_rng.normal(size=dim)
            scale = (0.0, 0.1, 0.2, 0.3, 1.0, 0.0)[trial % 6] * np.linalg.norm(base) / np.linalg.norm(step)
            query = (base + step * scale).astype(np.float32) if trial % 6 != 5 else np.zeros(dim, np.float32)
            answers[mode].append(history.is_edit(query, 0.25))
    assert answers["c"] == answers["numpy"]
    assert any(answers["c"]) and not all(answers["c"])


@needs_kernels
@pytest.mark.parametrize("limit", [5000, 40])
def test_the_running_shapiro_wilk_window_is_scipys_statistic_to_the_bit(limit):
    from scipy.stats import shapiro

    rng = np.random.default_rng(limit)
    values = np.concatenate([rng.normal(size=150) ** 2, np.round(rng.exponential(size=150), 1) + 0.5])
    window, merged = np.empty(max(300, limit)), 0
    for n in [3, 4, 5, 6, 11, 12, 51, 52, 53, 120, 121, 300]:  # values arrive between the tests: one or many
        m = min(n, limit)
        got = kernels.shapiro_window(values, n, window, merged, limit, detection._swilk_coefficients(m))
        merged = n
        assert got == float(shapiro(values[n - m : n]).statistic), n
        assert np.array_equal(window[:m], np.sort(values[n - m : n]))
    same = np.full(10, 0.5)  # a zero range: scipy's swilk answers 1 (PRADA itself calls it 0 before asking)
    assert kernels.shapiro_window(same, 10, np.empty(10), 0, limit, detection._swilk_coefficients(10)) == 1.0


@needs_kernels
def test_bad_arguments_raise_clear_errors_not_reads_out_of_bounds():
    rows = np.zeros((4, 8))
    with pytest.raises(ValueError, match="fewer than 5 rows"):
        kernels.min_distance(rows, 5, np.zeros(8))
    with pytest.raises(ValueError, match="at least one row"):
        kernels.min_distance(rows, 0, np.zeros(8))
    with pytest.raises(TypeError, match="data must hold float64"):
        kernels.min_distance(rows.astype(np.float32), 1, np.zeros(8))
    with pytest.raises(TypeError, match="x must be a C-contiguous"):
        kernels.min_distance(rows, 1, np.zeros(16)[::2])
    with pytest.raises(TypeError, match="x must hold float32 or float64"):
        kernels.min_distance(rows, 1, np.zeros(8, dtype=np.int64))
    history = np.zeros((4, 10), dtype=np.float32)
    with pytest.raises(ValueError, match="not dim=8"):
        kernels.is_edit(history, 1, 8, np.zeros(7, np.float32), 0.0, 0.25)
    with pytest.raises(ValueError, match="fewer than 5 rows of 10"):
        kernels.is_edit(history, 5, 8, np.zeros(8, np.float32), 0.0, 0.25)
    with pytest.raises(ValueError, match="finite"):
        kernels.is_edit(history, 1, 8, np.zeros(8, np.float32), math.nan, 0.25)
    with pytest.raises(ValueError, match="at least 2"):
        kernels.normalised_entropy(np.ones(1))
    with pytest.raises(ValueError, match="not within"):
        kernels.mean_minus_std(np.ones(3), 4)
    with pytest.raises(TypeError, match="float32"):
        kernels.norm(np.ones(3))
    with pytest.raises(ValueError, match="room for 10 values and a 5"):
        kernels.shapiro_window(np.ones(10), 10, np.empty(9), 0, 5000, np.zeros(5))
    with pytest.raises(ValueError, match="merged <= n"):
        kernels.shapiro_window(np.ones(10), 10, np.empty(10), 11, 5000, np.zeros(5))
    with pytest.raises(ValueError, match="room for row 3|fewer than 4 rows"):
        kernels.edit_step(np.zeros((3, 10), np.float32), 3, np.zeros(8, np.float32), 0.25, True)
    with pytest.raises(ValueError, match="fewer than 2 rows"):
        kernels.prada_step(np.zeros((1, 8)), 1, np.zeros(4), 0, 0.0, np.zeros(4), 0, np.zeros(8), math.nan)
    with pytest.raises(ValueError, match="read-only"):
        kernels.edit_step(np.frombuffer(bytes(400), np.float32), 0, np.zeros(8, np.float32), 0.25, True)
