"""Feeding each key's query stream to engine II's extraction detector, with the state kept in the cache.

The detector (:class:`~evaluations.engine.extraction.detection.ExtractionDetector`: PRADA, volume and
entropy) keeps per-client state; here one client is one consumer key, and its state lives in the Django
cache (Redis in production, so every web process sees the whole stream). A short cache lock per key keeps
concurrent requests of one key from losing each other's updates. A key's state restarts after
``HISTORY_LIMIT`` unflagged queries, which bounds the per-request cost of a long-lived benign client.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache

HISTORY_LIMIT = 2000
STATE_TTL = 7 * 24 * 3600
LOCK_TTL = 5
LOCK_WAIT = 2.0

_CONFIGS: dict[str, Any] = {}


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


class _KeyLock:
    """A best-effort lock in the cache (``add`` is atomic on Redis and locmem)."""

    def __init__(self, name: str) -> None:
        self.name = f"{name}:lock"
        self.held = False

    def __enter__(self) -> _KeyLock:
        deadline = time.monotonic() + LOCK_WAIT
        while not cache.add(self.name, 1, LOCK_TTL):
            if time.monotonic() > deadline:
                return self  # a crashed holder: its lock expires; go on rather than refuse the client
            time.sleep(0.002)
        self.held = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.held:
            cache.delete(self.name)


def observe(
    deployment_id: int,
    key_id: int,
    x: Any,
    seen: Any,
    labels: Any,
    *,
    config: Any = None,
    timestamp: float | None = None,
) -> Any:
    """Feed a batch to the key's detector state; returns the :class:`DetectionState` after its last input.

    ``x`` is the batch ``(N, ...)``, ``seen`` the model's probabilities ``(N, C)`` (None to monitor labels
    only) and ``labels`` the labels the client got.
    """
    from evaluations.engine.extraction.detection import ExtractionDetector

    name = _state_key(deployment_id, key_id, config)
    now = time.time() if timestamp is None else timestamp
    with _KeyLock(name):
        detector = ExtractionDetector(config or detector_config())
        client = cache.get(name)
        if client is not None and client.first_flagged_at is None and client.queries >= HISTORY_LIMIT:
            client = None
        if client is not None:
            detector.restore_client(str(key_id), client)
        state = None
        for i in range(len(x)):
            state = detector.observe(
                str(key_id),
                x[i],
                None if seen is None else seen[i],
                label=int(labels[i]),
                timestamp=now,
            )
        cache.set(name, detector.client_state(str(key_id)), STATE_TTL)
    return state


def config_for(deployment: Any) -> Any:
    """The detector config of a deployment."""
    return detector_config(
        prada_threshold=deployment.monitor_prada_threshold,
        entropy_max_fraction=deployment.monitor_entropy_max_fraction,
    )


def stored_state(deployment: Any, key_id: int) -> Any:
    """The key's stored detector state under the deployment's current thresholds (None before any query)."""
    return cache.get(_state_key(deployment.pk, key_id, config_for(deployment)))


def forget(deployment: Any, key_id: int) -> None:
    """Drop a key's monitor state, so its stream is judged afresh."""
    cache.delete(_state_key(deployment.pk, key_id, config_for(deployment)))
