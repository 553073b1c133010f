"""Feeding each key's query stream to engine II's extraction detector: an append-only log, replayed per process.

The detector (:class:`~evaluations.engine.extraction.detection.ExtractionDetector`: PRADA, volume, entropy
and edits) keeps per-client state; here one client is one consumer key. Instead of moving the detector's
whole state through the cache (hundreds of KB per request, under a lock), each key has an append-only log
of compact query records in the cache (the flattened input, the model's probabilities, the label, the time and
the judge's measurements: a small header and numpy bytes, no pickle), and every web process keeps its own
detector per key plus the number of log records it has read.

A request of a monitored deployment makes one round trip, its rate-limit check: one Lua script (atomic)
appends the records of this process's previous monitored answer, charges the key's rate-limit windows (a
refusal stops there: nothing of the refused request is logged) and reads the key's log from the process's
index to the end; the process judges the records read in the log's order, but for its own, which it judged
when it answered them. Once the model has answered, the process judges the request's records at once (the
state the request gets includes them: an alert is raised by the request that earns it) and parks them, to
be appended by its next exchange with the log, each carrying what judging it measured (the detector's
:class:`~evaluations.engine.extraction.detection.QueryMeasurement`). The other processes replay a measured
record instead of judging it (no pass over the history, no Shapiro-Wilk test), so every record is measured
once, by the process that answered it. Every process so takes in every record of the stream exactly
once, and sees it whole but for the last answer of each other process: under load, a few milliseconds
behind; a process that stops serving monitored requests keeps its last answer parked until it serves one
(or until its stream is read through :func:`stored_state`, or it exits gracefully: an ``atexit`` hook appends
it), and loses it only if it is killed first. Requests of one
key in flight in two processes at once may be judged in a different order by each. :func:`observe` without
a ticket (tests, the benchmark) appends a batch and reads the log in one round trip, as the endpoint did
before it shared the rate limiter's.

Memory is bounded: when a key's log reaches ``HISTORY_LIMIT`` records (flagged or not) the next append
starts a new epoch (a fresh random id under the key's epoch entry names the log), and every process starts
that key's detector afresh. A flagged key stays flagged: its alert and enforced action live in the
database. Each process keeps at most ``MAX_LOCAL_KEYS`` detectors (least recently used dropped; a dropped
key is replayed from its log on its next request). A process that sees a new epoch, or a log shorter than
what it read (the cache was flushed), replays from the start; parked records of an epoch that is gone
(flushed, or :func:`forget`) are dropped.

With the local-memory cache (no ``CACHE_URL``) the log is one list value in the cache, updated under a
process lock: the same steps, for a single process.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import os
import secrets
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.cache import caches

from evaluations.serving import ratelimit, rediscache

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 2000
STATE_TTL = 7 * 24 * 3600
#: How often each process renews a key's log ttls (seconds): a log in use can only expire after STATE_TTL less this.
RENEW_EVERY = 600.0
#: Local detectors per process. A key at the full history holds about 0.7 MB (digits), so 256 keys bound a
#: process near 180 MB; a key dropped from the LRU replays its log (up to 2,000 records, about a second) once.
MAX_LOCAL_KEYS = 256

_CONFIGS: dict[tuple[float, float], Any] = {}

# A record: timestamp (float64), label (int64), number of probabilities, number of input values, input kind
# (b"f": float32 values, b"i": int32 values of an integral input), whether the answering process judged it and,
# if so, what it measured (the detector's QueryMeasurement: PRADA distance, NaN for None; edit and uncertain,
# -1 for None); then the probabilities (float32), then the input. Inputs are decoded to float64, as the endpoint
# parses them, so the detector judges them as before.
_HEADER = struct.Struct("<dqIIc?dbb")
_INT32 = np.iinfo(np.int32)
#: Part of every log's name: records of another layout (an earlier release) live under other names and expire.
_LOG_VERSION = "2"


def detector_config(*, prada_threshold: float = 0.92, entropy_max_fraction: float = 0.3) -> Any:
    """The detector's thresholds: the engine's defaults (calibrated on digits) with the deployment's two."""
    from evaluations.engine.extraction.detection import DetectorConfig

    key = (prada_threshold, entropy_max_fraction)
    found = _CONFIGS.get(key)
    if found is None:
        found = _CONFIGS[key] = DetectorConfig(
            prada_threshold=prada_threshold, entropy_max_fraction=entropy_max_fraction
        )
    return found


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _state_key(deployment_id: int, key_id: int, config: Any = None) -> str:
    # New thresholds start the key's stream afresh (a flag is sticky within one detector config).
    suffix = ""
    if config is not None:
        thresholds = (config.prada_threshold, config.entropy_max_fraction)
        suffix = _SUFFIXES.get(thresholds)
        if suffix is None:  # formatting floats costs more than the rest of the name: once per thresholds
            # as floats, so that thresholds 1 and 1.0 (equal, so one cached config) name one log in every process
            suffix = _SUFFIXES[thresholds] = f":{_float(thresholds[0])}:{_float(thresholds[1])}"
    return f"serve:monitor{_LOG_VERSION}:{deployment_id}:{key_id}{suffix}"


