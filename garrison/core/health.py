"""Health checks for /healthz: the database, the broker and the workers."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.utils import timezone


@dataclass(frozen=True)
class CheckResult:
    """One component's health."""

    ok: bool
    detail: str
    latency_ms: float

    def as_dict(self) -> dict:
        """JSON form."""
        return {"ok": self.ok, "detail": self.detail, "latency_ms": round(self.latency_ms, 1)}


def _timed(check) -> CheckResult:
    started = time.perf_counter()
    try:
        ok, detail = check()
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return CheckResult(ok=ok, detail=detail, latency_ms=(time.perf_counter() - started) * 1000)


def _database() -> tuple[bool, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return True, connection.vendor


def redacted_broker_url(url: str) -> str:
    """The broker URL without its password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def _broker() -> tuple[bool, str]:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        queue_dir = Path(settings.CELERY_BROKER_DIR) / "queue"
        if not queue_dir.is_dir() or not os.access(queue_dir, os.W_OK):
            return False, f"filesystem broker folder {queue_dir} is missing or not writable"
        return True, f"filesystem ({queue_dir})"
    from garrison.celery import app

    with app.connection_for_write(url) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return True, redacted_broker_url(url)


def _workers() -> tuple[bool, str]:
    from garrison.core.models import WorkerHeartbeat

    latest = WorkerHeartbeat.objects.order_by("-last_seen").first()
    if latest is None:
        return False, "no worker has reported yet"
    age = timezone.now() - latest.last_seen
    stale_after = timedelta(seconds=3 * settings.CELERY_BEAT_SCHEDULE_HEARTBEAT_SECONDS)
    return age <= stale_after, f"{latest.hostname} seen {int(age.total_seconds())} s ago"


def run_checks() -> dict[str, CheckResult]:
    """Run every check; the database and broker decide overall health."""
    return {"database": _timed(_database), "broker": _timed(_broker), "workers": _timed(_workers)}
