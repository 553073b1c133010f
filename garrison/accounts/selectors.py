"""Reads of teams, memberships and tokens; the one place team scoping is decided.

Every other app's selectors scope through :func:`team_ids_for` and check writes
with :func:`require_capability`, so a principal outside a team sees 404 for its
objects (it cannot even learn they exist) and a member without the capability
gets 403.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from garrison.accounts.models import ApiToken, Membership, Team
from garrison.accounts.principals import TokenPrincipal
from garrison.accounts.roles import ROLE_CAPABILITIES, TOKEN_ROLE_CAPABILITIES, Capability

_CACHE_ATTR = "_garrison_team_roles"


def team_roles(user: Any) -> dict[int, str]:
    """Map of team id to the principal's role there (cached on the user for the request)."""
    if user is None or not user.is_authenticated:
        return {}
    if isinstance(user, TokenPrincipal):
        return {user.team_id: user.role}
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        setattr(user, _CACHE_ATTR, cached)
    return cached


def forget_team_roles(user: Any) -> None:
    """Drop the cached roles after memberships change."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def capabilities_in(user: Any, team_id: int) -> frozenset[str]:
    """What the principal may do in the team (empty when it is not a member)."""
    role = team_roles(user).get(team_id)
    if role is None:
        return frozenset()
    table = TOKEN_ROLE_CAPABILITIES if isinstance(user, TokenPrincipal) else ROLE_CAPABILITIES
    return table.get(role, frozenset())


def team_ids_for(user: Any, capability: str = Capability.VIEW) -> list[int]:
    """Ids of the teams where the principal has ``capability``."""
    return [team_id for team_id in team_roles(user) if capability in capabilities_in(user, team_id)]


def require_capability(*, user: Any, team_id: int, capability: str) -> None:
    """404 when the principal is outside the team, 403 when its role lacks ``capability``."""
    caps = capabilities_in(user, team_id)
    if Capability.VIEW not in caps:
        raise Http404("No such object.")
    if capability not in caps:
        label = Capability(capability).label if capability in Capability.values else capability
        role = team_roles(user).get(team_id)
        raise PermissionDenied(
            f"Your role '{role}' in this team does not allow this: it needs permission to "
            f"{label[0].lower() + label[1:]}. Ask a team admin for a role that has it."
        )


def team_list(*, user: Any) -> QuerySet[Team]:
    """The teams the principal can see."""
    return Team.objects.filter(id__in=team_ids_for(user)).order_by("name")


def team_get(*, user: Any, slug: str, capability: str = Capability.VIEW) -> Team:
    """One team by slug, checked for ``capability``."""
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise Http404("No such team.")
    require_capability(user=user, team_id=team.id, capability=capability)
    return team


def membership_list(*, user: Any, team: Team) -> QuerySet[Membership]:
    """Members of a team the principal can see."""
    require_capability(user=user, team_id=team.id, capability=Capability.VIEW)
    return Membership.objects.filter(team=team).select_related("user").order_by("user__username")


def membership_get(*, user: Any, team: Team, id: int) -> Membership:  # noqa: A002 - selector convention
    """One membership of a team, for its admins."""
    require_capability(user=user, team_id=team.id, capability=Capability.ADMIN)
    membership = Membership.objects.filter(team=team, id=id).select_related("user", "team").first()
    if membership is None:
        raise Http404("No such membership in this team.")
    return membership


def api_token_list(*, user: Any, team: Team) -> QuerySet[ApiToken]:
    """A team's API tokens, for its admins."""
    require_capability(user=user, team_id=team.id, capability=Capability.ADMIN)
    return ApiToken.objects.filter(team=team).select_related("created_by").order_by("-created_at")


def api_token_get(*, user: Any, team: Team, id: int) -> ApiToken:  # noqa: A002 - selector convention
    """One API token of a team, for its admins."""
    token = api_token_list(user=user, team=team).filter(id=id).first()
    if token is None:
        raise Http404("No such API token in this team.")
    return token
