"""Writes to incidents; each one validated, guarded and audited in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from garrison.accounts.models import Team
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import diff, record, snapshot
from garrison.core.exceptions import StateConflict
from incidents.models import (
    ActionStatus,
    Evidence,
    Incident,
    IncidentStatus,
    RemediationAction,
    TimelineEntry,
)
from threatmodel.models import AtlasKind, Control, System, Threat, ThreatStatus, VersionStatus
from threatmodel.selectors import atlas_unknown_ids
from threatmodel.services import threat_decide, threat_update, version_start_draft

ORDER = list(IncidentStatus.values)
# Forward one stage at a time; a closed incident can be reopened if new facts appear.
TRANSITIONS: dict[str, set[str]] = {
    **{stage: {ORDER[i + 1]} for i, stage in enumerate(ORDER[:-1])},
    IncidentStatus.CLOSED: {IncidentStatus.OPEN},
}


def _locked(incident: Incident, actor: Any, capability: str = Capability.EDIT) -> Incident:
    """Lock the incident; ``actor=None`` is Garrison itself (signal receivers), which needs no role."""
    incident = Incident.objects.select_for_update().select_related("team").get(pk=incident.pk)
    if actor is not None:
        require_capability(user=actor, team_id=incident.team_id, capability=capability)
    return incident


def _person(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) is not None else None


def _measure_after_commit(incident: Incident, trigger: str) -> None:
    """Update the affected systems' incident KPIs once the change is committed."""
    from incidents.kpi import record_incident_kpis

    system_ids = list(incident.systems.values_list("id", flat=True))
    transaction.on_commit(lambda: record_incident_kpis(system_ids, trigger))


def _check_systems(team: Team, systems: list[System]) -> None:
    if not systems:
        raise ValidationError({"systems": "Name at least one affected system."})
    if any(system.team_id != team.id for system in systems):
        raise ValidationError({"systems": "Every affected system must belong to the incident's team."})


@transaction.atomic
def incident_open(
    *,
    actor: Any,
    team: Team,
    title: str,
    systems: list[System],
    severity: str = "medium",
    summary: str = "",
    detection_source: str = "manual_report",
    detected_at: datetime | None = None,
    owner: Any = None,
) -> Incident:
    """Open an incident on some of a team's systems (editors; ``actor=None`` is Garrison itself)."""
    if actor is not None:
        require_capability(user=actor, team_id=team.id, capability=Capability.EDIT)
    _check_systems(team, systems)
    Team.objects.select_for_update().get(pk=team.pk)  # serialise numbering per team
    number = (Incident.objects.filter(team=team).aggregate(n=Max("number"))["n"] or 0) + 1
    incident = Incident(
        team=team,
        number=number,
        title=title.strip(),
        summary=summary,
        severity=severity,
        detection_source=detection_source,
        detected_at=detected_at or timezone.now(),
        reporter=_person(actor),
        owner=owner,
    )
    if incident.detected_at > timezone.now():
        raise ValidationError({"detected_at": "The detection time cannot be in the future."})
    incident.full_clean()
    incident.save()
    incident.systems.set(systems)
    record(
        actor=actor,
        verb="incident.open",
        obj=incident,
        team_id=team.id,
        changes={
            **diff({}, snapshot(incident, ["title", "severity", "detection_source", "detected_at"])),
            "systems": [None, sorted(s.name for s in systems)],
        },
    )
    _measure_after_commit(incident, "incident opened")
    return incident


@transaction.atomic
def incident_update(*, actor: Any, incident: Incident, **fields: Any) -> Incident:
    """Change an incident's description, severity, owner, root cause or lessons."""
    incident = _locked(incident, actor)
    allowed = {"title", "summary", "severity", "owner", "root_cause", "lessons_learned"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"incident_update got unknown fields: {', '.join(sorted(unknown))}")
    if incident.is_closed:
        raise StateConflict("The incident is closed; reopen it to change it.")
    before = snapshot(incident, Incident.AUDITED_FIELDS)
    for name, value in fields.items():
        setattr(incident, name, value)
    incident.full_clean()
    changes = diff(before, snapshot(incident, Incident.AUDITED_FIELDS))
    if changes:
        incident.save()
        record(actor=actor, verb="incident.update", obj=incident, team_id=incident.team_id, changes=changes)
    return incident


