"""Writes to deployments, consumer keys and alerts; each one validated and audited in one transaction."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from evaluations.models import EvaluationRun, ModelArtifact
from evaluations.serving.keys import hash_key_secret, key_prefix, new_key_secret
from evaluations.serving.models import ConsumerKey, Deployment, MonitorAction, MonitorAlert
from evaluations.serving.signals import deployment_alert_raised
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import diff, record, snapshot
from garrison.core.exceptions import StateConflict
from threatmodel.models import System

EDITABLE = tuple(field for field in Deployment.AUDITED_FIELDS)


def _person(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) is not None else None


@transaction.atomic
def deployment_create(*, actor: Any, system: System, model_artifact: ModelArtifact, **fields: Any) -> Deployment:
    """Deploy a clean model version of a system behind the guarded prediction API."""
    require_capability(user=actor, team_id=system.team_id, capability=Capability.DEPLOY)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError({"non_field_errors": [f"Unknown deployment fields: {', '.join(sorted(unknown))}."]})
    deployment = Deployment(system=system, model_artifact=model_artifact, created_by=_person(actor), **fields)
    deployment.full_clean()
    deployment.save()
    record(
        actor=actor,
        verb="deployment.create",
        obj=deployment,
        team_id=system.team_id,
        changes=diff({}, snapshot(deployment, Deployment.AUDITED_FIELDS)),
    )
    return deployment


@transaction.atomic
def deployment_update(*, actor: Any, deployment: Deployment, **fields: Any) -> Deployment:
    """Change a deployment's model version, output policy, limits, monitor or telemetry settings."""
    deployment = Deployment.objects.select_for_update(of=("self",)).select_related("system").get(pk=deployment.pk)
    require_capability(user=actor, team_id=deployment.system.team_id, capability=Capability.DEPLOY)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError({"non_field_errors": [f"Unknown deployment fields: {', '.join(sorted(unknown))}."]})
    before = snapshot(deployment, Deployment.AUDITED_FIELDS)
    for name, value in fields.items():
        setattr(deployment, name, value)
    deployment.full_clean()
    deployment.save()
    changes = diff(before, snapshot(deployment, Deployment.AUDITED_FIELDS))
    if changes:
        record(
            actor=actor,
            verb="deployment.update",
            obj=deployment,
            team_id=deployment.system.team_id,
            changes=changes,
        )
    return deployment


@transaction.atomic
def consumer_key_issue(
    *,
    actor: Any,
    deployment: Deployment,
    owner: str,
    purpose: str = "",
    run: EvaluationRun | None = None,
) -> tuple[ConsumerKey, str]:
    """Issue a consumer key; returns the key and its secret, which is never shown again.

    ``actor=None`` is Garrison itself (an extraction run issuing its own key for ``run``).
    """
    if actor is not None:
        require_capability(user=actor, team_id=deployment.system.team_id, capability=Capability.DEPLOY)
    secret = new_key_secret()
    key = ConsumerKey(
        deployment=deployment,
        owner=owner.strip(),
        purpose=purpose.strip(),
        prefix=key_prefix(secret),
        key_hash=hash_key_secret(secret),
        created_by=_person(actor),
        issued_for_run=run,
    )
    key.full_clean()
    key.save()
    record(
        actor=actor,
        verb="consumer_key.issue",
        obj=key,
        team_id=deployment.system.team_id,
        changes=diff(
            {}, {"deployment": deployment.pk, "owner": key.owner, "purpose": key.purpose, "prefix": key.prefix}
        ),
    )
    return key, secret


@transaction.atomic
def consumer_key_revoke(*, actor: Any, key: ConsumerKey) -> ConsumerKey:
    """Revoke a consumer key; it stops working at once."""
    key = ConsumerKey.objects.select_for_update(of=("self",)).select_related("deployment__system").get(pk=key.pk)
    if actor is not None:
        require_capability(user=actor, team_id=key.deployment.system.team_id, capability=Capability.DEPLOY)
    if key.revoked_at is not None:
        raise StateConflict("This key is already revoked.")
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    record(
        actor=actor,
        verb="consumer_key.revoke",
        obj=key,
        team_id=key.deployment.system.team_id,
        changes={"revoked_at": [None, key.revoked_at]},
    )
    return key


@transaction.atomic
def consumer_key_clear_action(*, actor: Any, key: ConsumerKey) -> ConsumerKey:
    """Lift the monitor's action on a key (after review); the key is monitored afresh."""
    key = ConsumerKey.objects.select_for_update(of=("self",)).select_related("deployment__system").get(pk=key.pk)
    require_capability(user=actor, team_id=key.deployment.system.team_id, capability=Capability.DEPLOY)
    if not key.enforced_action and key.flagged_at is None:
        raise StateConflict("The monitor has not flagged this key; there is nothing to lift.")
    before = {"enforced_action": key.enforced_action, "flagged_at": key.flagged_at}
    key.enforced_action = ""
    key.flagged_at = None
    key.save(update_fields=["enforced_action", "flagged_at"])
    record(
        actor=actor,
        verb="consumer_key.clear_action",
        obj=key,
        team_id=key.deployment.system.team_id,
        changes=diff(before, {"enforced_action": "", "flagged_at": None}),
    )
    from evaluations.serving import monitor

    transaction.on_commit(lambda: monitor.forget(key.deployment, key.pk))
    return key


@transaction.atomic
def monitor_alert_raise(*, deployment: Deployment, key: ConsumerKey, state: dict[str, Any]) -> MonitorAlert | None:
    """Record the monitor flagging a key, apply the deployment's action and tell the incidents app.

    Garrison itself acts (no person); returns None when the key was already flagged.
    """
    flagged = ConsumerKey.objects.filter(pk=key.pk, flagged_at__isnull=True).update(
        flagged_at=timezone.now(),
        enforced_action="" if deployment.monitor_action == MonitorAction.LOG else deployment.monitor_action,
    )
    if flagged != 1:
        return None
    key.refresh_from_db(fields=["flagged_at", "enforced_action"])
    alert = MonitorAlert.objects.create(
        deployment=deployment,
        key=key,
        queries=int(state.get("first_flagged_at") or state.get("queries") or 0),
        monitors=list(state.get("flagged_by") or []),
        action=deployment.monitor_action,
        state=state,
    )
    record(
        actor=None,
        verb="deployment.alert",
        obj=alert,
        team_id=deployment.system.team_id,
        changes={"key": [None, key.prefix], "monitors": [None, alert.monitors], "action": [None, alert.action]},
    )
    transaction.on_commit(
        lambda: deployment_alert_raised.send(
            sender=MonitorAlert,
            alert_id=alert.pk,
            deployment_id=deployment.pk,
            system_id=deployment.system_id,
            open_incident=deployment.open_incident,
        )
    )
    return alert