_SUFFIXES: dict[tuple[Any, Any], str] = {}


# --- records ------------------------------------------------------------------------------------------


def encode_records(x: Any, seen: Any, labels: Any, timestamp: float) -> list[bytes]:
    """One compact record per input of the batch (not yet judged: see :func:`with_measurement`)."""
    return [record for record, _, _ in _encoded(x, seen, labels, timestamp)]


def _encoded(x: Any, seen: Any, labels: Any, timestamp: float) -> list[tuple[bytes, np.ndarray, np.ndarray | None]]:
    """Per input of the batch: its record, and the input and probabilities as the record holds them (float32 or int32
    values, float32 probabilities), so the process that answered judges exactly what the others will replay."""
    batch = np.asarray(x).reshape(len(x), -1)
    probabilities = None if seen is None else np.asarray(seen, dtype=np.float32).reshape(len(x), -1)
    encoded = []
    for i in range(len(batch)):
        row = batch[i]
        # cheapest test first: a sum that is not a whole number (most float inputs; NaNs and infinities too) rules
        # the row out in one reduction
        integral = (
            row.size > 0
            and float(row.sum()).is_integer()
            and bool((row == np.round(row)).all())
            and row.min() >= _INT32.min
            and row.max() <= _INT32.max
        )
        values = row.astype(np.int32) if integral else row.astype(np.float32)
        probs = None if probabilities is None else probabilities[i]
        n_probs = 0 if probs is None else probs.size
        kind = b"i" if integral else b"f"
        header = _HEADER.pack(float(timestamp), int(labels[i]), n_probs, values.size, kind, False, math.nan, -1, -1)
        record = header + (b"" if probs is None else probs.tobytes()) + values.tobytes()
        encoded.append((record, values, probs))
    return encoded


def with_measurement(record: bytes, measured: Any) -> bytes:
    """The record, marked as judged with the detector's :class:`QueryMeasurement` ``measured``."""
    timestamp, label, n_probs, n_values, kind, _, _, _, _ = _HEADER.unpack_from(record)
    header = _HEADER.pack(
        timestamp,
        label,
        n_probs,
        n_values,
        kind,
        True,
        math.nan if measured.distance is None else measured.distance,
        _flag(measured.edit),
        _flag(measured.uncertain),
    )
    return header + record[_HEADER.size :]


def _measurement() -> Any:
    """The engine's QueryMeasurement class (imported on first use: the web process imports no engine before it
    serves a prediction)."""
    global _QUERY_MEASUREMENT
    if _QUERY_MEASUREMENT is None:
        from evaluations.engine.extraction.detection import QueryMeasurement

        _QUERY_MEASUREMENT = QueryMeasurement
    return _QUERY_MEASUREMENT


_QUERY_MEASUREMENT: Any = None


def _flag(value: bool | None) -> int:
    return -1 if value is None else int(value)


def decode_record(record: bytes) -> tuple[np.ndarray, np.ndarray | None, int, float, Any]:
    """``(x, probabilities or None, label, timestamp, QueryMeasurement or None)`` of one record, as float64."""
    x, probs, label, timestamp, measured = _stored(record)
    return x.astype(np.float64), None if probs is None else probs.astype(np.float64), label, timestamp, measured


