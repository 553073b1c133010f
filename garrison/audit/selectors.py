"""Reads of the audit trail, scoped to teams whose audit log the principal may read."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from garrison.accounts.models import Team
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.models import AuditEvent


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_event_list(
    *,
    user: Any,
    team: Team,
    actor: str = "",
    verb: str = "",
    object_type: str = "",
    object_id: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEvent]:
    """A team's audit events, newest first, filtered; ``until`` includes that whole day."""
    require_capability(user=user, team_id=team.id, capability=Capability.VIEW_AUDIT)
    events = AuditEvent.objects.filter(team=team)
    if actor:
        events = events.filter(actor_label__icontains=actor)
    if verb:
        events = events.filter(verb__startswith=verb)
    if object_type:
        events = events.filter(object_type=object_type)
    if object_id:
        events = events.filter(object_id=object_id)
    if since:
        events = events.filter(created_at__gte=_start_of(since))
    if until:
        events = events.filter(created_at__lt=_start_of(until + timedelta(days=1)))
    return events.order_by("-created_at", "-id")


def audit_verbs(*, team: Team) -> list[str]:
    """The verbs seen in a team's audit log, for filter menus."""
    return list(AuditEvent.objects.filter(team=team).values_list("verb", flat=True).distinct().order_by("verb"))


def audit_object_types(*, team: Team) -> list[str]:
    """The object types seen in a team's audit log, for filter menus."""
    return list(
        AuditEvent.objects.filter(team=team).values_list("object_type", flat=True).distinct().order_by("object_type")
    )
