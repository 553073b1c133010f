"""Writes to the parts of a draft version: boundaries, components, flows, threats and controls.

Every write checks that the version is a draft (approved versions are immutable:
start a new draft to change them) and that the principal may edit the team's
threat models, validates, and leaves exactly one audit row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import diff, record, snapshot
from garrison.core.exceptions import StateConflict
from threatmodel.models import (
    AtlasKind,
    Component,
    Control,
    DataFlow,
    EvidenceState,
    Threat,
    ThreatModelVersion,
    ThreatStatus,
    TrustBoundary,
)
from threatmodel.selectors import atlas_unknown_ids
from threatmodel.signals import threat_model_changed
from threatmodel.suggestions import suggest_for_component, suggest_for_flow


def _draft(actor: Any, version: ThreatModelVersion, capability: str = Capability.EDIT) -> ThreatModelVersion:
    """Lock the version and check that it is a draft the principal may change."""
    version = ThreatModelVersion.objects.select_for_update().select_related("threat_model__system").get(pk=version.pk)
    require_capability(user=actor, team_id=version.threat_model.system.team_id, capability=capability)
    if not version.is_editable:
        raise StateConflict(
            f"Version {version.number} is {version.get_status_display().lower()} and cannot change; "
            "start a new draft to edit the threat model."
        )
    return version


def _team(version: ThreatModelVersion) -> int:
    return version.threat_model.system.team_id


def _values(instance: models.Model) -> dict[str, Any]:
    """The diffable fields, with related elements shown by name."""
    values = snapshot(instance, [f for f in instance.DIFF_FIELDS if not _is_relation(instance, f)])
    for name in instance.DIFF_FIELDS:
        if _is_relation(instance, name):
            related = getattr(instance, name)
            values[name] = str(related) if related is not None else None
    return values


def _is_relation(instance: models.Model, name: str) -> bool:
    return instance._meta.get_field(name).is_relation


def _create(
    actor: Any, instance: models.Model, verb: str, suggest: Callable[[Any], list] | None = None, **extra: Any
) -> models.Model:
    """Validate, save and audit a new element; ``suggest`` adds catalog threats to it after saving."""
    instance.full_clean()
    instance.save()
    if suggest is not None:
        extra["suggested_threats"] = len(suggest(instance))
    changes = diff({}, _values(instance))
    changes.update({key: [None, value] for key, value in extra.items()})
    record(actor=actor, verb=verb, obj=instance, team_id=_team(instance.version), changes=changes)
    return instance


def _update(actor: Any, instance: models.Model, verb: str, fields: dict[str, Any]) -> models.Model:
    unknown = set(fields) - set(instance.DIFF_FIELDS) - {"owner_id"}
    if unknown:
        raise TypeError(f"{verb} got unknown fields: {', '.join(sorted(unknown))}")
    before = _values(instance)
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean()
    changes = diff(before, _values(instance))
    if changes:
        instance.save()
        record(actor=actor, verb=verb, obj=instance, team_id=_team(instance.version), changes=changes)
    return instance


def _delete(actor: Any, instance: models.Model, verb: str) -> None:
    record(actor=actor, verb=verb, obj=instance, team_id=_team(instance.version), changes=diff(_values(instance), {}))
    instance.delete()


def _same_version(version: ThreatModelVersion, **elements: models.Model | None) -> None:
    errors = {
        name: f"This {name} belongs to another version or system; pick one from this threat model."
        for name, element in elements.items()
        if element is not None and element.version_id != version.pk
    }
    if errors:
        raise ValidationError(errors)


def _check_atlas(field: str, ids: list[str], kind: str) -> list[str]:
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValidationError({field: "Give a list of ATLAS IDs."})
    cleaned = sorted({i.strip() for i in ids if i.strip()})
    unknown = atlas_unknown_ids(cleaned, kind)
    if unknown:
        raise ValidationError(
            {
                field: f"Unknown ATLAS {kind} ID(s): {', '.join(unknown)}. Use IDs such as "
                f"{'AML.T0043' if kind == AtlasKind.TECHNIQUE else 'AML.M0015'} from the ATLAS catalog."
            }
        )
    return cleaned


# --- Trust boundaries -------------------------------------------------------------------------


@transaction.atomic
def boundary_create(*, actor: Any, version: ThreatModelVersion, name: str, description: str = "") -> TrustBoundary:
    """Add a trust boundary."""
    version = _draft(actor, version)
    return _create(
        actor, TrustBoundary(version=version, name=name.strip(), description=description), "trust_boundary.create"
    )


@transaction.atomic
def boundary_update(*, actor: Any, boundary: TrustBoundary, **fields: Any) -> TrustBoundary:
    """Rename or describe a trust boundary."""
    _draft(actor, boundary.version)
    return _update(actor, boundary, "trust_boundary.update", fields)


@transaction.atomic
def boundary_delete(*, actor: Any, boundary: TrustBoundary) -> None:
    """Remove a trust boundary; its components stay, outside any boundary."""
    _draft(actor, boundary.version)
    _delete(actor, boundary, "trust_boundary.delete")


# --- Components ---------------------------------------------------------------------------------


@transaction.atomic
def component_create(
    *,
    actor: Any,
    version: ThreatModelVersion,
    name: str,
    component_type: str,
    description: str = "",
    boundary: TrustBoundary | None = None,
    suggest: bool = True,
) -> Component:
    """Add a component and, unless told not to, the catalog's suggested threats for its type."""
    version = _draft(actor, version)
    _same_version(version, boundary=boundary)
    component = Component(
        version=version, name=name.strip(), component_type=component_type, description=description, boundary=boundary
    )
    return _create(actor, component, "component.create", suggest_for_component if suggest else None)


