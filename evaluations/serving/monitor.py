"""Feeding each key's query stream to engine II's extraction detector: an append-only log, replayed per process.

The detector (:class:`~evaluations.engine.extraction.detection.ExtractionDetector`: PRADA, volume, entropy
and edits) keeps per-client state; here one client is one consumer key. Instead of moving the detector's
whole state through the cache (hundreds of KB per request, under a lock), each key has an append-only log
of compact query records in the cache (the flattened input, the model's probabilities, the label and the
time: a small header and numpy bytes, no pickle), and every web process keeps its own detector per key
plus the number of log records it has applied. A request makes one round trip: append the batch's records
and read every record from the process's applied index to the end (one Lua script on Redis, so the append
and the read are atomic and every process sees the whole stream in the same order, without a lock); the
process feeds the new records, in order, to its local detector.

Memory is bounded: when a key's log reaches ``HISTORY_LIMIT`` records (flagged or not) the next request
starts a new epoch (a fresh random id under the key's epoch entry names the log), and every process starts
that key's detector afresh. A flagged key stays flagged: its alert and enforced action live in the
database. Each process keeps at most ``MAX_LOCAL_KEYS`` detectors (least recently used dropped; a dropped
key is replayed from its log on its next request). A process that sees a new epoch, or a log shorter than
what it applied (the cache was flushed), replays from the start.

With the local-memory cache (no ``CACHE_URL``) the log is one list value in the cache, updated under a
process lock: the same code path, for a single process.
"""

from __future__ import annotations

import secrets
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.cache import caches

HISTORY_LIMIT = 2000
STATE_TTL = 7 * 24 * 3600
#: Local detectors per process. A key at the full history holds about 0.7 MB (digits), so 256 keys bound a
#: process near 180 MB; a key dropped from the LRU replays its log (up to 2,000 records, about a second) once.
MAX_LOCAL_KEYS = 256

_CONFIGS: dict[str, Any] = {}

# A record: timestamp (float64), label (int64), number of probabilities, number of input values, input kind
# (b"f": float32 values, b"i": int32 values of an integral input); then the probabilities (float32), then the
# input. Inputs are decoded to float64, as the endpoint parses them, so the detector judges them as before.
_HEADER = struct.Struct("<dqIIc")
_INT32 = np.iinfo(np.int32)


def detector_config(*, prada_threshold: float = 0.92, entropy_max_fraction: float = 0.3) -> Any:
    """The detector's thresholds: the engine's defaults (calibrated on digits) with the deployment's two."""
    from evaluations.engine.extraction.detection import DetectorConfig

    key = f"{prada_threshold}:{entropy_max_fraction}"
    if key not in _CONFIGS:
        _CONFIGS[key] = DetectorConfig(prada_threshold=prada_threshold, entropy_max_fraction=entropy_max_fraction)
    return _CONFIGS[key]


def _state_key(deployment_id: int, key_id: int, config: Any = None) -> str:
    # New thresholds start the key's stream afresh (a flag is sticky within one detector config).
    suffix = "" if config is None else f":{config.prada_threshold}:{config.entropy_max_fraction}"
    return f"serve:monitor:{deployment_id}:{key_id}{suffix}"


# --- records ------------------------------------------------------------------------------------------


def encode_records(x: Any, seen: Any, labels: Any, timestamp: float) -> list[bytes]:
    """One compact record per input of the batch."""
    batch = np.asarray(x).reshape(len(x), -1)
    probabilities = None if seen is None else np.asarray(seen, dtype=np.float32).reshape(len(x), -1)
    records = []
    for i in range(len(batch)):
        row = batch[i]
        integral = (
            row.size > 0
            and np.isfinite(row).all()
            and bool(np.all(row == np.round(row)))
            and row.min() >= _INT32.min
            and row.max() <= _INT32.max
        )
        values = row.astype(np.int32) if integral else row.astype(np.float32)
        probs = b"" if probabilities is None else probabilities[i].tobytes()
        n_probs = 0 if probabilities is None else probabilities.shape[1]
        header = _HEADER.pack(float(timestamp), int(labels[i]), n_probs, values.size, b"i" if integral else b"f")
        records.append(header + probs + values.tobytes())
    return records


def decode_record(record: bytes) -> tuple[np.ndarray, np.ndarray | None, int, float]:
    """``(x, probabilities or None, label, timestamp)`` of one record."""
    timestamp, label, n_probs, n_values, kind = _HEADER.unpack_from(record)
    offset = _HEADER.size
    probs = None
    if n_probs:
        probs = np.frombuffer(record, dtype=np.float32, count=n_probs, offset=offset).astype(np.float64)
        offset += 4 * n_probs
    dtype = np.int32 if kind == b"i" else np.float32
    x = np.frombuffer(record, dtype=dtype, count=n_values, offset=offset).astype(np.float64)
    return x, probs, int(label), float(timestamp)


# --- the shared log: Redis (one Lua script) or any other Django cache (one process) ----------------------

# KEYS[1]: the key's epoch entry (its log is "<KEYS[1]>:<epoch>"); ARGV: applied index, the caller's epoch,
# history limit, ttl, a fresh epoch id, then the records to append. Returns {epoch, first index returned,
# records from there to the end}.
_APPEND_AND_READ = """
local epoch = redis.call('GET', KEYS[1])
local from = tonumber(ARGV[1])
if not epoch then
  epoch = ARGV[5]
  redis.call('SET', KEYS[1], epoch)
end
local log = KEYS[1] .. ':' .. epoch
local length = redis.call('LLEN', log)
if #ARGV > 5 and length >= tonumber(ARGV[3]) then
  redis.call('DEL', log)
  epoch = ARGV[5]
  redis.call('SET', KEYS[1], epoch)
  log = KEYS[1] .. ':' .. epoch
  length = 0
end
if epoch ~= ARGV[2] or length < from then
  from = 0
end
for i = 6, #ARGV, 1000 do
  redis.call('RPUSH', log, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('EXPIRE', log, tonumber(ARGV[4]))
return {epoch, from, redis.call('LRANGE', log, from, -1)}
"""