@transaction.atomic
def incident_transition(*, actor: Any, incident: Incident, to: str) -> Incident:
    """Move an incident to its next stage; closing needs a root cause, lessons and all actions done."""
    incident = _locked(incident, actor)
    if to not in TRANSITIONS.get(incident.status, set()):
        allowed = ", ".join(sorted(TRANSITIONS.get(incident.status, set()))) or "nothing"
        raise StateConflict(
            f"An incident that is {incident.get_status_display().lower()} cannot become "
            f"{IncidentStatus(to).label.lower() if to in IncidentStatus.values else to}; it can become: {allowed}."
        )
    if to == IncidentStatus.CLOSED:
        problems = {}
        if not incident.root_cause.strip():
            problems["root_cause"] = "Record the root cause before closing."
        if not incident.lessons_learned.strip():
            problems["lessons_learned"] = "Record the lessons learned before closing."
        open_actions = incident.actions.exclude(status=ActionStatus.DONE).count()
        if open_actions:
            problems["actions"] = f"{open_actions} remediation action(s) are not done yet."
        if problems:
            raise ValidationError(problems)
    previous, incident.status = incident.status, to
    incident.closed_at = timezone.now() if to == IncidentStatus.CLOSED else None
    incident.save(update_fields=["status", "closed_at"])
    record(
        actor=actor,
        verb="incident.transition",
        obj=incident,
        team_id=incident.team_id,
        changes={"status": [previous, to]},
    )
    _measure_after_commit(incident, f"incident {to}")
    return incident


def _check_atlas_id(field: str, value: str, kind: str) -> str:
    value = value.strip().upper()
    if value and atlas_unknown_ids([value], kind):
        raise ValidationError({field: f"Unknown ATLAS {kind} '{value}'."})
    return value


@transaction.atomic
def timeline_add(
    *,
    actor: Any,
    incident: Incident,
    occurred_at: datetime,
    note: str,
    atlas_tactic: str = "",
    atlas_technique: str = "",
) -> TimelineEntry:
    """Add a timeline entry; it cannot lie in the future or before the detection."""
    incident = _locked(incident, actor)
    errors = {}
    if occurred_at > timezone.now():
        errors["occurred_at"] = "A timeline entry cannot be in the future."
    elif occurred_at < incident.detected_at:
        errors["occurred_at"] = (
            f"A timeline entry cannot be before the detection "
            f"({incident.detected_at:%Y-%m-%d %H:%M}); put earlier facts in the summary."
        )
    if not note.strip():
        errors["note"] = "Describe what happened."
    if errors:
        raise ValidationError(errors)
    entry = TimelineEntry(
        incident=incident,
        occurred_at=occurred_at,
        actor=_person(actor),
        note=note.strip(),
        atlas_tactic=_check_atlas_id("atlas_tactic", atlas_tactic, AtlasKind.TACTIC),
        atlas_technique=_check_atlas_id("atlas_technique", atlas_technique, AtlasKind.TECHNIQUE),
    )
    entry.full_clean()
    entry.save()
    record(
        actor=actor,
        verb="incident.timeline_add",
        obj=incident,
        team_id=incident.team_id,
        changes={"timeline": [None, f"{occurred_at:%Y-%m-%d %H:%M} {entry.note[:120]}"]},
    )
    return entry


@transaction.atomic
def evidence_add(
    *,
    actor: Any,
    incident: Incident,
    kind: str,
    description: str,
    reference: str = "",
    metrics: dict | None = None,
) -> Evidence:
    """Attach evidence to an incident."""
    incident = _locked(incident, actor)
    evidence = Evidence(
        incident=incident,
        kind=kind,
        description=description.strip(),
        reference=reference,
        metrics=metrics or {},
        added_by=_person(actor),
    )
    evidence.full_clean()
    evidence.save()
    record(
        actor=actor,
        verb="incident.evidence_add",
        obj=incident,
        team_id=incident.team_id,
        changes={"evidence": [None, f"{evidence.get_kind_display()}: {evidence.description[:120]}"]},
    )
    return evidence


@transaction.atomic
def action_add(
    *,
    actor: Any,
    incident: Incident,
    title: str,
    owner: Any = None,
    due_date: Any = None,
    run: Any = None,
) -> RemediationAction:
    """Add a remediation action; with ``run`` (a retrain or re-evaluation) its success completes the action."""
    incident = _locked(incident, actor)
    if incident.is_closed:
        raise StateConflict("The incident is closed; reopen it to add actions.")
    if run is not None and not incident.systems.filter(pk=run.system_id).exists():
        raise ValidationError({"run": "The run belongs to a system this incident does not affect."})
    action = RemediationAction(incident=incident, title=title.strip(), owner=owner, due_date=due_date, run=run)
    action.full_clean()
    action.save()
    record(
        actor=actor,
        verb="incident.action_add",
        obj=incident,
        team_id=incident.team_id,
        changes={"action": [None, action.title]},
    )
    return action