def _stored(record: bytes) -> tuple[np.ndarray, np.ndarray | None, int, float, Any]:
    """:func:`decode_record` with the input and probabilities as the record stores them (float32 or int32 values,
    float32 probabilities: read-only views of its bytes)."""
    timestamp, label, n_probs, n_values, kind, judged, distance, edit, uncertain = _HEADER.unpack_from(record)
    probs = None
    if n_probs:
        probs = np.frombuffer(record, dtype=np.float32, count=n_probs, offset=_HEADER.size)
    dtype = np.int32 if kind == b"i" else np.float32
    x = np.frombuffer(record, dtype=dtype, count=n_values, offset=_HEADER.size + 4 * n_probs)
    measured = _measured(distance, edit, uncertain) if judged else None
    return x, probs, int(label), float(timestamp), measured


def _measured(distance: float, edit: int, uncertain: int) -> Any:
    """The QueryMeasurement a judged record's header holds."""
    return _measurement().of(
        None if math.isnan(distance) else distance,
        None if edit < 0 else bool(edit),
        None if uncertain < 0 else bool(uncertain),
    )


# --- the shared log: Redis (one Lua script) or any other Django cache (one process) ----------------------

# One exchange with a key's log, atomic. KEYS[1]: the key's epoch entry (its log is "<KEYS[1]>:<epoch>");
# KEYS[2..4]: the rate-limit windows, when the exchange charges them; then the epoch entries of the parked
# groups. ARGV: 1 the caller's applied index, 2 its epoch, 3 history limit, 4 ttl, 5 a fresh epoch id, 6 flags (1:
# charge the windows, 2: renew ttls), 7..13 (when charging) n and each window's limit and ttl; then the number of parked
# groups and, per group, its epoch, its number of records and the records; then the number of records to
# append now and the records. In that order: the parked groups are appended (each to its own key's log, only
# if that log is still in the group's epoch); the windows are charged (a refusal stops there: nothing read,
# nothing appended now); the records are appended; the key's log is read from the applied index (from 0 on a
# new epoch or a log shorter than that index). A log at the history limit starts a new epoch before an append.
# An epoch entry or log gets the ttl when it is created; with flag 2, every one written or read has it renewed,
# once (each process asks at most every RENEW_EVERY seconds per key). Returns one flat list: {refused (0 or the
# window), epoch, first index read, number of parked groups, then per group its epoch and the index its first
# record got ("", -1 for a group whose stream is gone), then the records read}.
_EXCHANGE = (
    ratelimit.CHECK_AND_CHARGE_LUA
    + """
local limit, ttl, fresh = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local flags = tonumber(ARGV[6])
local charging, renewing = flags % 2 == 1, flags >= 2
local touched = {}

local function append(epoch_key, epoch, first, last, fresh_epoch)
  local log = epoch_key .. ':' .. epoch
  local length = redis.call('LLEN', log)
  if length >= limit then
    redis.call('DEL', log)
    epoch = fresh_epoch
    redis.call('SET', epoch_key, epoch, 'EX', ttl)
    log = epoch_key .. ':' .. epoch
    length = 0
  end
  for i = first, last, 1000 do
    redis.call('RPUSH', log, unpack(ARGV, i, math.min(i + 999, last)))
  end
  if length == 0 then
    redis.call('EXPIRE', log, ttl)
  end
  touched[epoch_key] = log
  return epoch, length
end

local function refresh()
  if not renewing then
    return
  end
  for epoch_key, log in pairs(touched) do
    redis.call('EXPIRE', epoch_key, ttl)
    redis.call('EXPIRE', log, ttl)
  end
end

local epoch = redis.call('GET', KEYS[1])
local length = epoch and redis.call('LLEN', KEYS[1] .. ':' .. epoch) or 0
local at = charging and 14 or 7
local first_parked = charging and 5 or 2
local groups = tonumber(ARGV[at])
local flushed = {}
for group = 1, groups do
  local epoch_key, want, count = KEYS[first_parked + group - 1], ARGV[at + 1], tonumber(ARGV[at + 2])
  local own_key = epoch_key == KEYS[1]
  local current
  if own_key then current = epoch else current = redis.call('GET', epoch_key) end
  if current == want then
    local now_epoch, start = append(epoch_key, want, at + 3, at + 2 + count, fresh .. ':' .. group)
    if own_key then epoch = now_epoch end
    flushed[#flushed + 1] = now_epoch
    flushed[#flushed + 1] = start
  else
    flushed[#flushed + 1] = ''
    flushed[#flushed + 1] = -1
  end
  at = at + 2 + count
end
at = at + 1
if charging then
  local refused = check_and_charge(2, 7)
  if refused ~= 0 then
    refresh()
    local reply = {refused, '', 0, groups}
    for i = 1, #flushed do reply[#reply + 1] = flushed[i] end
    return reply
  end
end
if not epoch then
  epoch = fresh
  redis.call('SET', KEYS[1], epoch, 'EX', ttl)
end
local now = tonumber(ARGV[at])
if now > 0 then
  epoch = append(KEYS[1], epoch, at + 1, at + now, fresh)
end
local from = tonumber(ARGV[1])
if epoch ~= ARGV[2] or length < from then
  from = 0
end
local log = KEYS[1] .. ':' .. epoch
touched[KEYS[1]] = log
refresh()
local reply = {0, epoch, from, groups}
for i = 1, #flushed do reply[#reply + 1] = flushed[i] end
local read = redis.call('LRANGE', log, from, -1)
for i = 1, #read do reply[#reply + 1] = read[i] end
return reply
"""
)

