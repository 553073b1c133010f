"""Writing audit events: call :func:`record` inside the service's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models, transaction

from garrison.accounts.principals import TokenPrincipal
from garrison.audit.models import AuditEvent
from garrison.core.compiled import CompiledInsert
from garrison.core.middleware import current_request_id


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The audited fields of an instance, as JSON-friendly values."""
    values: dict[str, Any] = {}
    for name in fields:
        field = instance._meta.get_field(name)
        value = getattr(instance, field.attname)
        values[name] = list(value) if isinstance(value, (list, tuple, set)) else value
    return values


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for the fields whose value changed."""
    keys = list(dict.fromkeys([*before, *after]))
    return {key: [before.get(key), after.get(key)] for key in keys if before.get(key) != after.get(key)}


def _actor_fields(actor: Any) -> dict[str, Any]:
    if isinstance(actor, TokenPrincipal):
        return {"actor": None, "actor_token": actor.token, "actor_label": str(actor)}
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"actor": None, "actor_token": None, "actor_label": "system"}
    return {"actor": actor, "actor_token": None, "actor_label": actor.get_username()}


# Audit rows are written on every change, and on every gate decision: the insert is compiled once per process.
# (AuditEvent.save only refuses updates, which an insert of a new row never is.)
_INSERT = CompiledInsert(AuditEvent, save_checked=True)


def record(
    *,
    actor: Any,
    verb: str,
    obj: models.Model,
    team_id: int | None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event for ``obj``; must run inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record must be called inside the service's transaction.atomic block.")
    return _INSERT.save(
        AuditEvent(
            team_id=team_id,
            verb=verb,
            object_type=obj._meta.label_lower,
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            changes=changes or {},
            request_id=current_request_id(),
            **_actor_fields(actor),
        )
    )