@transaction.atomic
def action_set_status(
    *, actor: Any, action: RemediationAction, status: str, verification: str = ""
) -> RemediationAction:
    """Move a remediation action forward; done needs a note on how it was verified."""
    _locked(action.incident, actor)
    action = RemediationAction.objects.select_for_update().get(pk=action.pk)
    if status not in ActionStatus.values:
        raise ValidationError({"status": f"Unknown status '{status}'."})
    if status == ActionStatus.DONE and not (verification or action.verification).strip():
        raise ValidationError({"verification": "Say how the fix was verified (e.g. the re-evaluation run)."})
    previous = action.status
    action.status = status
    action.verification = verification or action.verification
    action.completed_at = timezone.now() if status == ActionStatus.DONE else None
    action.save()
    record(
        actor=actor,
        verb="incident.action_status",
        obj=action.incident,
        team_id=action.incident.team_id,
        changes={"action": [None, action.title], "status": [previous, status]},
    )
    return action


@transaction.atomic
def incident_link(
    *, actor: Any, incident: Incident, threats: list[Threat] | None = None, controls: list[Control] | None = None
) -> Incident:
    """Link the threats the incident realised and the controls involved (same team only)."""
    incident = _locked(incident, actor)
    system_ids = set(incident.systems.values_list("id", flat=True))
    for element in [*(threats or []), *(controls or [])]:
        if element.version.threat_model.system_id not in system_ids:
            raise ValidationError({"threats": f"'{element}' belongs to a system this incident does not affect."})
    if threats is not None:
        incident.threats.set(threats)
    if controls is not None:
        incident.controls.set(controls)
    changes = {}
    if threats is not None:
        changes["threats"] = [None, sorted(t.title for t in threats)]
    if controls is not None:
        changes["controls"] = [None, sorted(c.name for c in controls)]
    record(actor=actor, verb="incident.link", obj=incident, team_id=incident.team_id, changes=changes)
    return incident


@transaction.atomic
def incident_start_threat_model_draft(*, actor: Any, incident: Incident) -> Any:
    """Start a new draft of the affected threat model with the realised threats accepted and raised.

    The realised threats are matched by their stable uid in the new draft; each becomes
    accepted with likelihood at least 4, since the incident shows it can happen.
    """
    incident = _locked(incident, actor)
    if incident.threat_model_version_id:
        raise StateConflict("A threat-model draft was already started from this incident.")
    realised = list(incident.threats.select_related("version__threat_model"))
    if not realised:
        raise ValidationError({"threats": "Link the threats this incident realised first."})
    threat_model = realised[0].version.threat_model
    draft = threat_model.versions.filter(status=VersionStatus.DRAFT).first()
    if draft is None:
        draft = version_start_draft(actor=actor, threat_model=threat_model)
    uids = {t.uid for t in realised if t.version.threat_model_id == threat_model.pk}
    # Each threat change goes through the threat services (and leaves its own audit row).
    for threat in draft.threats.filter(uid__in=uids):
        if threat.status != ThreatStatus.ACCEPTED:
            threat_decide(actor=actor, threat=threat, status=ThreatStatus.ACCEPTED)
        if threat.likelihood < 4:
            threat_update(actor=actor, threat=threat, likelihood=4)
    incident.threat_model_version = draft
    incident.save(update_fields=["threat_model_version"])
    record(
        actor=actor,
        verb="incident.threat_model_draft",
        obj=incident,
        team_id=incident.team_id,
        changes={"threat_model_version": [None, str(draft)]},
    )
    return draft


REPORT_TTL_DAYS = 30


@transaction.atomic
def report_request(*, actor: Any, kind: str, system: System | None = None) -> Any:
    """Queue an audit report: of one system (its team's members), or of every system the requester sees."""
    from datetime import timedelta

    from incidents.models import Report, ReportKind
    from incidents.tasks import render_report

    if kind == ReportKind.SYSTEM_AUDIT:
        if system is None:
            raise ValidationError({"system": "A system audit needs a system."})
        require_capability(user=actor, team_id=system.team_id, capability=Capability.VIEW)
        team_id = system.team_id
    else:
        if getattr(actor, "pk", None) is None:
            raise ValidationError({"kind": "Portfolio audits are requested by a person, not a token."})
        system, team_id = None, None
    report = Report.objects.create(
        team_id=team_id,
        kind=kind,
        system=system,
        requested_by=_person(actor),
        expires_at=timezone.now() + timedelta(days=REPORT_TTL_DAYS),
    )
    record(
        actor=actor,
        verb="report.request",
        obj=report,
        team_id=team_id,
        changes={"kind": [None, kind], "system": [None, str(system) if system else None]},
    )
    transaction.on_commit(lambda: render_report.delay(report.pk))
    return report
