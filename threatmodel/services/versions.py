"""Threat models and their versions: create, start a draft, submit, approve, send back."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import record
from garrison.core.exceptions import StateConflict
from threatmodel.models import (
    Component,
    Control,
    DataFlow,
    System,
    Threat,
    ThreatModel,
    ThreatModelVersion,
    TrustBoundary,
    VersionStatus,
)
from threatmodel.signals import threat_model_changed

# The only moves a version can make.
TRANSITIONS: dict[str, set[str]] = {
    VersionStatus.DRAFT: {VersionStatus.IN_REVIEW},
    VersionStatus.IN_REVIEW: {VersionStatus.APPROVED, VersionStatus.DRAFT},
    VersionStatus.APPROVED: {VersionStatus.SUPERSEDED},
    VersionStatus.SUPERSEDED: set(),
}


def _team_id(version: ThreatModelVersion) -> int:
    return version.threat_model.system.team_id


def _locked(version: ThreatModelVersion) -> ThreatModelVersion:
    return ThreatModelVersion.objects.select_for_update().select_related("threat_model__system").get(pk=version.pk)


def _move(version: ThreatModelVersion, to: str) -> str:
    """Check and apply one status move; returns the previous status."""
    if to not in TRANSITIONS[version.status]:
        raise StateConflict(
            f"Version {version.number} is {version.get_status_display().lower()}; it cannot become "
            f"{VersionStatus(to).label.lower()}."
        )
    previous, version.status = version.status, to
    return previous


@transaction.atomic
def threat_model_create(*, actor: Any, system: System, title: str = "") -> ThreatModel:
    """Start a threat model for a system, with an empty draft as version 1."""
    require_capability(user=actor, team_id=system.team_id, capability=Capability.EDIT)
    threat_model = ThreatModel(system=system, title=(title or f"{system.name} threat model").strip())
    threat_model.full_clean()
    threat_model.save()
    ThreatModelVersion.objects.create(threat_model=threat_model, number=1, author=_person(actor))
    record(
        actor=actor,
        verb="threat_model.create",
        obj=threat_model,
        team_id=system.team_id,
        changes={"title": [None, threat_model.title]},
    )
    return threat_model


@transaction.atomic
def threat_model_update(*, actor: Any, threat_model: ThreatModel, title: str) -> ThreatModel:
    """Rename a threat model (editors)."""
    require_capability(user=actor, team_id=threat_model.system.team_id, capability=Capability.EDIT)
    threat_model = ThreatModel.objects.select_for_update().select_related("system").get(pk=threat_model.pk)
    before = threat_model.title
    threat_model.title = title.strip()
    threat_model.full_clean()
    if threat_model.title != before:
        threat_model.save(update_fields=["title"])
        record(
            actor=actor,
            verb="threat_model.update",
            obj=threat_model,
            team_id=threat_model.system.team_id,
            changes={"title": [before, threat_model.title]},
        )
    return threat_model


@transaction.atomic
def threat_model_delete(*, actor: Any, threat_model: ThreatModel) -> None:
    """Delete a threat model with all its versions (team admins); refused once a version was approved."""
    require_capability(user=actor, team_id=threat_model.system.team_id, capability=Capability.ADMIN)
    if threat_model.versions.filter(status__in=[VersionStatus.APPROVED, VersionStatus.SUPERSEDED]).exists():
        raise StateConflict("This threat model has approved versions, which are kept for the record.")
    record(
        actor=actor,
        verb="threat_model.delete",
        obj=threat_model,
        team_id=threat_model.system.team_id,
        changes={"title": [threat_model.title, None]},
    )
    threat_model.delete()


def _person(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) is not None else None


@transaction.atomic
def version_start_draft(*, actor: Any, threat_model: ThreatModel) -> ThreatModelVersion:
    """Open a new draft copied from the latest version; only one draft or review may be open."""
    require_capability(user=actor, team_id=threat_model.system.team_id, capability=Capability.EDIT)
    ThreatModel.objects.select_for_update().get(pk=threat_model.pk)
    open_version = threat_model.versions.filter(status__in=[VersionStatus.DRAFT, VersionStatus.IN_REVIEW]).first()
    if open_version is not None:
        raise StateConflict(
            f"Version {open_version.number} is still {open_version.get_status_display().lower()}; "
            "finish or send it back before starting another draft."
        )
    latest = threat_model.versions.order_by("-number").first()
    draft = ThreatModelVersion.objects.create(
        threat_model=threat_model,
        number=(latest.number + 1) if latest else 1,
        based_on=latest,
        author=_person(actor),
    )
    if latest is not None:
        copy_version_content(source=latest, target=draft)
    record(
        actor=actor,
        verb="threat_model_version.start_draft",
        obj=draft,
        team_id=threat_model.system.team_id,
        changes={"number": [None, draft.number], "based_on": [None, latest.number if latest else None]},
    )
    return draft


def copy_version_content(*, source: ThreatModelVersion, target: ThreatModelVersion) -> None:
    """Copy every element of ``source`` into ``target``, keeping uids so the two can be diffed."""
    boundaries = {}
    for boundary in source.trustboundarys.all():
        boundaries[boundary.pk] = TrustBoundary.objects.create(
            version=target, uid=boundary.uid, name=boundary.name, description=boundary.description
        )
    components = {}
    for component in source.components.all():
        components[component.pk] = Component.objects.create(
            version=target,
            uid=component.uid,
            name=component.name,
            component_type=component.component_type,
            description=component.description,
            boundary=boundaries.get(component.boundary_id),
        )
    flows = {}
    for flow in source.dataflows.all():
        flows[flow.pk] = DataFlow.objects.create(
            version=target,
            uid=flow.uid,
            source=components[flow.source_id],
            target=components[flow.target_id],
            data=flow.data,
            protocol=flow.protocol,
            authenticated=flow.authenticated,
        )
    threats = {}
    copied_fields = [
        "uid",
        "catalog_key",
        "title",
        "description",
        "stride",
        "atlas_techniques",
        "owasp_ml",
        "suggested_mitigations",
        "evaluation_kind",
        "likelihood",
        "impact",
        "status",
        "justification",
        "risk_accepted_by_id",
        "risk_acceptance_reason",
        "risk_acceptance_expires",
    ]
    for threat in source.threats.all():
        threats[threat.pk] = Threat.objects.create(
            version=target,
            component=components.get(threat.component_id),
            flow=flows.get(threat.flow_id),
            **{name: getattr(threat, name) for name in copied_fields},
        )
    for control in source.controls.prefetch_related("threats"):
        copy = Control.objects.create(
            version=target,
            uid=control.uid,
            name=control.name,
            description=control.description,
            control_type=control.control_type,
            atlas_mitigations=control.atlas_mitigations,
            owner_id=control.owner_id,
            due_date=control.due_date,
            status=control.status,
            evidence_state=control.evidence_state,
            evidence_detail=control.evidence_detail,
            evidence_checked_at=control.evidence_checked_at,
        )
        copy.threats.set([threats[t.pk] for t in control.threats.all()])


@transaction.atomic
def version_submit(*, actor: Any, version: ThreatModelVersion, summary: str = "") -> ThreatModelVersion:
    """Send a draft for review (editors)."""
    version = _locked(version)
    require_capability(user=actor, team_id=_team_id(version), capability=Capability.EDIT)
    previous = _move(version, VersionStatus.IN_REVIEW)
    version.submitted_by, version.submitted_at = _person(actor), timezone.now()
    if summary:
        version.summary = summary
    version.save()
    record(
        actor=actor,
        verb="threat_model_version.submit",
        obj=version,
        team_id=_team_id(version),
        changes={"status": [previous, version.status]},
    )
    return version


@transaction.atomic
def version_approve(*, actor: Any, version: ThreatModelVersion, note: str = "") -> ThreatModelVersion:
    """Approve a version in review (approvers; never its author or submitter); the previous one is superseded."""
    version = _locked(version)
    require_capability(user=actor, team_id=_team_id(version), capability=Capability.APPROVE)
    if VersionStatus.APPROVED not in TRANSITIONS[version.status]:
        _move(version, VersionStatus.APPROVED)  # raises the conflict with its explanation
    actor_id = getattr(actor, "pk", None)
    if actor_id is None or actor_id in (version.author_id, version.submitted_by_id):
        raise PermissionDenied("You wrote or submitted this version, so you cannot approve it; ask another approver.")
    previous = _move(version, VersionStatus.APPROVED)
    superseded = list(
        ThreatModelVersion.objects.select_for_update().filter(
            threat_model=version.threat_model, status=VersionStatus.APPROVED
        )
    )
    for older in superseded:
        _move(older, VersionStatus.SUPERSEDED)
        older.save(update_fields=["status"])
    version.reviewed_by, version.reviewed_at, version.review_note = actor, timezone.now(), note
    version.save()
    system_id = version.threat_model.system_id
    transaction.on_commit(
        lambda: threat_model_changed.send(
            sender=ThreatModelVersion, system_id=system_id, reason="threat model approved"
        )
    )
    changes: dict[str, list[Any]] = {"status": [previous, version.status]}
    if superseded:
        changes["superseded_versions"] = [None, [older.number for older in superseded]]
    record(actor=actor, verb="threat_model_version.approve", obj=version, team_id=_team_id(version), changes=changes)
    return version


@transaction.atomic
def version_send_back(*, actor: Any, version: ThreatModelVersion, note: str) -> ThreatModelVersion:
    """Return a version in review to draft with the approver's reasons (approvers)."""
    version = _locked(version)
    require_capability(user=actor, team_id=_team_id(version), capability=Capability.APPROVE)
    if not note.strip():
        raise ValidationError({"note": "Say what must change before this version can be approved."})
    previous = _move(version, VersionStatus.DRAFT)
    version.reviewed_by, version.reviewed_at, version.review_note = _person(actor), timezone.now(), note
    version.save()
    record(
        actor=actor,
        verb="threat_model_version.send_back",
        obj=version,
        team_id=_team_id(version),
        changes={"status": [previous, version.status], "review_note": [None, note]},
    )
    return version
