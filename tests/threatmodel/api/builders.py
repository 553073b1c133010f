"""Build threat-model versions with content through the services, for API and interchange tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from threatmodel import services
from threatmodel.models import Component, Control, DataFlow, Threat, ThreatModel, ThreatModelVersion, TrustBoundary


@dataclass
class Content:
    """The elements of a built version."""

    threat_model: ThreatModel
    version: ThreatModelVersion
    boundary: TrustBoundary
    api: Component
    store: Component
    client: Component
    flow: DataFlow
    threat: Threat
    flow_threat: Threat
    dismissed: Threat
    control: Control


def build_version(*, actor: Any, system: Any, owner: Any = None, title: str = "Fraud scorer threat model") -> Content:
    """A draft with one boundary, three components (one outside any boundary), a flow, threats of each status
    (a catalog one among them), and a verified control with an owner and a due date."""
    threat_model = services.threat_model_create(actor=actor, system=system, title=title)
    version = threat_model.versions.get()
    boundary = services.boundary_create(actor=actor, version=version, name="Serving VPC", description="Private.")
    api = services.component_create(
        actor=actor, version=version, name="Scoring API", component_type="serving_api", boundary=boundary
    )
    store = services.component_create(
        actor=actor,
        version=version,
        name="Training data",
        component_type="data_source",
        description="Labelled transactions.",
        boundary=boundary,
        suggest=False,
    )
    client = services.component_create(
        actor=actor, version=version, name="Merchant app", component_type="client", suggest=False
    )
    flow = services.flow_create(
        actor=actor, version=version, source=client, target=api, data="Transactions", protocol="HTTPS", suggest=False
    )
    threat = services.threat_create(
        actor=actor,
        version=version,
        title="Evasion with crafted transactions",
        stride="tampering",
        component=api,
        description="Adversarial inputs slip past the scorer.",
        atlas_techniques=["AML.T0043"],
        owasp_ml=["ML01"],
        likelihood=4,
        impact=5,
    )
    flow_threat = services.threat_create(
        actor=actor, version=version, title="Replay on the wire", stride="tampering", flow=flow, likelihood=2, impact=3
    )
    suggested = api.threats.exclude(pk=threat.pk).order_by("title")
    dismissed = services.threat_decide(
        actor=actor, threat=suggested[0], status="not_applicable", justification="No such exposure here."
    )
    control = services.control_create(
        actor=actor,
        version=version,
        name="Adversarial training",
        description="Train on PGD examples.",
        control_type="preventive",
        atlas_mitigations=["AML.M0002"],
        owner=owner or actor,
        due_date=date.today() + timedelta(days=30),
        status="verified",
        threats=[threat],
    )
    return Content(threat_model, version, boundary, api, store, client, flow, threat, flow_threat, dismissed, control)


def snapshot(version: ThreatModelVersion) -> dict[str, list[dict[str, Any]]]:
    """Everything OTM carries, with references by name, sorted, for field-by-field comparison."""

    def element(threat: Threat) -> str:
        if threat.component_id:
            return f"component:{threat.component.name}"
        return f"flow:{threat.flow.source.name}->{threat.flow.target.name}"

    return {
        "boundaries": sorted(
            ({"name": b.name, "description": b.description} for b in version.trustboundarys.all()),
            key=lambda d: d["name"],
        ),
        "components": sorted(
            (
                {
                    "name": c.name,
                    "component_type": c.component_type,
                    "description": c.description,
                    "boundary": c.boundary.name if c.boundary else None,
                }
                for c in version.components.all()
            ),
            key=lambda d: d["name"],
        ),
        "flows": sorted(
            (
                {
                    "source": f.source.name,
                    "target": f.target.name,
                    "data": f.data,
                    "protocol": f.protocol,
                    "authenticated": f.authenticated,
                }
                for f in version.dataflows.all()
            ),
            key=lambda d: (d["source"], d["target"], d["data"]),
        ),
        "threats": sorted(
            (
                {
                    "element": element(t),
                    "catalog_key": t.catalog_key,
                    "title": t.title,
                    "description": t.description,
                    "stride": t.stride,
                    # The services store ID lists sorted; catalog suggestions keep the catalog's order.
                    "atlas_techniques": sorted(t.atlas_techniques),
                    "owasp_ml": sorted(t.owasp_ml),
                    "likelihood": t.likelihood,
                    "impact": t.impact,
                    "status": t.status,
                    "justification": t.justification,
                }
                for t in version.threats.all()
            ),
            key=lambda d: (d["element"], d["title"]),
        ),
        "controls": sorted(
            (
                {
                    "name": c.name,
                    "description": c.description,
                    "control_type": c.control_type,
                    "atlas_mitigations": sorted(c.atlas_mitigations),
                    "owner": c.owner.username if c.owner else None,
                    "due_date": c.due_date,
                    "status": c.status,
                    "threats": sorted(t.title for t in c.threats.all()),
                }
                for c in version.controls.all()
            ),
            key=lambda d: d["name"],
        ),
    }
