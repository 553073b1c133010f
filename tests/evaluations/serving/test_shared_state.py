"""The guard's shared state, on Redis and on local memory: the one-round-trip rate limiter and the monitor's
append-only log, replayed by each web process."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluations.engine.extraction.detection import QueryMeasurement
from evaluations.serving import monitor, ratelimit
from evaluations.serving.models import MonitorAlert

pytestmark = pytest.mark.django_db

REDIS_URL = "redis://127.0.0.1:6379/9"
ONE = np.full((1, 1, 8, 8), 0.5).tolist()


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


@pytest.fixture(params=["locmem", "redis"])
def backend(request, settings):
    """Each test runs on the local-memory cache and on Redis (skipped when Redis is down)."""
    if request.param == "redis":
        if not _redis_up():
            pytest.skip(f"Redis is not reachable at {REDIS_URL}")
        import redis

        raw = redis.Redis.from_url(REDIS_URL)
        raw.flushdb()
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
        monitor._PROCESS.clear()
        yield request.param
        raw.flushdb()
        monitor._PROCESS.clear()
    else:
        # Whatever the suite runs on (CI sets CACHE_URL to Redis), this case is the local-memory cache.
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "shared-state-tests"}
        }
        monitor._PROCESS.clear()
        yield request.param
        monitor._PROCESS.clear()


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        now = 1_800_000_000.0 + 10.25

    monkeypatch.setattr(ratelimit, "clock", lambda: Clock.now)
    return Clock


def test_the_backend_fixture_really_switches_the_cache(backend):
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    assert isinstance(caches["default"], RedisCache) == (backend == "redis")


# --- rate limits ------------------------------------------------------------------------------------------


def test_the_limiter_refuses_at_the_exact_count_and_does_not_charge_refused_requests(backend, clock):
    limits = ratelimit.Limits(per_second=100, per_minute=10, per_day=1000)
    assert ratelimit.consume(7, 4, limits) is None
    assert ratelimit.consume(7, 6, limits) is None  # exactly 10
    refusal = ratelimit.consume(7, 1, limits)
    assert refusal is not None and refusal.window == "minute" and refusal.limit == 10
    assert refusal.retry_after == 60 - 10
    assert ratelimit.used_today(7) == 10  # the refused input was not charged
    clock.now += 60
    assert ratelimit.consume(7, 10, limits) is None
    assert ratelimit.used_today(7) == 20


def test_a_refusal_by_a_later_window_charges_none_of_the_earlier_ones(backend, clock):
    limits = ratelimit.Limits(per_second=10, per_minute=5, per_day=3)
    assert ratelimit.consume(8, 3, limits) is None
    refusal = ratelimit.consume(8, 2, limits)
    assert refusal is not None and refusal.window == "day"
    clock.now += 1
    # The owner raises the quota: had the refused request charged the minute window (3 + 2), this would not fit.
    raised = ratelimit.Limits(per_second=10, per_minute=5, per_day=100)
    assert ratelimit.consume(8, 2, raised) is None
    assert ratelimit.consume(8, 1, raised).window == "minute"
    assert ratelimit.used_today(8) == 5


def test_the_burst_window_refuses_over_http_and_reopens_next_second(backend, deploy, issue, post, clock):
    deployment = deploy(burst=3, rate_per_minute=100, max_batch=3, monitor_enabled=False)
    _, secret = issue(deployment)
    codes = [post(deployment, secret, {"inputs": ONE}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    clock.now += 1
    assert post(deployment, secret, {"inputs": ONE}).status_code == 200


@pytest.mark.parametrize("backend", ["redis"], indirect=True)  # key expiries are a Redis matter
def test_redis_windows_always_get_an_expiry(backend, clock):
    import redis
    from django.core.cache import caches

    limits = ratelimit.Limits(per_second=10, per_minute=10, per_day=10)
    ratelimit.consume(11, 2, limits)
    raw = redis.Redis.from_url(REDIS_URL)
    keys = raw.keys(caches["default"].make_key("serve:rl:11:*"))
    assert len(keys) == 3 and all(0 < raw.ttl(k) <= 86460 for k in keys)


def test_on_a_monitored_deployment_refused_requests_log_nothing_and_answered_inputs_are_logged_once(
    backend, deploy, issue, post, clock
):
    deployment = deploy(burst=5, rate_per_minute=100, max_batch=2)
    assert deployment.monitor_enabled
    key, secret = issue(deployment)
    two = np.full((2, 1, 8, 8), 0.5).tolist()
    codes = [post(deployment, secret, {"inputs": two}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # 2 + 2 fit the burst of 5; 2 more do not
    name = monitor._state_key(deployment.pk, key.pk, monitor.config_for(deployment))
    assert monitor.stored_state(deployment, key.pk).queries == 4  # its exchange also logs the parked answer
    assert monitor.log_length(name) == 4
    assert post(deployment, secret, {"inputs": ONE}).status_code == 200  # exactly 5
    assert post(deployment, secret, {"inputs": ONE}).status_code == 429
    assert monitor.log_length(name) == 5 and ratelimit.used_today(key.pk) == 5  # the refusal logged the parked one
    assert monitor.stored_state(deployment, key.pk).queries == 5
    clock.now += 1
    assert post(deployment, secret, {"inputs": two}).status_code == 200
    assert monitor.stored_state(deployment, key.pk).queries == 7 and monitor.log_length(name) == 7
    assert monitor.stored_state(deployment, key.pk, local=monitor.LocalMonitor()).queries == 7  # a fresh replay


def _serve(local, key_id, x, *, limits=None, config=None, timestamp=None):
    """What the endpoint does for a monitored deployment, in the process ``local``."""
    config = config or monitor.detector_config()
    limits = limits or ratelimit.Limits(per_second=10_000, per_minute=10_000, per_day=10_000)
    ticket = monitor.begin(1, key_id, config=config, local=local)
    refusal = ratelimit.consume(key_id, len(x), limits, monitor=ticket)
    if refusal is not None:
        return refusal
    seen, labels = _uncertain(len(x)), [0] * len(x)
    return monitor.observe(1, key_id, x, seen, labels, config=config, ticket=ticket, timestamp=timestamp)


def _caught_up(local, key_id):
    """The key's state in process ``local`` after an exchange that logs its parked answers and reads the rest."""
    config = monitor.detector_config()
    return local.sync(monitor._state_key(1, key_id, config), str(key_id), config, [])