_FORGET = """
local epoch = redis.call('GET', KEYS[1])
if epoch then
  redis.call('DEL', KEYS[1] .. ':' .. epoch)
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
"""

_generic_lock = threading.Lock()


class _EpochIds:
    """Fresh epoch ids: a random prefix per process (drawn again in a forked child) and a counter. Every exchange
    sends one, in case it must start an epoch, so it costs a counter step, not a read of the system's random source.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = secrets.token_hex(6)
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):x}"


_new_epoch = _EpochIds()
os.register_at_fork(after_in_child=_new_epoch.reset)


@dataclass
class _Parked:
    """Records this process answered and judged, not yet in the key's shared log."""

    name: str
    epoch: str | None
    generation: int
    records: list[bytes]


@dataclass
class _Exchange:
    """What one exchange with a key's log answered (see ``_EXCHANGE``)."""

    refused: int
    flushed: list[tuple[str, int] | None]
    epoch: str = ""
    start: int = 0
    read: list[bytes] = field(default_factory=list)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _exchange(
    name: str,
    applied: int,
    epoch: str | None,
    *,
    parked: list[_Parked] | None = None,
    records: list[bytes] | None = None,
    charge: tuple[list[ratelimit.Window], int] | None = None,
) -> _Exchange:
    """One round trip with the log of key ``name`` (``_EXCHANGE`` on Redis; the same steps under a process lock
    on any other cache): append the ``parked`` groups, charge ``charge = (windows, n)``, append ``records``,
    read from ``applied``."""
    parked, records = parked or [], records or []
    backend = caches["default"]
    if rediscache.is_redis(backend):
        keys = [backend.make_key(f"{name}:epoch")]
        args: list[Any] = [applied, epoch or "", HISTORY_LIMIT, STATE_TTL, _new_epoch()]
        renew = 2 if _renewal_due(name) else 0
        if charge is None:
            args.append(renew)
        else:
            window_keys, window_args = ratelimit.script_keys_and_args(backend, *charge)
            keys += window_keys
            args += [1 + renew, *window_args]
        args.append(len(parked))
        for group in parked:
            keys.append(backend.make_key(f"{group.name}:epoch"))
            args += [group.epoch or "", len(group.records), *group.records]
        args += [len(records), *records]
        reply = rediscache.run(backend, _EXCHANGE, keys, args)
        read_from = 4 + 2 * int(reply[3])
        pairs = reply[4:read_from]
        flushed = [
            None if int(start) < 0 else (_text(found), int(start))
            for found, start in zip(pairs[::2], pairs[1::2], strict=True)
        ]
        if reply[0]:
            return _Exchange(refused=int(reply[0]), flushed=flushed)
        return _Exchange(0, flushed, _text(reply[1]), int(reply[2]), reply[read_from:])
    with _generic_lock:
        before = backend.get(f"{name}:epoch")
        length = 0 if before is None else len(backend.get(f"{name}:epoch:{before}") or [])
        flushed = [_generic_append(group.name, group.epoch, group.records) for group in parked]
        refused = 0 if charge is None else ratelimit.charge(*charge)
        if refused:
            return _Exchange(refused=refused, flushed=flushed)
        current = backend.get(f"{name}:epoch") or _new_epoch()
        backend.set(f"{name}:epoch", current, STATE_TTL)
        if records:
            current = _generic_append(name, current, records)[0]  # type: ignore[index]
        start = 0 if current != epoch or length < applied else applied
        return _Exchange(0, flushed, current, start, (backend.get(f"{name}:epoch:{current}") or [])[start:])