@transaction.atomic
def component_update(*, actor: Any, component: Component, **fields: Any) -> Component:
    """Change a component."""
    version = _draft(actor, component.version)
    _same_version(version, boundary=fields.get("boundary"))
    return _update(actor, component, "component.update", fields)


@transaction.atomic
def component_delete(*, actor: Any, component: Component) -> None:
    """Remove a component with its flows and threats."""
    _draft(actor, component.version)
    _delete(actor, component, "component.delete")


# --- Data flows ----------------------------------------------------------------------------------


def _check_flow_ends(source: Component, target: Component) -> None:
    if source.pk == target.pk:
        raise ValidationError({"target": "A flow needs two different components."})


@transaction.atomic
def flow_create(
    *,
    actor: Any,
    version: ThreatModelVersion,
    source: Component,
    target: Component,
    data: str,
    protocol: str = "",
    authenticated: bool = True,
    suggest: bool = True,
) -> DataFlow:
    """Add a data flow between two components of this version, with suggested threats."""
    version = _draft(actor, version)
    _same_version(version, source=source, target=target)
    _check_flow_ends(source, target)
    flow = DataFlow(
        version=version, source=source, target=target, data=data.strip(), protocol=protocol, authenticated=authenticated
    )
    return _create(actor, flow, "data_flow.create", suggest_for_flow if suggest else None)


@transaction.atomic
def flow_update(*, actor: Any, flow: DataFlow, **fields: Any) -> DataFlow:
    """Change a data flow."""
    version = _draft(actor, flow.version)
    _same_version(version, source=fields.get("source"), target=fields.get("target"))
    _check_flow_ends(fields.get("source", flow.source), fields.get("target", flow.target))
    return _update(actor, flow, "data_flow.update", fields)


@transaction.atomic
def flow_delete(*, actor: Any, flow: DataFlow) -> None:
    """Remove a data flow with its threats."""
    _draft(actor, flow.version)
    _delete(actor, flow, "data_flow.delete")


# --- Threats ---------------------------------------------------------------------------------------


