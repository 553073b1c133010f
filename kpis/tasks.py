"""Periodic KPI work."""

from __future__ import annotations

from celery import shared_task

from kpis.receivers import measure
from threatmodel.models import System


@shared_task(name="kpis.tasks.measure_all_systems", ignore_result=True, acks_late=True)
def measure_all_systems() -> int:
    """Re-measure every system daily, so freshness, overdue controls and expiries move with time."""
    ids = list(System.objects.values_list("pk", flat=True))
    for system_id in ids:
        measure(system_id, "daily measurement")
    return len(ids)
