"""Periodic KPI work."""

from __future__ import annotations

from celery import shared_task

from kpis.receivers import measure
from kpis.status import statuses_rebuild_all
from threatmodel.models import System


@shared_task(name="kpis.tasks.measure_all_systems", ignore_result=True, acks_late=True)
def measure_all_systems() -> int:
    """Re-measure every system daily, so freshness, overdue controls and expiries move with time.

    Then recompute every status row, so a deploy that changed the catalog's default
    thresholds reaches the portfolio within a day even if nobody runs ``kpi_status_rebuild``.
    """
    ids = list(System.objects.values_list("pk", flat=True))
    for system_id in ids:
        measure(system_id, "daily measurement")
    statuses_rebuild_all()
    return len(ids)
