"""Extraction detection: PRADA flags synthetic query streams and passes benign ones; the ensemble reports when."""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest
import torch
from scipy.stats import shapiro

from evaluations.engine.common import InvalidConfigError
from evaluations.engine.extraction import ExtractionConfig, JacobianAugmentation, LocalVictim, RandomQueries, extract
from evaluations.engine.extraction.detection import (
    DetectorConfig,
    ExtractionDetector,
    MonitoredVictim,
    QueryStream,
    evaluate_detector,
)


@pytest.fixture(autouse=True, params=["c", "numpy"])
def arithmetic(request, monkeypatch):
    """Every test runs twice: on the C kernels (``_kernels.c``) and on the numpy versions of the same arithmetic."""
    from evaluations.engine.extraction import detection

    if request.param == "numpy":
        monkeypatch.setattr(detection, "_kernels", None)
    elif detection._kernels is None:
        pytest.skip("the C kernels are not built here (installed without a compiler); the numpy run covers this")
    return request.param


PRADA_ONLY = DetectorConfig(entropy_max_fraction=None, volume_max_queries=None, edit_max_change=None)
ATTACK = ExtractionConfig(budgets=(200,), transfer_attack=None, epochs=10, min_steps=100)


def _attack_stream(victim_model, digits, strategy, *, pool=None) -> QueryStream:
    """The queries an attacker sent, recorded by a monitored victim that flags nothing."""
    recorder = _Recorder(LocalVictim(victim_model))
    extract(
        recorder,
        strategy,
        digits[2][:20],
        digits[3][:20],
        ATTACK,
        pool=pool,
        evaluation_victim=LocalVictim(victim_model),
        seed=0,
    )
    return QueryStream(torch.cat(recorder.x), np.concatenate(recorder.probs))


class _Recorder(MonitoredVictim):
    def __init__(self, victim):
        super().__init__(victim, ExtractionDetector(PRADA_ONLY), "recorder")
        self.x, self.probs = [], []

    def _answer(self, x):
        answer = super()._answer(x)
        self.x.append(x)
        self.probs.append(answer.probabilities)
        return answer


def _benign(victim_model, digits, n_streams: int, length: int = 200) -> list[QueryStream]:
    x = digits[2]
    probs = LocalVictim(victim_model).probabilities(x)
    rng = np.random.default_rng(0)
    return [
        QueryStream(x[idx], probs[idx]) for idx in (rng.choice(len(x), length, replace=False) for _ in range(n_streams))
    ]


def test_prada_flags_a_jacobian_stream_and_passes_a_benign_one(victim_model, digits):
    jacobian = _attack_stream(victim_model, digits, JacobianAugmentation(seed_size=50), pool=digits[0])
    detector = ExtractionDetector(PRADA_ONLY)
    attacked = detector.observe_batch("attacker", jacobian.x, jacobian.probs)
    assert attacked.flagged and attacked.flagged_by == ("prada",) and attacked.first_flagged_at <= 200
    benign = _benign(victim_model, digits, 1)[0]
    passed = detector.observe_batch("benign", benign.x, benign.probs)
    assert not passed.flagged and passed.prada_w is not None and passed.prada_w > PRADA_ONLY.prada_threshold


def test_the_ensemble_reports_queries_until_detection_and_the_benign_false_positive_rate(victim_model, digits):
    attacks = {
        "random": _attack_stream(victim_model, digits, RandomQueries()),
        "jacobian": _attack_stream(victim_model, digits, JacobianAugmentation(seed_size=50), pool=digits[0]),
    }
    report = evaluate_detector(DetectorConfig(), attacks, _benign(victim_model, digits, 20))
    assert all(until is not None and until <= 200 for until in report.queries_until_detection.values())
    assert report.attack_flagged_by["random"] == ["entropy"]
    assert report.n_benign == 20 and report.benign_fpr == 0.0
    json.dumps(report.to_dict())


def test_a_monitored_victim_flags_its_client_during_an_extraction_run(victim_model, digits):
    monitored = MonitoredVictim(LocalVictim(victim_model), ExtractionDetector(), "client-7")
    extract(
        monitored,
        RandomQueries(),
        digits[2][:20],
        digits[3][:20],
        ATTACK,
        evaluation_victim=LocalVictim(victim_model),
        seed=0,
    )
    assert monitored.state.flagged and monitored.state.client_id == "client-7"
    assert monitored.state.queries == 200


