"""Sampled query logs: input hashes by default, full inputs only when the deployment opts in; retention; export.

A request is logged with the deployment's sample probability; besides, the monitor's scores are kept at
the query that flagged a key and when its count passes a multiple of ``SCORE_EVERY``, unless the process
answering wrote a row for that key within the ``SCORE_EVERY`` queries before (every row carries the scores), so
the monitoring page can chart each client's detector scores whatever the sample rate, with a point at least
every ``2 * SCORE_EVERY`` queries.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
from django.db.models import F, QuerySet
from django.utils import timezone

from evaluations.serving.models import ConsumerKey, Deployment, QueryLog
from garrison.core.compiled import CompiledInsert

SCORE_EVERY = 20
EXPORT_FIELDS = [
    "id",
    "created_at",
    "key_prefix",
    "key_owner",
    "batch_size",
    "labels",
    "policy",
    "latency_ms",
    "key_queries",
    "prada_w",
    "uncertain_fraction",
    "volume_in_window",
    "flagged",
    "input_sha256",
    "inputs",
]

_random = random.Random()  # noqa: S311 - sampling, not security
#: Per key (by its hash: unique for good, unlike a row id), its query count at the latest row this process wrote for
#: it. Bounded: cleared when it grows past ``_TRACKED_KEYS``, which costs at most one extra snapshot per key.
_last_row: dict[str, int] = {}
_TRACKED_KEYS = 10_000
#: Sampled requests and score snapshots insert a row each: compiled once per process (garrison.core.compiled).
_INSERT = CompiledInsert(QueryLog)


def input_hashes(x: np.ndarray) -> list[str]:
    """SHA-256 of each input's float64 bytes (C order)."""
    data = np.ascontiguousarray(x, dtype=np.float64)
    return [hashlib.sha256(row.tobytes()).hexdigest() for row in data]


def maybe_log(
    *,
    deployment: Deployment,
    key: ConsumerKey,
    x: np.ndarray,
    labels: Any,
    policy: dict[str, Any],
    state: Any,
    latency_ms: float,
) -> QueryLog | None:
    """Write a query log when the request is sampled, a score snapshot is due, or the monitor just flagged."""
    queries = state.queries if state is not None else 0
    n = int(x.shape[0])
    snapshot_due = (
        state is not None
        and (queries // SCORE_EVERY) > ((queries - n) // SCORE_EVERY)
        # a count below the last row's is a stream started afresh (an action lifted, new thresholds, a new epoch)
        and not 0 <= queries - _last_row.get(key.key_hash, -SCORE_EVERY) < SCORE_EVERY
    )
    just_flagged = (
        state is not None
        and state.flagged
        and state.first_flagged_at is not None
        and (queries - n < state.first_flagged_at <= queries)
    )
    sampled = deployment.log_sample_rate > 0 and _random.random() < deployment.log_sample_rate
    if not (sampled or snapshot_due or just_flagged):
        return None
    if state is not None:
        if len(_last_row) >= _TRACKED_KEYS:
            _last_row.clear()
        _last_row[key.key_hash] = queries
    return _INSERT.save(
        QueryLog(
            deployment=deployment,
            key=key,
            batch_size=n,
            input_sha256=input_hashes(x),
            inputs=x.tolist() if deployment.log_full_inputs else None,
            labels=[int(label) for label in labels],
            policy=policy,
            latency_ms=latency_ms,
            key_queries=queries,
            prada_w=None if state is None else state.prada_w,
            uncertain_fraction=None if state is None else state.uncertain_fraction,
            volume_in_window=None if state is None else state.volume_in_window,
            flagged=bool(state is not None and state.flagged),
        )
    )


def prune(*, now: Any = None) -> int:
    """Delete query logs older than their deployment's retention period; returns how many."""
    now = now or timezone.now()
    deleted = 0
    for deployment_id, days in Deployment.objects.values_list("id", "log_retention_days"):
        count, _ = QueryLog.objects.filter(
            deployment_id=deployment_id, created_at__lt=now - timedelta(days=days)
        ).delete()
        deleted += count
    return deleted


def _rows(logs: QuerySet[QueryLog]) -> Iterator[dict[str, Any]]:
    for log in logs.annotate(key_prefix=F("key__prefix"), key_owner=F("key__owner")).iterator(chunk_size=500):
        yield {
            "id": log.pk,
            "created_at": log.created_at.isoformat(),
            "key_prefix": log.key_prefix,
            "key_owner": log.key_owner,
            "batch_size": log.batch_size,
            "labels": log.labels,
            "policy": log.policy,
            "latency_ms": round(log.latency_ms, 3),
            "key_queries": log.key_queries,
            "prada_w": log.prada_w,
            "uncertain_fraction": log.uncertain_fraction,
            "volume_in_window": log.volume_in_window,
            "flagged": log.flagged,
            "input_sha256": log.input_sha256,
            "inputs": log.inputs,
        }


def export_jsonl(logs: QuerySet[QueryLog]) -> Iterator[str]:
    """One JSON object per line."""
    for row in _rows(logs):
        yield json.dumps(row) + "\n"


def export_csv(logs: QuerySet[QueryLog]) -> Iterator[str]:
    """CSV with a header; list and object columns hold JSON."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    yield buffer.getvalue()
    for row in _rows(logs):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(
            {
                k: json.dumps(v) if isinstance(v, (list, dict)) or v is None and k == "inputs" else v
                for k, v in row.items()
            }
        )
        yield buffer.getvalue()