def test_two_serving_processes_judge_each_answer_at_once_and_every_input_exactly_once(backend, clock):
    config = monitor.detector_config()
    first, second = monitor.LocalMonitor(), monitor.LocalMonitor()
    x = _random(120)
    states = []
    for i in range(0, 120, 2):  # batches of two, alternating between the processes
        states.append(_serve(first if (i // 2) % 2 == 0 else second, 5, x[i : i + 2], timestamp=float(i)))
    # Each answer is judged in its request, with everything the other process has logged: all but its last
    # answer, parked until its next exchange.
    assert [s.queries for s in states] == [2, *range(2, 119, 2)]
    assert states[-1].flagged and 50 <= states[-1].first_flagged_at <= 62  # entropy window of 50
    # Once both have exchanged again, each has judged every input exactly once, and so has a fresh replay.
    caught_up = [_caught_up(p, 5) for p in (first, second, first, monitor.LocalMonitor())]
    assert [s.queries for s in caught_up] == [118, 120, 120, 120]
    assert monitor.log_length(monitor._state_key(1, 5, config)) == 120


def test_each_answer_is_measured_once_the_other_processes_replay_its_measurement(backend, clock, monkeypatch):
    from evaluations.engine.extraction import detection

    measured = {"distances": 0, "edits": 0}
    min_distance, is_edit = detection._GrowingSet.min_distance, detection._History.is_edit

    def counting_distance(self, x):
        measured["distances"] += 1
        return min_distance(self, x)

    def counting_edit(self, stored, max_change, norm=None):
        measured["edits"] += 1
        return is_edit(self, stored, max_change, norm)

    monkeypatch.setattr(detection._GrowingSet, "min_distance", counting_distance)
    monkeypatch.setattr(detection._History, "is_edit", counting_edit)
    if detection._kernels is not None:  # the monitor's path measures in the kernels' fused steps
        kernels = detection._kernels

        class CountingKernels:
            def __getattr__(self, name):
                return getattr(kernels, name)

            def prada_step(self, *args):
                measured["distances"] += math.isnan(args[-1])  # NaN: measure here; else a replayed distance
                return kernels.prada_step(*args)

            def edit_step(self, data, size, x, max_change, judge):
                measured["edits"] += bool(judge and size)  # judged against an earlier query
                return kernels.edit_step(data, size, x, max_change, judge)

        monkeypatch.setattr(detection, "_kernels", CountingKernels())
    first, second = monitor.LocalMonitor(), monitor.LocalMonitor()
    x = _random(60)
    for i in range(0, 60, 3):
        _serve(first if (i // 3) % 2 == 0 else second, 9, x[i : i + 3], timestamp=float(i))
    states = [_caught_up(p, 9) for p in (first, second, first)]
    assert [s.queries for s in states[1:]] == [60, 60]
    # Every input measured once at most, by the process that answered it: 60 inputs of one class (label 0) but
    # the two that had no earlier query to measure against where they were answered (each process's first
    # answer: the second answered before the first's parked answers were in the log).
    assert measured == {"distances": 58, "edits": 58}
    # A fresh process replays every logged answer from its measurement: nothing is measured again.
    fresh = _caught_up(monitor.LocalMonitor(), 9)
    assert fresh.queries == 60 and measured == {"distances": 58, "edits": 58}
    assert fresh.first_flagged_at == states[-1].first_flagged_at


def test_a_refused_request_still_logs_the_answer_parked_before_it(backend, clock):
    limits = ratelimit.Limits(per_second=3, per_minute=100, per_day=100)
    local = monitor.LocalMonitor()
    assert _serve(local, 6, _random(2), limits=limits).queries == 2  # judged, parked
    name = monitor._state_key(1, 6, monitor.detector_config())
    assert monitor.log_length(name) == 0
    refusal = _serve(local, 6, _random(2, seed=1), limits=limits)
    assert isinstance(refusal, ratelimit.Refusal) and refusal.window == "second"
    assert monitor.log_length(name) == 2 and ratelimit.used_today(6) == 2  # the refused batch: neither
    assert _caught_up(monitor.LocalMonitor(), 6).queries == 2


def test_a_process_that_stops_appends_its_parked_answers(backend, clock):
    first = monitor.LocalMonitor()
    assert _serve(first, 8, _random(3)).queries == 3  # judged, parked
    name = monitor._state_key(1, 8, monitor.detector_config())
    assert monitor.log_length(name) == 0
    first.flush()  # what the atexit hook does for the process's own monitor
    assert monitor.log_length(name) == 3
    first.flush()  # nothing parked any more: nothing appended twice
    assert monitor.log_length(name) == 3
    assert _caught_up(monitor.LocalMonitor(), 8).queries == 3
    assert _caught_up(first, 8).queries == 3  # and the process that parked them does not judge them again


def test_a_forgotten_key_does_not_log_the_answers_parked_before(backend, deploy, issue, clock):
    deployment = deploy()
    key, _ = issue(deployment)
    config = monitor.config_for(deployment)
    limits = ratelimit.Limits(per_second=100, per_minute=100, per_day=100)
    other = monitor.LocalMonitor()  # another process, whose answer stays parked through forget()

    def serve(local):
        ticket = monitor.begin(deployment.pk, key.pk, config=config, local=local)
        assert ratelimit.consume(key.pk, 3, limits, monitor=ticket) is None
        return monitor.observe(deployment.pk, key.pk, _random(3), _uncertain(3), [0] * 3, config=config, ticket=ticket)

    serve(other)
    assert serve(None).queries == 6 - 3  # this process has not seen the other's parked answer yet
    monitor.forget(deployment, key.pk)
    assert serve(other).queries == 3  # a new epoch: the other process restarted; its old answer was dropped
    assert monitor.stored_state(deployment, key.pk, local=other).queries == 3  # and the new one logged
    assert monitor.stored_state(deployment, key.pk, local=monitor.LocalMonitor()).queries == 3


def test_answers_parked_across_a_new_epoch_are_judged_once(backend, clock, monkeypatch):
    monkeypatch.setattr(monitor, "HISTORY_LIMIT", 20)
    config = monitor.detector_config()
    first, second = monitor.LocalMonitor(), monitor.LocalMonitor()
    x = _random(100)
    for i in range(0, 100, 5):
        _serve(first if (i // 5) % 2 == 0 else second, 7, x[i : i + 5], timestamp=float(i))
    states = [_caught_up(p, 7) for p in (first, second, first, monitor.LocalMonitor())][1:]
    length = monitor.log_length(monitor._state_key(1, 7, config))
    assert 0 < length <= 20 and [s.queries for s in states] == [length] * 3


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_requests_leave_no_redis_clients_or_connections_behind(backend, clock):
    import gc

    import redis

    def clients() -> int:
        gc.collect()
        return sum(type(o) is redis.Redis for o in gc.get_objects())

    raw = redis.Redis.from_url(REDIS_URL)
    limits = ratelimit.Limits(per_second=10_000, per_minute=10_000, per_day=10_000)
    ratelimit.consume(13, 1, limits)
    monitor.observe(1, 13, _random(1), _uncertain(1), [0], config=monitor.detector_config())
    objects, connections = clients(), len(raw.client_list())
    for _ in range(50):
        ratelimit.consume(13, 1, limits)
        monitor.observe(1, 13, _random(1), _uncertain(1), [0], config=monitor.detector_config())
    assert clients() == objects and len(raw.client_list()) == connections
    assert ratelimit.used_today(13) == 51


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_a_script_the_server_forgot_or_a_dropped_connection_costs_no_request(backend, clock):
    import redis

    raw = redis.Redis.from_url(REDIS_URL)
    limits = ratelimit.Limits(per_second=100, per_minute=100, per_day=100)
    assert ratelimit.consume(14, 1, limits) is None
    raw.script_flush()  # what a Redis restart does to the script cache
    assert ratelimit.consume(14, 1, limits) is None
    raw.client_kill_filter(_type="normal", skipme=True)  # every other connection: the held one too
    assert ratelimit.consume(14, 1, limits) is None
    state = monitor.observe(1, 14, _random(2), _uncertain(2), [0, 0], config=monitor.detector_config())
    assert ratelimit.used_today(14) == 3 and state.queries == 2


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_a_forked_process_opens_its_own_connection(backend, clock, monkeypatch):
    from django.core.cache import caches

    from evaluations.serving import rediscache

    limits = ratelimit.Limits(per_second=100, per_minute=100, per_day=100)
    ratelimit.consume(15, 1, limits)
    parent = rediscache._connections[caches["default"]._cache]
    monkeypatch.setattr(rediscache.os, "getpid", lambda: parent.pid + 1)
    ratelimit.consume(15, 1, limits)
    child = rediscache._connections[caches["default"]._cache]
    assert child is not parent and child.connection is not parent.connection
    assert ratelimit.used_today(15) == 2


def test_commands_are_packed_as_redis_py_packs_them():
    from redis.connection import PythonRespSerializer

    from evaluations.serving import rediscache

    args = ("EVALSHA", "ab" * 20, 3, "serve:key:é", b"\x00\xff raw\r\n", 0, -17, 2**40, 1.5, "", b"")
    reference = b"".join(
        PythonRespSerializer(
            6000,
            lambda value: (
                value.encode()
                if isinstance(value, str)
                else (repr(value).encode() if isinstance(value, (int, float)) else value)
            ),
        ).pack(*args)
    )
    assert rediscache.pack(*args) == reference
    with pytest.raises(TypeError, match="bool"):
        rediscache.pack("SET", "k", True)


# --- the monitor's log ------------------------------------------------------------------------------------


def _random(n, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, 1, 8, 8))


def _uncertain(n):
    return np.full((n, 10), 0.1)


def test_records_round_trip_floats_as_float32_and_integral_inputs_exactly(backend):
    x = np.stack([np.linspace(0, 1, 64).reshape(1, 8, 8), np.arange(64.0).reshape(1, 8, 8) * 100])
    seen = np.array([[0.25, 0.75], [0.5, 0.5]])
    records = monitor.encode_records(x, seen, [1, 0], 12.5)
    first, probs, label, timestamp, measured = monitor.decode_record(records[0])
    assert np.allclose(first, x[0].reshape(-1), atol=1e-7) and probs.tolist() == [0.25, 0.75]
    assert label == 1 and timestamp == 12.5 and measured is None  # not judged yet
    second, _, _, _, _ = monitor.decode_record(records[1])
    assert np.array_equal(second, x[1].reshape(-1)) and second.dtype == np.float64
    labels_only = monitor.decode_record(monitor.encode_records(x[:1], None, [3], 1.0)[0])
    assert labels_only[1] is None and labels_only[2] == 3
    # the answering process judges the arrays the others will decode, without decoding them itself
    for record, values, probabilities in monitor._encoded(x, seen, [1, 0], 12.5):
        decoded, decoded_probs, _, _, _ = monitor.decode_record(record)
        assert values.dtype in (np.float32, np.int32) and np.array_equal(values.astype(np.float64), decoded)
        assert probabilities.dtype == np.float32 and np.array_equal(probabilities.astype(np.float64), decoded_probs)


@pytest.mark.parametrize(
    "measured",
    [
        QueryMeasurement(distance=0.125, edit=True, uncertain=False),
        QueryMeasurement(distance=None, edit=None, uncertain=None),
        QueryMeasurement(distance=0.0, edit=False, uncertain=True),
    ],
)
def test_a_judged_record_carries_its_measurement(backend, measured):
    record = monitor.encode_records(np.ones((1, 1, 8, 8)) / 3, np.array([[0.25, 0.75]]), [1], 3.0)[0]
    judged = monitor.with_measurement(record, measured)
    x, probs, label, timestamp, carried = monitor.decode_record(judged)
    assert carried == measured
    assert (x.tolist(), probs.tolist(), label, timestamp) == (
        monitor.decode_record(record)[0].tolist(),
        [0.25, 0.75],
        1,
        3.0,
    )


def test_two_processes_see_the_whole_stream_and_flag_an_attacker_split_between_them(backend):
    config = monitor.detector_config()
    first, second = monitor.LocalMonitor(), monitor.LocalMonitor()
    x = _random(120)
    states = []
    for i in range(0, 120, 2):  # batches of two, alternating between the processes
        local = first if (i // 2) % 2 == 0 else second
        states.append(monitor.observe(1, 5, x[i : i + 2], _uncertain(2), [0, 0], config=config, local=local))
    assert [s.queries for s in states] == list(range(2, 121, 2))  # each process counted the other's queries
    assert states[-1].flagged and 50 <= states[-1].first_flagged_at <= 60  # entropy window of 50
    # The other process, replaying, reaches the same state.
    other = monitor.observe(1, 5, x[:1], _uncertain(1), [0], config=config, local=first)
    assert other.queries == 121 and other.first_flagged_at == states[-1].first_flagged_at


def test_a_benign_stream_split_between_processes_is_not_flagged(backend, digits_test):
    config = monitor.detector_config()
    first, second = monitor.LocalMonitor(), monitor.LocalMonitor()
    x, y = digits_test
    seen = np.eye(10)[y] * 0.9 + 0.01
    for i in range(0, 200, 5):
        local = first if i % 10 == 0 else second
        state = monitor.observe(1, 6, x[i : i + 5], seen[i : i + 5], y[i : i + 5], config=config, local=local)
    assert state.queries == 200 and not state.flagged


def test_a_process_that_lost_its_detector_replays_the_log(backend):
    config = monitor.detector_config()
    writer, reader = monitor.LocalMonitor(), monitor.LocalMonitor(max_keys=1)
    monitor.observe(1, 5, _random(30), _uncertain(30), [0] * 30, config=config, local=writer)
    monitor.observe(1, 99, _random(1), _uncertain(1), [0], config=config, local=reader)
    monitor.observe(1, 98, _random(1), _uncertain(1), [0], config=config, local=reader)  # evicts key 99
    assert len(reader) == 1
    state = monitor.observe(1, 99, _random(1, seed=3), _uncertain(1), [0], config=config, local=reader)
    assert state.queries == 2


def test_the_log_starts_a_new_epoch_at_the_history_limit_even_when_flagged(backend, monkeypatch):
    monkeypatch.setattr(monitor, "HISTORY_LIMIT", 60)
    config = monitor.detector_config()
    first, second = monitor.LocalMonitor(), monitor.LocalMonitor()
    name = monitor._state_key(1, 5, config)
    x = _random(200)
    lengths, states = [], []
    for i in range(0, 200, 10):
        local = first if (i // 10) % 2 == 0 else second
        states.append(monitor.observe(1, 5, x[i : i + 10], _uncertain(10), [0] * 10, config=config, local=local))
        lengths.append(monitor.log_length(name))
    assert max(lengths) == 60 and lengths[6] == 10  # 6 batches fill the log; the 7th starts a new one
    assert states[5].flagged and states[5].queries == 60
    assert states[6].queries == 10 and not states[6].flagged  # the detector restarted in both processes
    assert states[7].queries == 20


def test_a_flushed_cache_makes_every_process_replay_from_the_start(backend):
    from django.core.cache import cache

    config = monitor.detector_config()
    local = monitor.LocalMonitor()
    monitor.observe(1, 5, _random(20), _uncertain(20), [0] * 20, config=config, local=local)
    cache.clear()
    state = monitor.observe(1, 5, _random(3), _uncertain(3), [0] * 3, config=config, local=local)
    assert state.queries == 3


def test_forget_restarts_the_stream_in_every_process(backend, deploy, issue):
    deployment = deploy()
    key, _ = issue(deployment)
    config = monitor.config_for(deployment)
    other = monitor.LocalMonitor()
    monitor.observe(deployment.pk, key.pk, _random(10), _uncertain(10), [0] * 10, config=config, local=other)
    assert monitor.stored_state(deployment, key.pk).queries == 10
    monitor.forget(deployment, key.pk)
    assert monitor.stored_state(deployment, key.pk) is None
    state = monitor.observe(deployment.pk, key.pk, _random(2), _uncertain(2), [0] * 2, config=config, local=other)
    assert state.queries == 2


def test_an_attacker_over_http_is_flagged_once_on_either_cache(backend, deploy, issue, post):
    deployment = deploy()
    key, secret = issue(deployment, owner="scraper")
    x = _random(200)
    for start in range(0, 200, 10):
        assert post(deployment, secret, {"inputs": x[start : start + 10].tolist()}).status_code == 200
    alert = MonitorAlert.objects.get(key=key)
    assert 1 <= alert.queries <= 200
    assert monitor.stored_state(deployment, key.pk).queries == 200


def test_a_batch_longer_than_lua_can_unpack_at_once_is_logged_whole(backend):
    config = monitor.detector_config()
    x = np.random.default_rng(1).uniform(0.0, 1.0, size=(2500, 4))
    state = monitor.observe(1, 12, x, None, [0] * 2500, config=config, local=monitor.LocalMonitor())
    assert state.queries == 2500 and monitor.log_length(monitor._state_key(1, 12, config)) == 2500


def test_equal_thresholds_name_one_log_however_they_are_written():
    as_int = monitor._state_key(1, 2, monitor.detector_config(prada_threshold=1, entropy_max_fraction=0.3))
    as_float = monitor._state_key(1, 2, monitor.detector_config(prada_threshold=1.0, entropy_max_fraction=0.3))
    assert as_int == as_float == "serve:monitor2:1:2:1.0:0.3"
    assert monitor._state_key(1, 2, monitor.detector_config(prada_threshold=0.9)) == "serve:monitor2:1:2:0.9:0.3"


@pytest.mark.parametrize("backend", ["redis"], indirect=True)  # the local-memory cache sets ttls with every write
def test_monitor_logs_always_carry_a_ttl_renewed_at_most_every_few_minutes(backend, clock, monkeypatch):
    import redis
    from django.core.cache import caches

    raw = redis.Redis.from_url(REDIS_URL)
    local = monitor.LocalMonitor()
    monkeypatch.setattr(monitor, "_renewed", {})
    for i in range(3):
        _serve(local, 21, _random(1), timestamp=float(i))
    _serve(local, 22, _random(1), timestamp=3.0)  # also appends key 21's parked answer
    names = raw.keys(caches["default"].make_key("serve:monitor*"))
    # both keys' epoch entries and key 21's log (key 22's answer is parked): each with a ttl
    assert len(names) == 3 and all(0 < raw.ttl(n) <= monitor.STATE_TTL for n in names)
    # a ttl run down (as days later) is renewed by the first exchange once RENEW_EVERY has passed, not before
    entry = caches["default"].make_key(monitor._state_key(1, 21, monitor.detector_config()) + ":epoch")
    log = entry + ":" + raw.get(entry).decode()
    for name in (entry, log):
        raw.expire(name, 100)
    _serve(local, 21, _random(1), timestamp=4.0)
    assert 0 < raw.ttl(entry) <= 100 and 0 < raw.ttl(log) <= 100
    monkeypatch.setattr(monitor, "RENEW_EVERY", 0.0)
    _serve(local, 21, _random(1), timestamp=5.0)
    assert raw.ttl(entry) > 100 and raw.ttl(log) > 100
    # a new epoch (the log at the history limit) starts with its ttl, whether or not this exchange renews
    monkeypatch.setattr(monitor, "RENEW_EVERY", 1e9)
    monkeypatch.setattr(monitor, "HISTORY_LIMIT", 6)
    for i in range(6, 10):
        _serve(local, 21, _random(1), timestamp=float(i))
    assert not raw.exists(log)  # replaced by the new epoch's log
    names = raw.keys(caches["default"].make_key("serve:monitor*"))
    assert len(names) == 4 and all(0 < raw.ttl(n) <= monitor.STATE_TTL for n in names)  # key 22's log is there now