def test_the_volume_monitor_flags_a_burst(victim_model, digits):
    detector = ExtractionDetector(DetectorConfig(volume_max_queries=5, volume_window=60.0))
    x = digits[2][:7]
    states = [detector.observe("c", x[i], label=0, timestamp=float(i)) for i in range(7)]
    assert not states[4].flagged and states[5].flagged and states[5].flagged_by == ("volume",)
    slow = ExtractionDetector(DetectorConfig(volume_max_queries=5, volume_window=60.0))
    assert not any(slow.observe("c", x[i], label=0, timestamp=100.0 * i).volume_flagged for i in range(7))


def test_label_only_answers_feed_prada_but_not_the_entropy_monitor(digits):
    detector = ExtractionDetector()
    state = detector.observe_batch("c", digits[2][:120], labels=digits[3][:120].numpy())
    assert state.uncertain_fraction is None and state.prada_w is not None


def test_invalid_detector_settings_are_named():
    with pytest.raises(InvalidConfigError, match="prada_threshold"):
        DetectorConfig(prada_threshold=1.5)
    with pytest.raises(InvalidConfigError, match="min_votes=2"):
        DetectorConfig(min_votes=2, volume_max_queries=None, entropy_max_fraction=None, edit_max_change=None)


class _PlainDetector:
    """PRADA, the entropy and the edit monitors written plainly from the docstring, for one client of dense
    inputs: public ``scipy.stats.shapiro``, ``np.linalg.norm``, every norm and statistic recomputed per query."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.groups: dict[int, dict] = {}
        self.distances: list[float] = []
        self.history: list[np.ndarray] = []
        self.edits: deque[bool] = deque(maxlen=config.edit_window)
        self.uncertain: deque[bool] = deque(maxlen=config.entropy_window)

    def observe(self, x, p) -> dict:
        config = self.config
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        p = np.asarray(p, dtype=np.float64)
        group = self.groups.setdefault(int(p.argmax()), {"points": [], "kept": [], "threshold": 0.0})
        if group["points"]:
            d = float(np.linalg.norm(np.asarray(group["points"]) - x, axis=1).min())
            self.distances.append(d)
            if d > group["threshold"]:
                group["points"].append(x)
                group["kept"].append(d)
                group["threshold"] = max(group["threshold"], float(np.mean(group["kept"]) - np.std(group["kept"])))
        else:
            group["points"].append(x)
        w = None
        if len(self.distances) >= config.prada_min_distances:
            w = 0.0 if np.ptp(self.distances) == 0 else float(shapiro(self.distances[-5000:]).statistic)
        q = p / p.sum()
        entropy = float(-sum(v * np.log(v) for v in q if v > 0) / np.log(len(q)))
        self.uncertain.append(entropy > config.entropy_threshold)
        query = x.astype(np.float32)
        if self.history:
            earlier = np.asarray(self.history)
            distance = np.linalg.norm(earlier - query, axis=1)
            change = distance / np.maximum((np.linalg.norm(earlier, axis=1) + np.linalg.norm(query)) / 2, 1e-12)
            self.edits.append(bool(((change > 0) & (change <= config.edit_max_change)).any()))
        self.history.append(query)
        full = len(self.uncertain) == config.entropy_window, len(self.edits) == config.edit_window
        uncertain = sum(self.uncertain) / len(self.uncertain) if full[0] else None
        edits = sum(self.edits) / len(self.edits) if full[1] else None
        return {
            "prada_w": w,
            "prada_flagged": w is not None and w < config.prada_threshold,
            "uncertain_fraction": uncertain,
            "entropy_flagged": uncertain is not None and uncertain > config.entropy_max_fraction,
            "edit_fraction": edits,
            "edits_flagged": edits is not None and edits > config.edit_max_fraction,
        }


def test_the_detector_decides_as_the_plain_monitors_on_attacker_and_benign_streams(victim_model, digits):
    benign = _benign(victim_model, digits, 1, length=300)[0]
    x, probs = np.asarray(benign.x), np.asarray(benign.probs)
    streams = {
        "random": _attack_stream(victim_model, digits, RandomQueries()),
        "jacobian": _attack_stream(victim_model, digits, JacobianAugmentation(seed_size=50), pool=digits[0]),
        "benign": benign,
        "benign, repeated": QueryStream(np.concatenate([x[:150], x[:150]]), np.concatenate([probs[:150]] * 2)),
    }
    flags = {}
    for name, stream in streams.items():
        fast, plain = ExtractionDetector(), _PlainDetector(DetectorConfig())
        for i in range(len(stream.x)):
            state = fast.observe(name, stream.x[i], stream.probs[i], timestamp=float(i))
            expected = plain.observe(stream.x[i], stream.probs[i])
            for field_name, value in expected.items():
                got = getattr(state, field_name)
                assert got == (value if value is None else pytest.approx(value, rel=1e-9)), (name, i, field_name)
        flags[name] = state.first_flagged_at
    assert flags["random"] <= 200 and flags["jacobian"] <= 200 and flags["benign"] is None, flags


def _as_pickled_before_the_norms_were_kept(history):
    """A ``_GrowingSet`` of the history's rows, as client states held their history before the scales were kept."""
    from evaluations.engine.extraction.detection import _GrowingSet

    legacy = _GrowingSet(history.dim, dtype=history.data.dtype)
    for row in history.rows:
        legacy.add(row)
    return legacy


