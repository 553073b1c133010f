"""Housekeeping tasks."""

from __future__ import annotations

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from garrison.core.models import WorkerHeartbeat


@shared_task(name="garrison.core.tasks.worker_heartbeat", bind=True, ignore_result=True)
def worker_heartbeat(self) -> str:
    """Record that a worker is alive; beat schedules this every minute."""
    hostname = self.request.hostname or "unknown"
    now = timezone.now()
    updated = WorkerHeartbeat.objects.filter(hostname=hostname).update(last_seen=now, beats=F("beats") + 1)
    if not updated:
        WorkerHeartbeat.objects.get_or_create(hostname=hostname, defaults={"last_seen": now, "beats": 1})
    return hostname