def _renewal_due(name: str) -> bool:
    """Whether this exchange with key ``name``'s log should renew the ttls it touches: at most once every
    ``RENEW_EVERY`` seconds per key and process (a ttl of days needs no renewal per request, and it costs the
    script two EXPIRE calls per key touched); the first exchange of a key in a process renews."""
    now = time.monotonic()
    if now - _renewed.get(name, -math.inf) < RENEW_EVERY:
        return False
    if len(_renewed) >= 100_000:
        _renewed.clear()
    _renewed[name] = now
    return True


#: Per key name, when this process last asked an exchange to renew the ttls (time.monotonic()).
_renewed: dict[str, float] = {}


def _generic_append(name: str, epoch: str | None, records: list[bytes]) -> tuple[str, int] | None:
    """``append`` of ``_EXCHANGE`` on any other cache (under ``_generic_lock``); None when the epoch is gone."""
    backend = caches["default"]
    if epoch is None or backend.get(f"{name}:epoch") != epoch:
        return None
    log = backend.get(f"{name}:epoch:{epoch}") or []
    if len(log) >= HISTORY_LIMIT:
        backend.delete(f"{name}:epoch:{epoch}")
        epoch, log = _new_epoch(), []
    start = len(log)
    backend.set(f"{name}:epoch:{epoch}", [*log, *records], STATE_TTL)
    backend.set(f"{name}:epoch", epoch, STATE_TTL)
    return epoch, start


def log_length(key: str) -> int:
    """Records in the key's current log (for tests and the benchmark)."""
    name = f"{key}:epoch"
    backend = caches["default"]
    if rediscache.is_redis(backend):
        client = backend._cache.get_client(None)
        epoch_key = backend.make_key(name)
        epoch = client.get(epoch_key)
        return 0 if epoch is None else int(client.llen(epoch_key + ":" + epoch.decode()))
    epoch = backend.get(name)
    return 0 if epoch is None else len(backend.get(f"{name}:{epoch}") or [])


# --- the per-process detectors --------------------------------------------------------------------------

_generations = itertools.count(1)


@dataclass
class _Local:
    """One key's detector in this process, how much of the key's log it has read, and which records of the log
    it judged before they were there (this process's own, parked: skipped when read)."""

    config: Any
    client_id: str
    detector: Any = None
    epoch: str | None = None
    applied: int = 0
    generation: int = 0
    own: list[tuple[str, int, int]] = field(default_factory=list)  # (epoch, first index, count)

    @property
    def state(self) -> Any:
        """The key's :class:`DetectionState` after the latest record taken in (None before any)."""
        return None if self.detector is None else self.detector.state(self.client_id)

    def restart(self) -> None:
        self.detector = None  # made by the first record judged (a refused request needs no torch import)
        self.applied = 0
        self.generation = next(_generations)
        self.own.clear()

    def _detector(self) -> Any:
        if self.detector is None:
            from evaluations.engine.extraction.detection import ExtractionDetector

            self.detector = ExtractionDetector(self.config)
        return self.detector

    def judge(self, record: bytes) -> bytes:
        """Take in one record: replayed from its measurement when another process judged it, else judged here.
        Returns the record marked with the measurement."""
        x, probs, label, timestamp, measured = _stored(record)
        if measured is not None:
            self._take(x, probs, label, timestamp, measured)
            return record
        return with_measurement(record, self._take(x, probs, label, timestamp))

    def judge_answered(self, record: bytes, x: np.ndarray, probs: np.ndarray | None) -> bytes:
        """Judge a record this process just encoded, from the arrays it encoded (``x`` and ``probs`` as the record
        holds them: no decoding); returns it marked with the measurement."""
        timestamp, label = _HEADER.unpack_from(record)[:2]
        return with_measurement(record, self._take(x, probs, label, timestamp))

    def _take(self, x: np.ndarray, probs: np.ndarray | None, label: int, timestamp: float, measured: Any = None) -> Any:
        """Judge (``measured`` None) or replay one record's arrays as the record stores them. Float inputs were checked
        when the endpoint parsed them: the detector takes them as they are (``take_checked``); integral ones (int32)
        and token ids go through its checks as float64."""
        detector = self._detector()
        if x.dtype == np.float32 and self.config.inputs != "tokens":
            predicted = label if probs is None else int(probs.argmax())
            return detector.take_checked(self.client_id, x, probs, predicted, measured, timestamp=timestamp)
        p64 = None if probs is None else probs.astype(np.float64)
        return detector.take(self.client_id, x.astype(np.float64), p64, measured, label=label, timestamp=timestamp)

    def read(self, epoch: str, start: int, records: list[bytes]) -> None:
        """Judge the records read from ``start`` of the log of ``epoch``, in order, but for this process's own."""
        if epoch != self.epoch or start != self.applied:
            self.restart()
            self.epoch = epoch
        for index, record in enumerate(records, start=start):
            if not any(e == epoch and first <= index < first + count for e, first, count in self.own):
                self.judge(record)
        self.applied = start + len(records)
        self.own = [(e, first, count) for e, first, count in self.own if e == epoch and first + count > self.applied]