def _as_pickled_with_the_norms_beside_the_rows(history):
    """A ``_History`` in the previous release's layout: the rows alone, their norms in an array of their own."""
    from evaluations.engine.extraction.detection import _History

    rows = history.rows.copy()
    old = object.__new__(_History)
    old.__dict__.update(
        data=rows,
        size=len(rows),
        kept=np.empty(16),
        n_kept=0,
        threshold=0.0,
        tokens=False,
        scales=np.sqrt(np.einsum("ij,ij->i", rows, rows)),
    )
    return old


@pytest.mark.parametrize(
    "stored_as", [_as_pickled_before_the_norms_were_kept, _as_pickled_with_the_norms_beside_the_rows]
)
def test_a_history_stored_in_an_earlier_layout_is_converted_and_judged_the_same(digits, stored_as):
    x = digits[2][:60].reshape(60, -1).numpy()
    x = np.concatenate([x, np.clip(x + np.random.default_rng(0).normal(0, 0.05, x.shape), 0, 1)])  # edits
    probs = np.full((120, 10), 0.02)
    probs[np.arange(120), digits[3][:60].repeat(2).numpy()] = 0.82
    reference, restored = ExtractionDetector(), ExtractionDetector()
    for i in range(60):
        reference.observe("c", x[i], probs[i], timestamp=float(i))
        restored.observe("c", x[i], probs[i], timestamp=float(i))
    client = restored.client_state("c")
    old = client.history = stored_as(client.history)
    for i in range(60, 120):
        state = restored.observe("c", x[i], probs[i], timestamp=float(i))
        assert state == reference.observe("c", x[i], probs[i], timestamp=float(i))
    assert client.history is not old and client.history.rows.shape == (120, 64)
    assert state.edit_fraction is not None and state.edit_fraction > 0


@pytest.mark.parametrize("repeat_from", [None, 0])
def test_a_client_state_stored_before_the_latest_votes_and_the_last_change_were_kept_is_judged_the_same(
    digits, repeat_from
):
    x = digits[2][:60].reshape(60, -1).numpy().astype(np.float64)
    if repeat_from is not None:  # one input over and over: PRADA's distances all alike, W = 0
        x[repeat_from:] = x[repeat_from]
    probs = np.full((60, 10), 0.02)
    probs[:, 4] = 0.82
    config = DetectorConfig(prada_min_distances=5)
    reference, restored = ExtractionDetector(config), ExtractionDetector(config)
    for i in range(30):
        reference.observe("c", x[i], probs[i], timestamp=float(i))
        restored.observe("c", x[i], probs[i], timestamp=float(i))
    client = restored.client_state("c")
    del client.last_change, client.latest, client.window, client.merged, client.fused  # as pickled before them
    assert restored.state("c").prada_w is None  # no latest votes stored: none reported until the next query
    for i in range(30, 60):
        state = restored.observe("c", x[i], probs[i], timestamp=float(i))
        assert state == reference.observe("c", x[i], probs[i], timestamp=float(i))
    if repeat_from is not None:
        assert state.prada_w == 0.0 and state.prada_flagged
    else:
        assert 0 < state.prada_w < 1


