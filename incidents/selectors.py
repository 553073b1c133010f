"""Reads of incidents, scoped to the principal's teams."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability, team_ids_for
from incidents.models import Incident, TimelineEntry


def incident_list(
    *, user: Any, status: str = "", severity: str = "", system_id: int | None = None, open_only: bool = False
) -> QuerySet[Incident]:
    """Incidents of the principal's teams, newest first."""
    incidents = Incident.objects.filter(team_id__in=team_ids_for(user)).select_related("team", "owner")
    if status:
        incidents = incidents.filter(status=status)
    if open_only:
        incidents = incidents.exclude(status="closed")
    if severity:
        incidents = incidents.filter(severity=severity)
    if system_id:
        incidents = incidents.filter(systems__id=system_id)
    return incidents.prefetch_related("systems").order_by("-detected_at", "-number").distinct()


def incident_get(*, user: Any, id: int, capability: str = Capability.VIEW) -> Incident:  # noqa: A002
    """One incident with everything on its page; 404 outside the team."""
    incident = (
        Incident.objects.select_related("team", "owner", "reporter", "threat_model_version__threat_model")
        .prefetch_related(
            "systems",
            Prefetch("timeline", queryset=TimelineEntry.objects.select_related("actor")),
            "evidence",
            "actions__owner",
            "threats__component",
            "threats__flow__source",
            "threats__flow__target",
            "controls",
        )
        .filter(id=id, team_id__in=team_ids_for(user))
        .first()
    )
    if incident is None:
        raise Http404("No such incident.")
    require_capability(user=user, team_id=incident.team_id, capability=capability)
    return incident


def report_get(*, user: Any, id: int) -> Any:  # noqa: A002
    """One stored report; 404 outside the team."""
    from incidents.models import Report

    report = (
        Report.objects.select_related("team", "system")
        .filter(
            Q(team_id__in=team_ids_for(user)) | Q(team__isnull=True, requested_by_id=getattr(user, "pk", None)), id=id
        )
        .first()
    )
    if report is None:
        raise Http404("No such report.")
    return report


def report_list(*, user: Any, system_id: int | None = None) -> Any:
    """Reports of the principal's teams, newest first."""
    from incidents.models import Report

    reports = Report.objects.filter(
        Q(team_id__in=team_ids_for(user)) | Q(team__isnull=True, requested_by_id=getattr(user, "pk", None))
    ).select_related("team", "system")
    if system_id:
        reports = reports.filter(system_id=system_id)
    return reports.order_by("-created_at")