@dataclass
class Ticket:
    """A monitored request between its rate-limit check and its answer (see :meth:`LocalMonitor.begin`)."""

    monitor: LocalMonitor
    name: str
    entry: _Local

    @property
    def config(self) -> Any:
        """The key's detector config."""
        return self.entry.config

    def charge(self, windows: list[ratelimit.Window], n: int) -> ratelimit.Refusal | None:
        """Charge ``n`` inputs to the rate-limit ``windows`` (or refuse) and catch up on the key's log, in one
        round trip (``ratelimit.consume(..., monitor=ticket)`` calls this)."""
        return self.monitor.exchange(self, (windows, n))


class LocalMonitor:
    """The detectors of one process (an LRU of keys); two instances behave like two web processes.

    One lock serialises the process's exchanges with the shared log (threads of a threaded server wait for
    each other's round trips), so that the parked records and the indices of the records read stay consistent.
    """

    def __init__(self, max_keys: int = MAX_LOCAL_KEYS) -> None:
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Local] = OrderedDict()
        self._parked: list[_Parked] = []
        self._lock = threading.RLock()

    def _entry(self, name: str, client_id: str, config: Any) -> _Local:
        entry = self._keys.get(name)
        if entry is None:
            entry = self._keys[name] = _Local(config, client_id)
            entry.restart()
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(name)
        return entry

    def _exchange(self, name: str, entry: _Local, **kwargs: Any) -> _Exchange:
        parked, self._parked = self._parked, []
        try:
            result = _exchange(name, entry.applied, entry.epoch, parked=parked, **kwargs)
        except BaseException:
            self._parked = parked + self._parked
            raise
        for group, flushed in zip(parked, result.flushed, strict=True):
            owner = self._keys.get(group.name)
            # the detector that judged the group is still this key's: it must not judge it again
            if flushed is not None and owner is not None and owner.generation == group.generation:
                owner.own.append((flushed[0], flushed[1], len(group.records)))
        if not result.refused:
            entry.read(result.epoch, result.start, result.read)
        return result

    def sync(self, name: str, client_id: str, config: Any, records: list[bytes]) -> Any:
        """Append ``records`` to the key's log and judge everything new in the log's order; the state after the
        last record (one round trip, which also appends this process's parked records)."""
        with self._lock:
            entry = self._entry(name, client_id, config)
            self._exchange(name, entry, records=records)
            return entry.state

    def begin(self, name: str, client_id: str, config: Any) -> Ticket:
        """Start a request of a monitored deployment: its rate-limit check (:meth:`Ticket.charge`) also reads the
        key's log, so judging its answer (:meth:`finish`) needs no round trip of its own."""
        with self._lock:
            return Ticket(self, name, self._entry(name, client_id, config))

    def exchange(self, ticket: Ticket, charge: tuple[list[ratelimit.Window], int]) -> ratelimit.Refusal | None:
        """One round trip: append this process's parked records, charge the windows, read the key's log."""
        with self._lock:
            result = self._exchange(ticket.name, ticket.entry, charge=charge)
            return ratelimit.refusal(charge[0], result.refused)

    def finish(self, ticket: Ticket, encoded: list[tuple[bytes, np.ndarray, np.ndarray | None]]) -> Any:
        """Judge the request's answered records now and park them for this process's next exchange."""
        with self._lock:
            entry = ticket.entry
            records = [entry.judge_answered(record, x, probs) for record, x, probs in encoded]
            self._parked.append(_Parked(ticket.name, entry.epoch, entry.generation, records))
            return entry.state

    def flush(self) -> None:
        """Append this process's parked records to their logs now (one exchange; nothing when none are parked).

        Registered with ``atexit`` for the process's own monitor, so a web worker that stops gracefully (gunicorn's
        restart after ``max_requests``, a deploy) leaves none of its answers out of the shared logs.
        """
        with self._lock:
            for group in reversed(self._parked):
                entry = self._keys.get(group.name)
                if entry is not None:
                    self._exchange(group.name, entry)
                    return
            self._parked.clear()  # their detectors are gone (dropped keys): nothing can append them consistently

    def drop(self, name: str) -> None:
        """Forget this process's detector of one key."""
        with self._lock:
            self._keys.pop(name, None)

    def discard_parked(self, name: str) -> None:
        """Forget this process's parked records of one key (its stream restarts)."""
        with self._lock:
            self._parked = [group for group in self._parked if group.name != name]

    def clear(self) -> None:
        """Forget every detector and parked record of this process (the logs stay)."""
        with self._lock:
            self._keys.clear()
            self._parked.clear()

    def __len__(self) -> int:
        return len(self._keys)