def _exact_is_edit(earlier: np.ndarray, query: np.ndarray, max_change: float) -> bool:
    """The edit test written out: L2 change over the mean L2 norm, in (0, max_change] for some earlier row."""
    distance = np.linalg.norm(earlier - query, axis=1)
    scale = np.maximum((np.linalg.norm(earlier, axis=1) + np.linalg.norm(query)) / 2, 1e-12)
    change = distance / scale
    return bool(((change > 0) & (change <= max_change)).any())


def _edit_trials(dim: int, max_change: float, trials: int = 200):
    """``(rows, query, kind)`` edit-test cases: 1-39 earlier float32 rows (a zero row every fifth trial) and a query
    that repeats one (kind 0), changes one right at ``max_change`` either side by float rounding (1), is far from
    all (2) or is zero (3)."""
    rng = np.random.default_rng(dim)
    for trial in range(trials):
        rows = rng.uniform(0, 1, size=(int(rng.integers(1, 40)), dim)).astype(np.float32)
        if trial % 5 == 0:
            rows[0] = 0.0  # a zero row: change 0 to a zero query, never an edit
        base = rows[int(rng.integers(len(rows)))].astype(np.float64)
        kind = trial % 4
        if kind == 0:
            query = base
        elif kind == 1:
            direction = rng.normal(size=dim)
            direction /= np.linalg.norm(direction)
            query = base + direction * max_change * np.linalg.norm(base) * (1 + rng.uniform(-1e-4, 1e-4))
        elif kind == 2:
            query = rng.uniform(0, 1, size=dim) * 3
        else:
            query = np.zeros(dim)
        yield rows, query.astype(np.float32), kind


@pytest.mark.parametrize("dim", [64, 3072])
def test_the_edit_screen_keeps_every_row_the_exact_test_needs(dim):
    from evaluations.engine.extraction.detection import _History

    for trial, (rows, stored, kind) in enumerate(_edit_trials(dim, 0.25)):
        history = _History(dim, np.float32, tokens=False)
        for row in rows:
            history.add(row)
        assert history.is_edit(stored, 0.25) == _exact_is_edit(rows, stored, 0.25), (trial, kind)


def test_a_detector_replaying_measurements_reaches_the_judging_detectors_state(victim_model, digits):
    streams = {
        "random": _attack_stream(victim_model, digits, RandomQueries()),
        "benign": _benign(victim_model, digits, 1, length=300)[0],
    }
    for name, stream in streams.items():
        judging, replaying = ExtractionDetector(), ExtractionDetector()
        n = len(stream.x) - 1
        for i in range(n):
            judged, measured = judging.judge(name, stream.x[i], stream.probs[i], timestamp=float(i))
            replayed = replaying.replay(name, stream.x[i], stream.probs[i], measured, timestamp=float(i))
            # Everything but PRADA's test, which a replay leaves to the detector that judged the query.
            for field_name in ("queries", "prada_distances", "volume_in_window", "uncertain_fraction", "edit_fraction"):
                assert getattr(replayed, field_name) == getattr(judged, field_name), (name, i, field_name)
            assert replayed.prada_w is None
        a, b = judging.client_state(name), replaying.client_state(name)
        assert np.array_equal(a.distances[: a.n_distances], b.distances[: b.n_distances])
        assert {c: g.size for c, g in a.classes.items()} == {c: g.size for c, g in b.classes.items()}
        # The next query, judged by both, gets the same state: PRADA's test included.
        last = (name, stream.x[n], stream.probs[n])
        judged_w = judging.observe(*last, timestamp=float(n)).prada_w
        assert judged_w is not None and replaying.observe(*last, timestamp=float(n)).prada_w == judged_w


