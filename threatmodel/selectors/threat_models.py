"""Reads of threat models and versions, with the risk register, heat map and coverage."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability, team_ids_for
from threatmodel.models import (
    Component,
    Control,
    DataFlow,
    System,
    Threat,
    ThreatModel,
    ThreatModelVersion,
    ThreatStatus,
    TrustBoundary,
)
from threatmodel.risk import Residual, residual_risk, risk_level


def approved_versions(system_ids: list[int]) -> dict[int, list[ThreatModelVersion]]:
    """The approved version of every threat model of the given systems, by system id (no permission check)."""
    by_system: dict[int, list[ThreatModelVersion]] = {}
    for version in ThreatModelVersion.objects.filter(
        threat_model__system_id__in=system_ids, status="approved"
    ).select_related("threat_model"):
        by_system.setdefault(version.threat_model.system_id, []).append(version)
    return by_system


def threat_model_list(*, user: Any, system: System) -> QuerySet[ThreatModel]:
    """A system's threat models with their versions."""
    require_capability(user=user, team_id=system.team_id, capability=Capability.VIEW)
    return system.threat_models.prefetch_related(
        Prefetch(
            "versions", queryset=ThreatModelVersion.objects.select_related("author", "submitted_by", "reviewed_by")
        )
    )


def threat_model_get(*, user: Any, id: int, capability: str = Capability.VIEW) -> ThreatModel:  # noqa: A002
    """One threat model; 404 outside the team."""
    threat_model = (
        ThreatModel.objects.select_related("system__team").filter(id=id, system__team_id__in=team_ids_for(user)).first()
    )
    if threat_model is None:
        raise Http404("No such threat model.")
    require_capability(user=user, team_id=threat_model.system.team_id, capability=capability)
    return threat_model


def version_get(*, user: Any, id: int, capability: str = Capability.VIEW) -> ThreatModelVersion:  # noqa: A002
    """One threat-model version; 404 outside the team, 403 without ``capability``."""
    version = (
        ThreatModelVersion.objects.select_related("threat_model__system__team", "author", "submitted_by", "reviewed_by")
        .filter(id=id, threat_model__system__team_id__in=team_ids_for(user))
        .first()
    )
    if version is None:
        raise Http404("No such threat-model version.")
    require_capability(user=user, team_id=version.threat_model.system.team_id, capability=capability)
    return version


ELEMENT_MODELS = {
    "boundary": TrustBoundary,
    "component": Component,
    "flow": DataFlow,
    "threat": Threat,
    "control": Control,
}


def element_get(*, user: Any, kind: str, id: int, capability: str = Capability.VIEW) -> Any:  # noqa: A002
    """One element of a version (boundary, component, flow, threat, control); 404 outside the team."""
    model = ELEMENT_MODELS.get(kind)
    if model is None:
        raise Http404("No such kind of element.")
    element = (
        model.objects.select_related("version__threat_model__system")
        .filter(id=id, version__threat_model__system__team_id__in=team_ids_for(user))
        .first()
    )
    if element is None:
        raise Http404(f"No such {kind}.")
    require_capability(user=user, team_id=element.version.threat_model.system.team_id, capability=capability)
    return element


@dataclass
class RegisterRow:
    """One threat in the risk register."""

    threat: Threat
    residual: Residual
    controls: list[Control]

    @property
    def verified(self) -> bool:
        """At least one verified control mitigates the threat."""
        return any(c.is_verified for c in self.controls)


@dataclass
class VersionContent:
    """Everything on a version's page, loaded in a fixed number of queries."""

    version: ThreatModelVersion
    boundaries: list[TrustBoundary]
    components: list[Component]
    flows: list[DataFlow]
    threats: list[Threat]
    controls: list[Control]
    register: list[RegisterRow] = field(default_factory=list)

    @property
    def live_rows(self) -> list[RegisterRow]:
        """Register rows of threats that are not marked not-applicable."""
        return [r for r in self.register if r.threat.status != ThreatStatus.NOT_APPLICABLE]

    def heat_map(self, *, residual: bool = False) -> list[dict[str, Any]]:
        """5x5 cells: rows are impact 5..1, columns likelihood 1..5, each with its count and risk band."""
        counts = Counter(
            (r.residual.likelihood, r.residual.impact) if residual else (r.threat.likelihood, r.threat.impact)
            for r in self.live_rows
        )
        return [
            {
                "impact": impact,
                "cells": [
                    {
                        "likelihood": likelihood,
                        "count": counts[(likelihood, impact)],
                        "level": risk_level(likelihood * impact),
                    }
                    for likelihood in range(1, 6)
                ],
            }
            for impact in range(5, 0, -1)
        ]

    @property
    def coverage(self) -> tuple[int, int]:
        """(high/critical accepted threats with a verified control, all high/critical accepted threats)."""
        serious = [
            r
            for r in self.register
            if r.threat.status == ThreatStatus.ACCEPTED and r.threat.inherent_level in ("high", "critical")
        ]
        return sum(1 for r in serious if r.verified), len(serious)

    @property
    def coverage_ratio(self) -> float | None:
        """Control coverage of high/critical threats, or None when there are none."""
        covered, total = self.coverage
        return covered / total if total else None

    @property
    def status_counts(self) -> dict[str, int]:
        """How many threats are suggested, accepted, not applicable."""
        return dict(Counter(t.status for t in self.threats))


def version_content(*, user: Any, version: ThreatModelVersion) -> VersionContent:
    """Load a version's elements and compute residual risk for each threat (scoped to the user)."""
    require_capability(user=user, team_id=version.threat_model.system.team_id, capability=Capability.VIEW)
    return build_version_content(version)


def build_version_content(version: ThreatModelVersion) -> VersionContent:
    """Load a version's elements and risk without a permission check (for internal computations such as KPIs)."""
    controls = list(version.controls.select_related("owner").prefetch_related("threats"))
    by_threat: dict[int, list[Control]] = {}
    for control in controls:
        for threat in control.threats.all():
            by_threat.setdefault(threat.pk, []).append(control)
    threats = list(version.threats.select_related("component", "flow__source", "flow__target", "risk_accepted_by"))
    register = [
        RegisterRow(
            threat=t,
            controls=by_threat.get(t.pk, []),
            residual=residual_risk(likelihood=t.likelihood, impact=t.impact, controls=by_threat.get(t.pk, [])),
        )
        for t in threats
    ]
    return VersionContent(
        version=version,
        boundaries=list(version.trustboundarys.all()),
        components=list(version.components.select_related("boundary")),
        flows=list(version.dataflows.select_related("source__boundary", "target__boundary")),
        threats=threats,
        controls=controls,
        register=register,
    )
