"""Reads of deployments, keys, alerts and query logs, scoped to the principal's teams."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.http import Http404

from evaluations.serving.models import ConsumerKey, Deployment, MonitorAlert, QueryLog
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability, team_ids_for


def deployment_list(*, user: Any, system_id: int | None = None) -> QuerySet[Deployment]:
    """Deployments in the principal's teams, with their alert counts."""
    deployments = (
        Deployment.objects.filter(system__team_id__in=team_ids_for(user))
        .select_related("system__team", "model_artifact")
        .annotate(alert_count=Count("alerts", distinct=True))
    )
    if system_id:
        deployments = deployments.filter(system_id=system_id)
    return deployments.order_by("system__name", "name")


def deployment_get(*, user: Any, id: int, capability: str = Capability.VIEW) -> Deployment:  # noqa: A002
    """One deployment; 404 outside the team, 403 without ``capability``."""
    deployment = Deployment.objects.select_related("system__team", "model_artifact__blob").filter(id=id).first()
    if deployment is None:
        raise Http404("No such deployment.")
    require_capability(user=user, team_id=deployment.system.team_id, capability=capability)
    return deployment


def consumer_key_list(*, deployment: Deployment) -> QuerySet[ConsumerKey]:
    """A deployment's keys with their logged volume (the caller checked access to the deployment)."""
    return (
        ConsumerKey.objects.filter(deployment=deployment)
        .select_related("created_by", "issued_for_run")
        .annotate(
            logged_queries=Max("query_logs__key_queries"),
            alert_count=Count("alerts", distinct=True),
        )
        .order_by("-created_at")
    )


def consumer_key_get(*, deployment: Deployment, id: int) -> ConsumerKey:  # noqa: A002
    """One key of a deployment."""
    key = ConsumerKey.objects.filter(deployment=deployment, id=id).first()
    if key is None:
        raise Http404("No such key for this deployment.")
    return key


def alert_list(*, deployment: Deployment) -> QuerySet[MonitorAlert]:
    """A deployment's alerts, newest first."""
    return MonitorAlert.objects.filter(deployment=deployment).select_related("key").order_by("-created_at", "-id")


def query_log_list(*, deployment: Deployment, key_id: int | None = None) -> QuerySet[QueryLog]:
    """A deployment's query logs, oldest first."""
    logs = QueryLog.objects.filter(deployment=deployment)
    if key_id:
        logs = logs.filter(key_id=key_id)
    return logs.order_by("created_at", "id")


def score_series(*, deployment: Deployment, limit: int = 2000) -> QuerySet[QueryLog]:
    """The logged detector scores of each key (for the monitoring chart)."""
    return (
        QueryLog.objects.filter(deployment=deployment)
        .filter(Q(prada_w__isnull=False) | Q(uncertain_fraction__isnull=False) | Q(flagged=True))
        .select_related("key")
        .order_by("-created_at", "-id")[:limit]
    )
