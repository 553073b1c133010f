"""Incident KPIs: computed here (this app sits above kpis) and recorded through the kpis service."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from incidents.models import Incident, IncidentStatus
from kpis.compute import KpiValue
from kpis.services import measurements_record
from threatmodel.models import System

MTTR_WINDOW = timedelta(days=180)


def incident_values(system: System) -> list[KpiValue]:
    """Open incidents, and mean time to remediate over the incidents closed in the last 180 days."""
    incidents = Incident.objects.filter(systems=system)
    open_count = incidents.filter(~Q(status=IncidentStatus.CLOSED)).count()
    closed = list(
        incidents.filter(status=IncidentStatus.CLOSED, closed_at__gte=timezone.now() - MTTR_WINDOW).values_list(
            "detected_at", "closed_at"
        )
    )
    values = [KpiValue("open_incidents", open_count)]
    if closed:
        hours = sum((c - d).total_seconds() for d, c in closed) / 3600 / len(closed)
        values.append(KpiValue("mean_time_to_remediate", round(hours, 1), details={"closed_incidents": len(closed)}))
    return values


def record_incident_kpis(system_ids: Iterable[int], trigger: str) -> None:
    """Record the incident KPIs of the given systems."""
    for system in System.objects.filter(pk__in=list(system_ids)):
        measurements_record(system=system, values=incident_values(system), trigger=trigger[:40])