_PROCESS = LocalMonitor()


def _flush_at_exit() -> None:
    try:
        _PROCESS.flush()
    except Exception:  # the cache may be gone at shutdown: the parked answers are lost, and the log says so
        logger.warning("serving monitor: could not append this process's last answers at exit", exc_info=True)


atexit.register(_flush_at_exit)


def begin(deployment_id: int, key_id: int, *, config: Any, local: LocalMonitor | None = None) -> Ticket:
    """A :class:`Ticket` for a request of a monitored deployment; pass it to ``ratelimit.consume(monitor=...)``
    and, once answered, to :func:`observe`."""
    monitor = _PROCESS if local is None else local
    return monitor.begin(_state_key(deployment_id, key_id, config), str(key_id), config)


def observe(
    deployment_id: int,
    key_id: int,
    x: Any,
    seen: Any,
    labels: Any,
    *,
    config: Any = None,
    timestamp: float | None = None,
    local: LocalMonitor | None = None,
    ticket: Ticket | None = None,
) -> Any:
    """Log a batch in the key's stream; returns the :class:`DetectionState` after its last input.

    ``x`` is the batch ``(N, ...)``, ``seen`` the model's probabilities ``(N, C)`` (None to monitor labels
    only) and ``labels`` the labels the client got. ``local`` is this process's detectors (tests pass
    their own to stand for another process). With the request's ``ticket`` (whose rate-limit check read the
    log) the batch is judged at once and parked, no round trip; without, it is appended and the log read.
    """
    now = time.time() if timestamp is None else timestamp
    if ticket is not None:
        return ticket.monitor.finish(ticket, _encoded(x, seen, labels, now))
    records = encode_records(x, seen, labels, now)
    monitor = _PROCESS if local is None else local
    return monitor.sync(_state_key(deployment_id, key_id, config), str(key_id), config or detector_config(), records)


def config_for(deployment: Any) -> Any:
    """The detector config of a deployment."""
    return detector_config(
        prada_threshold=deployment.monitor_prada_threshold,
        entropy_max_fraction=deployment.monitor_entropy_max_fraction,
    )


def stored_state(deployment: Any, key_id: int, *, local: LocalMonitor | None = None) -> Any:
    """The key's current :class:`DetectionState` under the deployment's current thresholds (None before any query).

    Replays the key's log in this process when needed.
    """
    config = config_for(deployment)
    monitor = _PROCESS if local is None else local
    return monitor.sync(_state_key(deployment.pk, key_id, config), str(key_id), config, [])


def forget(deployment: Any, key_id: int) -> None:
    """Drop a key's monitor log, so its stream is judged afresh (every process restarts on the new epoch)."""
    key = _state_key(deployment.pk, key_id, config_for(deployment))
    name = f"{key}:epoch"
    backend = caches["default"]
    if rediscache.is_redis(backend):
        rediscache.run(backend, _FORGET, [backend.make_key(name)], [_new_epoch(), STATE_TTL])
    else:
        with _generic_lock:
            epoch = backend.get(name)
            if epoch is not None:
                backend.delete(f"{name}:{epoch}")
            backend.set(name, _new_epoch(), STATE_TTL)
    _PROCESS.discard_parked(key)
    _PROCESS.drop(key)
