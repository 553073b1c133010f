"""Reads of ML systems, scoped to the principal's teams."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability, team_ids_for
from threatmodel.models import System


def system_list(
    *,
    user: Any,
    team_slug: str | None = None,
    search: str = "",
    lifecycle_stage: str = "",
    criticality_tier: int | None = None,
    tag: str = "",
) -> QuerySet[System]:
    """Systems in the principal's teams, filtered."""
    systems = System.objects.filter(team_id__in=team_ids_for(user)).select_related("team")
    if team_slug:
        systems = systems.filter(team__slug=team_slug)
    if search:
        systems = systems.filter(
            Q(name__icontains=search) | Q(description__icontains=search) | Q(slug__icontains=search)
        )
    if lifecycle_stage:
        systems = systems.filter(lifecycle_stage=lifecycle_stage)
    if criticality_tier:
        systems = systems.filter(criticality_tier=criticality_tier)
    if tag:
        # Tags are a JSON list; matching the quoted tag avoids prefix matches.
        systems = systems.filter(tags__icontains=f'"{tag.lower()}"')
    return systems.order_by("criticality_tier", "name")


def system_get(*, user: Any, team_slug: str, slug: str, capability: str = Capability.VIEW) -> System:
    """One system by team and slug; 404 outside the team, 403 without ``capability``."""
    system = System.objects.select_related("team").filter(team__slug=team_slug, slug=slug).first()
    if system is None:
        raise Http404("No such system.")
    require_capability(user=user, team_id=system.team_id, capability=capability)
    return system


def system_get_by_id(*, user: Any, id: int, capability: str = Capability.VIEW) -> System:  # noqa: A002
    """One system by id; 404 outside the team, 403 without ``capability``."""
    system = System.objects.select_related("team").filter(id=id).first()
    if system is None:
        raise Http404("No such system.")
    require_capability(user=user, team_id=system.team_id, capability=capability)
    return system
