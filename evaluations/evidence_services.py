"""Writes to evidence requirements; audited, then the control's evidence is checked at once."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from evaluations.evidence import METRICS, refresh_system
from evaluations.models import EvidenceRequirement, RunKind
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import record
from threatmodel.models import Control


@transaction.atomic
def evidence_requirement_create(
    *,
    actor: Any,
    control: Control,
    kind: str,
    metric: str,
    comparator: str,
    threshold: float,
    epsilon: float | None = None,
    max_age_days: int = 30,
) -> EvidenceRequirement:
    """Require a run metric to hold for a control (editors); the control's evidence is checked right away."""
    system = control.version.threat_model.system
    require_capability(user=actor, team_id=system.team_id, capability=Capability.EDIT)
    if kind not in RunKind.values:
        raise ValidationError({"kind": f"Unknown run kind '{kind}'."})
    if metric not in METRICS.get(kind, ()):
        raise ValidationError(
            {"metric": f"'{metric}' is not a metric of {kind} runs; use one of: {', '.join(METRICS.get(kind, ()))}."}
        )
    if (
        kind == RunKind.ROBUSTNESS
        and metric in ("robust_accuracy", "attack_success_rate", "robust_accuracy_drop")
        and epsilon is None
    ):
        raise ValidationError({"epsilon": "Say at which epsilon the metric must hold, e.g. 0.1."})
    requirement = EvidenceRequirement(
        system=system,
        control_uid=control.uid,
        control_name=control.name,
        kind=kind,
        metric=metric,
        comparator=comparator,
        threshold=threshold,
        epsilon=epsilon,
        max_age_days=max_age_days,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    requirement.full_clean()
    requirement.save()
    record(
        actor=actor,
        verb="evidence_requirement.create",
        obj=requirement,
        team_id=system.team_id,
        changes={"control": [None, control.name], "requirement": [None, str(requirement)]},
    )
    transaction.on_commit(lambda: refresh_system(system.pk, kind=kind))
    return requirement


@transaction.atomic
def evidence_requirement_delete(*, actor: Any, requirement: EvidenceRequirement) -> None:
    """Remove a requirement (editors); the control keeps its last evidence state until re-checked."""
    require_capability(user=actor, team_id=requirement.system.team_id, capability=Capability.EDIT)
    record(
        actor=actor,
        verb="evidence_requirement.delete",
        obj=requirement,
        team_id=requirement.system.team_id,
        changes={"requirement": [str(requirement), None]},
    )
    requirement.delete()
