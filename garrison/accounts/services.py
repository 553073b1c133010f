"""Writes to teams, memberships and tokens; each one audited in its transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from garrison.accounts.models import ApiToken, Membership, Team
from garrison.accounts.roles import Capability, Role, TokenRole
from garrison.accounts.selectors import forget_team_roles, require_capability
from garrison.accounts.tokens import hash_token_secret, new_token_secret, token_prefix
from garrison.audit.services import diff, record, snapshot


@transaction.atomic
def team_create(*, actor: Any, name: str, slug: str = "", description: str = "") -> Team:
    """Create a team; its creator becomes its first admin."""
    team = Team(name=name.strip(), slug=slug or slugify(name)[:60], description=description)
    team.full_clean()
    team.save()
    record(
        actor=actor,
        verb="team.create",
        obj=team,
        team_id=team.id,
        changes=diff({}, snapshot(team, ["name", "slug", "description"])),
    )
    if actor is not None and getattr(actor, "pk", None) is not None:
        membership = Membership(user=actor, team=team, role=Role.ADMIN)
        membership.full_clean()
        membership.save()
        forget_team_roles(actor)
    return team


@transaction.atomic
def membership_add(*, actor: Any, team: Team, username: str, role: str) -> Membership:
    """Add an existing user to a team with a role (team admins only)."""
    require_capability(user=actor, team_id=team.id, capability=Capability.ADMIN)
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationError({"username": f"No user named '{username}'. Check the spelling."})
    if Membership.objects.filter(team=team, user=user).exists():
        raise ValidationError({"username": f"'{username}' is already a member; change their role instead."})
    membership = Membership(team=team, user=user, role=role)
    membership.full_clean()
    membership.save()
    record(
        actor=actor,
        verb="membership.add",
        obj=membership,
        team_id=team.id,
        changes=diff({}, {"user": username, "role": role}),
    )
    return membership


def _admins_left_after(membership: Membership, *, new_role: str | None) -> int:
    others = Membership.objects.filter(team=membership.team, role=Role.ADMIN).exclude(pk=membership.pk).count()
    return others + (1 if new_role == Role.ADMIN else 0)


@transaction.atomic
def membership_change_role(*, actor: Any, membership: Membership, role: str) -> Membership:
    """Change a member's role; a team always keeps at least one admin."""
    require_capability(user=actor, team_id=membership.team_id, capability=Capability.ADMIN)
    membership = Membership.objects.select_for_update().select_related("team", "user").get(pk=membership.pk)
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'. Choose one of: {', '.join(Role.values)}."})
    if membership.role == Role.ADMIN and _admins_left_after(membership, new_role=role) == 0:
        raise ValidationError({"role": "A team needs at least one admin; make someone else admin first."})
    before = snapshot(membership, ["role"])
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role"])
    record(
        actor=actor,
        verb="membership.change_role",
        obj=membership,
        team_id=membership.team_id,
        changes=diff(before, snapshot(membership, ["role"])),
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: Any, membership: Membership) -> None:
    """Remove a member from a team; the last admin cannot be removed."""
    require_capability(user=actor, team_id=membership.team_id, capability=Capability.ADMIN)
    membership = Membership.objects.select_for_update().select_related("team", "user").get(pk=membership.pk)
    if membership.role == Role.ADMIN and _admins_left_after(membership, new_role=None) == 0:
        raise ValidationError({"role": "A team needs at least one admin; make someone else admin first."})
    record(
        actor=actor,
        verb="membership.remove",
        obj=membership,
        team_id=membership.team_id,
        changes=diff({"user": membership.user.username, "role": membership.role}, {}),
    )
    membership.delete()


@transaction.atomic
def api_token_create(
    *, actor: Any, team: Team, name: str, role: str = TokenRole.CI, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create an API token; returns the token and its secret, which is never shown again."""
    require_capability(user=actor, team_id=team.id, capability=Capability.ADMIN)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry time must be in the future."})
    secret = new_token_secret()
    token = ApiToken(
        team=team,
        name=name.strip(),
        role=role,
        prefix=token_prefix(secret),
        key_hash=hash_token_secret(secret),
        created_by=actor if getattr(actor, "pk", None) else None,
        expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    record(
        actor=actor,
        verb="api_token.create",
        obj=token,
        team_id=team.id,
        changes=diff({}, snapshot(token, ["name", "role", "prefix", "expires_at"])),
    )
    return token, secret


@transaction.atomic
def api_token_revoke(*, actor: Any, token: ApiToken) -> ApiToken:
    """Revoke an API token; it stops working at once."""
    require_capability(user=actor, team_id=token.team_id, capability=Capability.ADMIN)
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise ValidationError({"non_field_errors": "This token is already revoked."})
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    record(
        actor=actor,
        verb="api_token.revoke",
        obj=token,
        team_id=token.team_id,
        changes={"revoked_at": [None, token.revoked_at]},
    )
    return token
