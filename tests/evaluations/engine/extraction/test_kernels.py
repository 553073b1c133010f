"""The extraction detector's C kernels measure what its numpy versions measure, and refuse what they cannot read."""

from __future__ import annotations

import math
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from evaluations.engine.extraction import detection
from tests.evaluations.engine.extraction.test_detection import _edit_trials, _exact_is_edit

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
def test_the_prada_step_is_the_numpy_steps_distance_growing_set_and_threshold(dim):
    rng = np.random.default_rng(dim)
    queries = rng.uniform(0, 1, size=(60, dim))
    queries[30] = queries[12]  # an exact repeat: distance 0, never joins
    c, plain = detection._GrowingSet(dim), detection._GrowingSet(dim)
    c.add(queries[0])
    plain.add(queries[0])
    distances = np.empty(64)
    for i, query in enumerate(queries[1:]):
        x = query.astype(np.float32) if i % 2 else query  # float32 queries widen exactly
        for growing in (c, plain):
            if growing.size == growing.data.shape[0]:
                growing.data = np.concatenate([growing.data, np.empty_like(growing.data)])
            if growing.n_kept == growing.kept.shape[0]:
                growing.kept = np.concatenate([growing.kept, np.empty_like(growing.kept)])
        d, joined, threshold, changed = kernels.prada_step(
            c.data, c.size, c.kept, c.n_kept, c.threshold, distances, i, x, math.nan
        )
        expected = plain.min_distance(x)
        assert d == pytest.approx(expected, rel=1e-12, abs=1e-300) and distances[i] == d
        assert changed == (i > 0 and d != distances[i - 1])
        assert joined == (expected > plain.threshold)
        if joined:
            c.size, c.n_kept, c.threshold = c.size + 1, c.n_kept + 1, threshold
            plain.add(x)
            plain.threshold = max(plain.threshold, detection._mean_minus_std(plain.keep_distance(expected)))
        assert c.threshold == pytest.approx(plain.threshold, rel=1e-12, abs=1e-12)
    assert c.size == plain.size and 2 < c.size < 60
    assert np.array_equal(c.data[: c.size], plain.data[: plain.size])
    # a replayed distance is taken as given, not measured
    d, joined, _, _ = kernels.prada_step(c.data, c.size, c.kept, c.n_kept, 1e9, distances, 59, queries[0], 0.25)
    assert (d, joined, distances[59]) == (0.25, False, 0.25)


@needs_kernels
@pytest.mark.parametrize("dim", [64, 3072])
def test_the_edit_step_decides_as_the_exact_test_and_the_numpy_screen_and_writes_the_row(dim):
    max_change = 0.25
    votes = []
    for trial, (rows, stored, kind) in enumerate(_edit_trials(dim, max_change)):
        plain = detection._History(dim, np.float32, tokens=False)
        data = np.empty((len(rows) + 1, dim + 2), dtype=np.float32)
        for i, row in enumerate(rows):
            plain.add(row)
            assert kernels.edit_step(data, i, row, max_change, False) is None  # a replayed row: written only
        vote = kernels.edit_step(data, len(rows), stored, max_change, True)
        assert vote == _exact_is_edit(rows, stored, max_change) == plain.is_edit(stored, max_change), (trial, kind)
        votes.append(vote)
        plain.add(stored)  # the rows the step wrote are the numpy history's: values, squared norm and norm
        assert np.array_equal(data[:, :dim], plain.data[: plain.size, :dim])
        assert np.allclose(data[:, dim:], plain.data[: plain.size, dim:], rtol=1e-6)
    assert any(votes) and not all(votes)
    assert kernels.edit_step(np.empty((1, dim + 2), np.float32), 0, stored, max_change, True) is None  # no earlier


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
    rows, kept, distances, x = np.zeros((4, 8)), np.zeros(4), np.zeros(4), np.zeros(8)
    with pytest.raises(ValueError, match="fewer than 5 rows"):
        kernels.prada_step(rows, 4, kept, 0, 0.0, distances, 0, x, math.nan)  # no room for row 4
    with pytest.raises(ValueError, match="size must be >= 1"):
        kernels.prada_step(rows, 0, kept, 0, 0.0, distances, 0, x, math.nan)
    with pytest.raises(ValueError, match="kept holds 4 values"):
        kernels.prada_step(rows, 1, kept, 4, 0.0, distances, 0, x, math.nan)
    with pytest.raises(TypeError, match="data must hold float64"):
        kernels.prada_step(rows.astype(np.float32), 1, kept, 0, 0.0, distances, 0, x, math.nan)
    with pytest.raises(TypeError, match="x must be a C-contiguous"):
        kernels.prada_step(rows, 1, kept, 0, 0.0, distances, 0, np.zeros(16)[::2], math.nan)
    with pytest.raises(TypeError, match="x must hold float32 or float64"):
        kernels.prada_step(rows, 1, kept, 0, 0.0, distances, 0, np.zeros(8, dtype=np.int64), math.nan)
    with pytest.raises(ValueError, match="read-only"):
        kernels.prada_step(rows, 1, kept, 0, 0.0, np.frombuffer(bytes(32)), 0, x, math.nan)
    history = np.zeros((3, 10), dtype=np.float32)
    with pytest.raises(ValueError, match="fewer than 4 rows of 10"):
        kernels.edit_step(history, 3, np.zeros(8, np.float32), 0.25, True)
    with pytest.raises(TypeError, match="x must hold float32"):
        kernels.edit_step(history, 0, np.zeros(8), 0.25, True)
    with pytest.raises(ValueError, match="read-only"):
        kernels.edit_step(np.frombuffer(bytes(400), np.float32), 0, np.zeros(8, np.float32), 0.25, True)
    with pytest.raises(ValueError, match="at least 2"):
        kernels.normalised_entropy(np.ones(1))
    with pytest.raises(ValueError, match="room for 10 values and a 5"):
        kernels.shapiro_window(np.ones(10), 10, np.empty(9), 0, 5000, np.zeros(5))
    with pytest.raises(ValueError, match="merged <= n"):
        kernels.shapiro_window(np.ones(10), 10, np.empty(10), 11, 5000, np.zeros(5))