@pytest.mark.parametrize("strategy", ["random", "jacobian"])
def test_checked_float32_queries_are_judged_and_replayed_as_their_float64_values(victim_model, digits, strategy):
    attacker = RandomQueries() if strategy == "random" else JacobianAugmentation(seed_size=50)
    stream = _attack_stream(victim_model, digits, attacker, pool=digits[0])
    judging, checking, replaying, taking = (ExtractionDetector() for _ in range(4))
    for i in range(len(stream.x)):
        x32 = np.asarray(stream.x[i], dtype=np.float32).reshape(-1)
        p32 = np.asarray(stream.probs[i], dtype=np.float32)
        x64, p64 = x32.astype(np.float64), p32.astype(np.float64)
        judged, measured = judging.judge("c", x64, p64, timestamp=float(i))
        assert checking.take_checked("c", x32, p32, int(p32.argmax()), timestamp=float(i)) == measured, i
        assert checking.state("c") == judged, i  # PRADA's W included
        replaying.replay("c", x64, p64, measured, timestamp=float(i))
        assert taking.take_checked("c", x32, p32, int(p32.argmax()), measured, timestamp=float(i)) is measured
        assert taking.state("c") == replaying.state("c"), i
    a, b = replaying.client_state("c"), taking.client_state("c")
    assert np.array_equal(a.distances[: a.n_distances], b.distances[: b.n_distances])
    assert np.array_equal(a.history.data[: a.history.size], b.history.data[: b.history.size])
    for c, growing in a.classes.items():
        assert np.array_equal(growing.data[: growing.size], b.classes[c].data[: b.classes[c].size])
        assert b.classes[c].data.dtype == np.float64 and growing.threshold == b.classes[c].threshold


def test_a_replayed_query_follows_the_measurement_where_the_views_differed():
    from evaluations.engine.extraction.detection import QueryMeasurement

    config = DetectorConfig(prada_min_distances=3)
    detector = ExtractionDetector(config)
    probs = np.eye(10)[0] * 0.9 + 0.01
    detector.observe("c", np.zeros(4), probs, timestamp=0.0)
    # Judged elsewhere as the first query of its class, with no earlier query: no distance, no edit vote.
    state = detector.replay("c", np.ones(4), probs, QueryMeasurement(None, None, False), timestamp=1.0)
    client = detector.client_state("c")
    assert client.n_distances == 0 and client.classes[0].size == 2 and len(client.edits) == 0
    assert state.queries == 2
    # Judged elsewhere with a distance to a class this detector has not seen: the distance counts all the same.
    detector.replay("c", np.ones(4), np.eye(10)[3] * 0.9 + 0.01, QueryMeasurement(0.5, True, False), timestamp=2.0)
    assert client.n_distances == 1 and client.distances[0] == 0.5 and list(client.edits) == [True]


def test_the_growing_sets_threshold_is_the_mean_minus_std_of_its_distances_also_for_an_old_pickled_set():
    from evaluations.engine.extraction.detection import _GrowingSet

    rng = np.random.default_rng(0)
    values = rng.uniform(0, 2, size=100).tolist()
    fresh, legacy, legacy_empty = _GrowingSet(4), _GrowingSet(4), _GrowingSet(4)
    for growing in (legacy, legacy_empty):
        del growing.kept, growing.n_kept  # as pickled when the distances were a list
    legacy_empty.distances = []
    for d in values[:3]:
        fresh.keep_distance(d)
    legacy.distances = values[:3]
    for i, d in enumerate(values[3:], start=4):
        expected = float(np.mean(values[:i]) - np.std(values[:i]))
        for growing in (fresh, legacy):
            kept = growing.keep_distance(d)
            assert kept.tolist() == values[:i]
            assert abs(float(kept.mean() - kept.std()) - expected) < 1e-12
    assert legacy_empty.keep_distance(0.5).tolist() == [0.5] and legacy_empty.keep_distance(1.5).tolist() == [0.5, 1.5]


@pytest.mark.parametrize("n", [3, 4, 51, 300, 5000])
def test_the_shapiro_wilk_statistic_is_scipys_to_the_bit(n):
    from evaluations.engine.extraction.detection import _shapiro_w

    rng = np.random.default_rng(n)
    for values in (rng.normal(size=n) ** 2, np.round(rng.exponential(size=n), 1) + 0.5):
        assert _shapiro_w(values) == float(shapiro(values).statistic)


def test_a_state_is_a_whole_frozen_detection_state():
    import dataclasses

    from evaluations.engine.extraction.detection import DetectionState

    detector = ExtractionDetector()
    state = detector.observe("c", np.zeros(4), np.array([0.9, 0.1]), timestamp=0.0)
    fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(DetectionState)}
    assert state == DetectionState(**fields) and set(vars(state)) == set(fields)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.queries = 2


@pytest.mark.parametrize("values", [(0.5, True, False), (None, None, None), (0.0, False, True)])
def test_a_measurement_made_directly_is_the_dataclass(values):
    import dataclasses

    from evaluations.engine.extraction.detection import QueryMeasurement

    made = QueryMeasurement.of(*values)
    assert made == QueryMeasurement(*values) and hash(made) == hash(QueryMeasurement(*values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.edit = None