@transaction.atomic
def threat_create(
    *,
    actor: Any,
    version: ThreatModelVersion,
    title: str,
    stride: str,
    component: Component | None = None,
    flow: DataFlow | None = None,
    description: str = "",
    atlas_techniques: list[str] | None = None,
    owasp_ml: list[str] | None = None,
    likelihood: int = 3,
    impact: int = 3,
) -> Threat:
    """Add a custom threat (accepted) to a component or flow."""
    version = _draft(actor, version)
    _same_version(version, component=component, flow=flow)
    if (component is None) == (flow is None):
        raise ValidationError({"component": "Attach the threat to exactly one component or one data flow."})
    threat = Threat(
        version=version,
        title=title.strip(),
        stride=stride,
        component=component,
        flow=flow,
        description=description,
        atlas_techniques=_check_atlas("atlas_techniques", atlas_techniques or [], AtlasKind.TECHNIQUE),
        owasp_ml=_check_owasp(owasp_ml or []),
        likelihood=likelihood,
        impact=impact,
        status=ThreatStatus.ACCEPTED,
    )
    return _create(actor, threat, "threat.create")


def _check_owasp(ids: list[str]) -> list[str]:
    from threatmodel.catalog import OWASP_ML_TOP10

    unknown = sorted(set(ids) - set(OWASP_ML_TOP10))
    if unknown:
        raise ValidationError({"owasp_ml": f"Unknown OWASP ML Top 10 ID(s): {', '.join(unknown)}; use ML01 to ML10."})
    return sorted(set(ids))


@transaction.atomic
def threat_update(*, actor: Any, threat: Threat, **fields: Any) -> Threat:
    """Edit a threat's text, mapping or scores."""
    _draft(actor, threat.version)
    if "atlas_techniques" in fields:
        fields["atlas_techniques"] = _check_atlas("atlas_techniques", fields["atlas_techniques"], AtlasKind.TECHNIQUE)
    if "owasp_ml" in fields:
        fields["owasp_ml"] = _check_owasp(fields["owasp_ml"])
    for forbidden in ("status", "justification", "component", "flow"):
        if forbidden in fields:
            raise TypeError(f"threat_update cannot change {forbidden}; use threat_decide or recreate the threat")
    return _update(actor, threat, "threat.update", fields)


@transaction.atomic
def threat_decide(*, actor: Any, threat: Threat, status: str, justification: str = "") -> Threat:
    """Accept a suggested threat, or mark it not applicable with a justification."""
    _draft(actor, threat.version)
    if status not in ThreatStatus.values:
        raise ValidationError({"status": f"Unknown status '{status}'. Use one of: {', '.join(ThreatStatus.values)}."})
    if status == ThreatStatus.NOT_APPLICABLE and not justification.strip():
        raise ValidationError({"justification": "Say why this threat does not apply (reviewers will read it)."})
    return _update(
        actor,
        threat,
        "threat.decide",
        {"status": status, "justification": justification.strip() if status != "accepted" else ""},
    )


@transaction.atomic
def threat_delete(*, actor: Any, threat: Threat) -> None:
    """Delete a threat (suggested ones are better marked not applicable, which keeps the reasoning)."""
    _draft(actor, threat.version)
    _delete(actor, threat, "threat.delete")


@transaction.atomic
def threat_accept_risk(*, actor: Any, threat: Threat, reason: str, expires: date) -> Threat:
    """Accept a threat's residual risk until a date (approvers); the acceptance expires by itself."""
    _draft(actor, threat.version, capability=Capability.APPROVE)
    errors = {}
    if not reason.strip():
        errors["risk_acceptance_reason"] = "Say why the residual risk is acceptable."
    if expires <= date.today():
        errors["risk_acceptance_expires"] = "The acceptance must expire in the future."
    if errors:
        raise ValidationError(errors)
    threat.risk_accepted_by = actor
    return _update(
        actor,
        threat,
        "threat.accept_risk",
        {"risk_acceptance_reason": reason.strip(), "risk_acceptance_expires": expires},
    )


# --- Controls -----------------------------------------------------------------------------------------


def _check_owner(version: ThreatModelVersion, owner: Any) -> None:
    if owner is not None and not owner.memberships.filter(team_id=_team(version)).exists():
        raise ValidationError({"owner": f"'{owner}' is not a member of this team; pick a team member as owner."})


