"""Writes to ML systems; each one validated and audited in one transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.text import slugify

from garrison.accounts.models import Team
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import diff, record, snapshot
from threatmodel.models import System

_EDITABLE = set(System.AUDITED_FIELDS)


def _normalise_tags(tags: Any) -> Any:
    if isinstance(tags, list):
        return sorted({str(tag).strip().lower() for tag in tags if str(tag).strip()})
    return tags


@transaction.atomic
def system_create(*, actor: Any, team: Team, name: str, **fields: Any) -> System:
    """Register an ML system in a team (editors and above)."""
    require_capability(user=actor, team_id=team.id, capability=Capability.EDIT)
    unknown = set(fields) - _EDITABLE
    if unknown:
        raise TypeError(f"system_create got unknown fields: {', '.join(sorted(unknown))}")
    fields.setdefault("slug", slugify(name)[:60])
    if "tags" in fields:
        fields["tags"] = _normalise_tags(fields["tags"])
    system = System(team=team, name=name.strip(), **fields)
    system.full_clean()
    system.save()
    record(
        actor=actor,
        verb="system.create",
        obj=system,
        team_id=team.id,
        changes=diff({}, snapshot(system, System.AUDITED_FIELDS)),
    )
    return system


@transaction.atomic
def system_update(*, actor: Any, system: System, **fields: Any) -> System:
    """Change a system's inventory fields (editors and above); unchanged values write nothing."""
    require_capability(user=actor, team_id=system.team_id, capability=Capability.EDIT)
    unknown = set(fields) - _EDITABLE
    if unknown:
        raise TypeError(f"system_update got unknown fields: {', '.join(sorted(unknown))}")
    system = System.objects.select_for_update().select_related("team").get(pk=system.pk)
    before = snapshot(system, System.AUDITED_FIELDS)
    if "tags" in fields:
        fields["tags"] = _normalise_tags(fields["tags"])
    for name, value in fields.items():
        setattr(system, name, value)
    system.full_clean()
    changes = diff(before, snapshot(system, System.AUDITED_FIELDS))
    if not changes:
        return system
    system.save()
    record(actor=actor, verb="system.update", obj=system, team_id=system.team_id, changes=changes)
    return system


@transaction.atomic
def system_delete(*, actor: Any, system: System) -> None:
    """Delete a system (team admins only); its audit history stays."""
    require_capability(user=actor, team_id=system.team_id, capability=Capability.ADMIN)
    record(
        actor=actor,
        verb="system.delete",
        obj=system,
        team_id=system.team_id,
        changes=diff(snapshot(system, System.AUDITED_FIELDS), {}),
    )
    system.delete()