_FORGET = """
local epoch = redis.call('GET', KEYS[1])
if epoch then
  redis.call('DEL', KEYS[1] .. ':' .. epoch)
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
"""

_scripts: dict[tuple[int, str], Any] = {}
_generic_lock = threading.Lock()


def _redis_client(backend: Any) -> Any | None:
    """The raw redis-py client of Django's Redis cache backend (None for any other backend)."""
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(backend, RedisCache):
        return None
    return backend._cache.get_client(None, write=True)


def _script(client: Any, source: str) -> Any:
    found = _scripts.get((id(client), source))
    if found is None:
        found = _scripts[(id(client), source)] = client.register_script(source)
    return found


def _new_epoch() -> str:
    return secrets.token_hex(6)


def append_and_read(key: str, records: list[bytes], applied: int, epoch: str | None) -> tuple[str, int, list[bytes]]:
    """Append ``records`` to the key's log and read it from ``applied`` (from 0 on a new epoch or a shorter log).

    Returns ``(epoch, first index read, records read)``; the records read end with the ones appended.
    """
    name = f"{key}:epoch"
    backend = caches["default"]
    client = _redis_client(backend)
    if client is not None:
        epoch_key = backend.make_key(name)
        args = [applied, epoch or "", HISTORY_LIMIT, STATE_TTL, _new_epoch(), *records]
        found, start, read = _script(client, _APPEND_AND_READ)(keys=[epoch_key], args=args, client=client)
        return found.decode() if isinstance(found, bytes) else str(found), int(start), list(read)
    with _generic_lock:
        current = backend.get(name)
        if current is None:
            current = _new_epoch()
        log = backend.get(f"{name}:{current}") or []
        if records and len(log) >= HISTORY_LIMIT:
            backend.delete(f"{name}:{current}")
            current, log = _new_epoch(), []
        start = 0 if current != epoch or len(log) < applied else applied
        if records:
            log = [*log, *records]
            backend.set(f"{name}:{current}", log, STATE_TTL)
        backend.set(name, current, STATE_TTL)
        return current, start, log[start:]


def log_length(key: str) -> int:
    """Records in the key's current log (for tests and the benchmark)."""
    name = f"{key}:epoch"
    backend = caches["default"]
    client = _redis_client(backend)
    if client is not None:
        epoch_key = backend.make_key(name)
        epoch = client.get(epoch_key)
        return 0 if epoch is None else int(client.llen(epoch_key + ":" + epoch.decode()))
    epoch = backend.get(name)
    return 0 if epoch is None else len(backend.get(f"{name}:{epoch}") or [])


# --- the per-process detectors --------------------------------------------------------------------------


@dataclass
class _Local:
    """One key's detector in this process, and how much of the key's log it has applied."""

    config: Any
    detector: Any = None
    epoch: str | None = None
    applied: int = 0
    state: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def restart(self) -> None:
        from evaluations.engine.extraction.detection import ExtractionDetector

        self.detector = ExtractionDetector(self.config)
        self.applied = 0
        self.state = None


class LocalMonitor:
    """The detectors of one process (an LRU of keys); two instances behave like two web processes."""

    def __init__(self, max_keys: int = MAX_LOCAL_KEYS) -> None:
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Local] = OrderedDict()
        self._lock = threading.Lock()

    def _entry(self, name: str, config: Any) -> _Local:
        with self._lock:
            entry = self._keys.get(name)
            if entry is None:
                entry = self._keys[name] = _Local(config)
                entry.restart()
                while len(self._keys) > self.max_keys:
                    self._keys.popitem(last=False)
            else:
                self._keys.move_to_end(name)
            return entry

    def sync(self, name: str, client_id: str, config: Any, records: list[bytes]) -> Any:
        """Append ``records`` to the key's log, apply everything new in order; the state after the last."""
        entry = self._entry(name, config)
        with entry.lock:
            epoch, start, read = append_and_read(name, records, entry.applied, entry.epoch)
            if epoch != entry.epoch or start != entry.applied:
                entry.restart()
                entry.epoch = epoch
            for record in read:
                x, probs, label, timestamp = decode_record(record)
                entry.state = entry.detector.observe(client_id, x, probs, label=label, timestamp=timestamp)
            entry.applied = start + len(read)
            return entry.state

    def drop(self, name: str) -> None:
        """Forget this process's detector of one key."""
        with self._lock:
            self._keys.pop(name, None)

    def clear(self) -> None:
        """Forget every detector of this process (their logs stay)."""
        with self._lock:
            self._keys.clear()

    def __len__(self) -> int:
        return len(self._keys)


_PROCESS = LocalMonitor()


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
) -> Any:
    """Log a batch in the key's stream; returns the :class:`DetectionState` after its last input.

    ``x`` is the batch ``(N, ...)``, ``seen`` the model's probabilities ``(N, C)`` (None to monitor labels
    only) and ``labels`` the labels the client got. ``local`` is this process's detectors (tests pass
    their own to stand for another process).
    """
    now = time.time() if timestamp is None else timestamp
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
    client = _redis_client(backend)
    if client is not None:
        _script(client, _FORGET)(keys=[backend.make_key(name)], args=[_new_epoch(), STATE_TTL], client=client)
    else:
        with _generic_lock:
            epoch = backend.get(name)
            if epoch is not None:
                backend.delete(f"{name}:{epoch}")
            backend.set(name, _new_epoch(), STATE_TTL)
    _PROCESS.drop(key)