def _check_threats(version: ThreatModelVersion, threats: list[Threat]) -> list[Threat]:
    foreign = [t for t in threats if t.version_id != version.pk]
    if foreign:
        raise ValidationError({"threats": "Some threats belong to another version; pick threats from this one."})
    return threats


@transaction.atomic
def control_create(
    *,
    actor: Any,
    version: ThreatModelVersion,
    name: str,
    control_type: str = "preventive",
    description: str = "",
    atlas_mitigations: list[str] | None = None,
    owner: Any = None,
    due_date: date | None = None,
    status: str = "planned",
    threats: list[Threat] | None = None,
) -> Control:
    """Add a control that mitigates some of the version's threats."""
    version = _draft(actor, version)
    _check_owner(version, owner)
    control = Control(
        version=version,
        name=name.strip(),
        control_type=control_type,
        description=description,
        atlas_mitigations=_check_atlas("atlas_mitigations", atlas_mitigations or [], AtlasKind.MITIGATION),
        owner=owner,
        due_date=due_date,
        status=status,
    )
    linked = _check_threats(version, threats or [])
    control.full_clean()
    control.save()
    control.threats.set(linked)
    record(
        actor=actor,
        verb="control.create",
        obj=control,
        team_id=_team(version),
        changes={**diff({}, _values(control)), "threats": [None, sorted(t.title for t in linked)]},
    )
    return control


@transaction.atomic
def control_update(*, actor: Any, control: Control, threats: list[Threat] | None = None, **fields: Any) -> Control:
    """Change a control and, when given, the threats it mitigates."""
    version = _draft(actor, control.version)
    if "owner" in fields:
        _check_owner(version, fields["owner"])
    if "atlas_mitigations" in fields:
        fields["atlas_mitigations"] = _check_atlas(
            "atlas_mitigations", fields["atlas_mitigations"], AtlasKind.MITIGATION
        )
    before_threats = sorted(control.threats.values_list("title", flat=True))
    before = _values(control)
    for name, value in fields.items():
        if name not in Control.DIFF_FIELDS:
            raise TypeError(f"control_update got unknown field {name}")
        setattr(control, name, value)
    control.full_clean()
    changes = diff(before, _values(control))
    if threats is not None:
        control.threats.set(_check_threats(version, threats))
        after_threats = sorted(t.title for t in threats)
        if after_threats != before_threats:
            changes["threats"] = [before_threats, after_threats]
    if changes:
        control.save()
        record(actor=actor, verb="control.update", obj=control, team_id=_team(version), changes=changes)
    return control


@transaction.atomic
def control_delete(*, actor: Any, control: Control) -> None:
    """Remove a control."""
    _draft(actor, control.version)
    _delete(actor, control, "control.delete")


@transaction.atomic
def control_set_evidence_state(*, control: Control, state: str, detail: str = "", actor: Any = None) -> Control:
    """Record what evaluation evidence says about a control (called by the evaluations app, any version status).

    Evidence is an observation about the deployed system, not an edit of the model, so
    it may change on approved versions too; it never changes the control's own fields.
    """
    if state not in EvidenceState.values:
        raise ValidationError({"state": f"Unknown evidence state '{state}'."})
    control = Control.objects.select_for_update().select_related("version__threat_model__system").get(pk=control.pk)
    if control.evidence_state == state and control.evidence_detail == detail:
        return control
    before = control.evidence_state
    control.evidence_state, control.evidence_detail, control.evidence_checked_at = state, detail[:255], timezone.now()
    control.save(update_fields=["evidence_state", "evidence_detail", "evidence_checked_at"])
    system_id = control.version.threat_model.system_id
    transaction.on_commit(
        lambda: threat_model_changed.send(
            sender=Control, system_id=system_id, reason=f"evidence of '{control.name}' is {state}"
        )
    )
    record(
        actor=actor,
        verb="control.evidence",
        obj=control,
        team_id=_team(control.version),
        changes={"evidence_state": [before, state], "evidence_detail": [None, detail[:255]]},
    )
    return control
