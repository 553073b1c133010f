"""The format-neutral import plan, the import report, and writing a plan into a draft through the services.

Each reader (OTM, Threat Dragon) turns a document into a :class:`Plan` without touching
the database, recording in the :class:`ImportReport` what it guessed and what it could
not map. :func:`apply_plan` then writes the plan with the same services the pages and
the API use, so every element is validated and audited like a hand-made one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from threatmodel import services
from threatmodel.catalog import OWASP_ML_TOP10
from threatmodel.models import AtlasKind, ThreatModelVersion, ThreatStatus
from threatmodel.selectors import atlas_unknown_ids


class InterchangeError(ValueError):
    """The document cannot be imported; ``problems`` lists each one as ``{"path", "reason"}``."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['path']}: {p['reason']}" for p in problems))

    @property
    def messages(self) -> list[str]:
        """One ``path: reason`` line per problem."""
        return [f"{p['path']}: {p['reason']}" for p in self.problems]


class DocumentTooLarge(InterchangeError):
    """The document is over the import size limit."""


@dataclass
class ImportReport:
    """What an import wrote, what it guessed, and what it could not map (each with the path in the document)."""

    format: str
    imported: Counter = field(default_factory=Counter)
    removed: Counter = field(default_factory=Counter)
    unmapped: list[dict[str, str]] = field(default_factory=list)
    guesses: list[dict[str, str]] = field(default_factory=list)
    threat_model_id: int | None = None
    version_id: int | None = None

    def not_mapped(self, path: str, reason: str) -> None:
        """Record something the import left out, and why."""
        self.unmapped.append({"path": path, "reason": reason})

    def guessed(self, path: str, value: Any, reason: str) -> None:
        """Record a value the import chose because the document did not say."""
        self.guesses.append({"path": path, "value": str(value), "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        """JSON form (the API's 201 body)."""
        kinds = ("trust_boundaries", "components", "data_flows", "threats", "controls")
        return {
            "format": self.format,
            "threat_model": self.threat_model_id,
            "version": self.version_id,
            "imported": {kind: self.imported.get(kind, 0) for kind in kinds},
            "removed_from_draft": {kind: self.removed.get(kind, 0) for kind in kinds},
            "unmapped": self.unmapped,
            "guesses": self.guesses,
        }


@dataclass
class PlannedBoundary:
    """A trust boundary to create."""

    key: str
    path: str
    name: str
    description: str = ""


@dataclass
class PlannedComponent:
    """A component to create; ``boundary`` is a planned boundary's key."""

    key: str
    path: str
    name: str
    component_type: str
    description: str = ""
    boundary: str | None = None


@dataclass
class PlannedFlow:
    """A data flow to create between two planned components."""

    key: str
    path: str
    source: str
    target: str
    data: str
    protocol: str = ""
    authenticated: bool = True


@dataclass
class PlannedThreat:
    """A threat to create on one planned component or flow."""

    key: str
    path: str
    title: str
    stride: str
    component: str | None = None
    flow: str | None = None
    description: str = ""
    atlas_techniques: list[str] = field(default_factory=list)
    owasp_ml: list[str] = field(default_factory=list)
    likelihood: int = 3
    impact: int = 3
    status: str = ThreatStatus.ACCEPTED
    justification: str = ""
    catalog_key: str = ""


@dataclass
class PlannedControl:
    """A control to create, mitigating planned threats; ``owner`` is a username."""

    key: str
    path: str
    name: str
    description: str = ""
    control_type: str = "preventive"
    atlas_mitigations: list[str] = field(default_factory=list)
    owner: str = ""
    due_date: date | None = None
    status: str = "planned"
    threats: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Everything an import will create, in dependency order."""

    title: str = ""
    boundaries: list[PlannedBoundary] = field(default_factory=list)
    components: list[PlannedComponent] = field(default_factory=list)
    flows: list[PlannedFlow] = field(default_factory=list)
    threats: list[PlannedThreat] = field(default_factory=list)
    controls: list[PlannedControl] = field(default_factory=list)


def clip(value: Any, limit: int, path: str, report: ImportReport) -> str:
    """A string of at most ``limit`` characters; a longer one is shortened and the guess recorded."""
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        report.guessed(path, text[: limit - 1] + "…", f"shortened to {limit} characters, the most Garrison keeps")
        return text[: limit - 1] + "…"
    return text


def _write(path: str, service: Any, **kwargs: Any) -> Any:
    """Call a service; a validation error names the element it came from."""
    try:
        return service(**kwargs)
    except ValidationError as error:
        messages = (
            [f"{name}: {'; '.join(msgs)}" for name, msgs in error.message_dict.items()]
            if hasattr(error, "error_dict")
            else error.messages
        )
        raise InterchangeError([{"path": path, "reason": message} for message in messages]) from error


def _known_atlas(ids: list[str], kind: str, path: str, report: ImportReport) -> list[str]:
    unknown = set(atlas_unknown_ids(ids, kind))
    for atlas_id in sorted(unknown):
        report.not_mapped(path, f"'{atlas_id}' is not a current ATLAS {kind} ID; it was left out.")
    return [i for i in ids if i not in unknown]


def _known_owasp(ids: list[str], path: str, report: ImportReport) -> list[str]:
    for owasp_id in sorted(set(ids) - set(OWASP_ML_TOP10)):
        report.not_mapped(path, f"'{owasp_id}' is not an OWASP ML Top 10 ID (ML01 to ML10); it was left out.")
    return [i for i in ids if i in OWASP_ML_TOP10]


def clear_version(*, actor: Any, version: ThreatModelVersion, report: ImportReport) -> None:
    """Remove everything a new draft copied from the previous version, so the import replaces it."""
    for kind, related, delete, argument in (
        ("controls", "controls", services.control_delete, "control"),
        ("threats", "threats", services.threat_delete, "threat"),
        ("data_flows", "dataflows", services.flow_delete, "flow"),
        ("components", "components", services.component_delete, "component"),
        ("trust_boundaries", "trustboundarys", services.boundary_delete, "boundary"),
    ):
        for element in getattr(version, related).all():
            delete(actor=actor, **{argument: element})
            report.removed[kind] += 1


def apply_plan(*, actor: Any, version: ThreatModelVersion, plan: Plan, report: ImportReport) -> None:
    """Create the plan's elements in ``version`` (a draft) through the services; nothing is suggested."""
    team_id = version.threat_model.system.team_id
    boundaries = {}
    for b in plan.boundaries:
        boundaries[b.key] = _write(
            b.path, services.boundary_create, actor=actor, version=version, name=b.name, description=b.description
        )
        report.imported["trust_boundaries"] += 1
    components = {}
    for c in plan.components:
        components[c.key] = _write(
            c.path,
            services.component_create,
            actor=actor,
            version=version,
            name=c.name,
            component_type=c.component_type,
            description=c.description,
            boundary=boundaries.get(c.boundary) if c.boundary else None,
            suggest=False,
        )
        report.imported["components"] += 1
    flows = {}
    for f in plan.flows:
        flows[f.key] = _write(
            f.path,
            services.flow_create,
            actor=actor,
            version=version,
            source=components[f.source],
            target=components[f.target],
            data=f.data,
            protocol=f.protocol,
            authenticated=f.authenticated,
            suggest=False,
        )
        report.imported["data_flows"] += 1
    threats = {}
    for t in plan.threats:
        threat = _write(
            t.path,
            services.threat_create,
            actor=actor,
            version=version,
            title=t.title,
            stride=t.stride,
            component=components[t.component] if t.component else None,
            flow=flows[t.flow] if t.flow else None,
            description=t.description,
            atlas_techniques=_known_atlas(t.atlas_techniques, AtlasKind.TECHNIQUE, t.path, report),
            owasp_ml=_known_owasp(t.owasp_ml, t.path, report),
            likelihood=t.likelihood,
            impact=t.impact,
        )
        # threat_create makes a custom, accepted threat; the catalog key and decision come after.
        if t.catalog_key:
            threat = _write(t.path, services.threat_update, actor=actor, threat=threat, catalog_key=t.catalog_key)
        if t.status != ThreatStatus.ACCEPTED:
            threat = _write(
                t.path,
                services.threat_decide,
                actor=actor,
                threat=threat,
                status=t.status,
                justification=t.justification,
            )
        threats[t.key] = threat
        report.imported["threats"] += 1
    users = get_user_model().objects.filter(memberships__team_id=team_id)
    for c in plan.controls:
        owner = users.filter(username=c.owner).first() if c.owner else None
        if c.owner and owner is None:
            report.not_mapped(c.path, f"No member of this team has the username '{c.owner}'; the control has no owner.")
        _write(
            c.path,
            services.control_create,
            actor=actor,
            version=version,
            name=c.name,
            description=c.description,
            control_type=c.control_type,
            atlas_mitigations=_known_atlas(c.atlas_mitigations, AtlasKind.MITIGATION, c.path, report),
            owner=owner,
            due_date=c.due_date,
            status=c.status,
            threats=[threats[key] for key in dict.fromkeys(c.threats)],
        )
        report.imported["controls"] += 1
