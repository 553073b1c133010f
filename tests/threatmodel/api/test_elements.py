"""Create, read, change and remove each kind of element through the API, with the checks on references."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from garrison.audit.models import AuditEvent
from tests.factories import SystemFactory
from tests.threatmodel.api.builders import build_version
from threatmodel import services
from threatmodel.models import Component, Control, DataFlow, Threat, TrustBoundary

pytestmark = pytest.mark.django_db


def test_boundaries_are_created_listed_read_changed_and_removed(api, teammate, content):
    client = api(teammate)
    created = client.post(
        f"/api/versions/{content.version.id}/boundaries/", {"name": "Internet", "description": "Untrusted."}
    )
    assert created.status_code == 201, created.json()
    boundary_id = created.json()["id"]
    listed = client.get(f"/api/versions/{content.version.id}/boundaries/").json()
    assert {b["name"] for b in listed["results"]} == {"Internet", "Serving VPC"}
    assert client.get(f"/api/boundaries/{boundary_id}/").json()["description"] == "Untrusted."
    changed = client.patch(f"/api/boundaries/{boundary_id}/", {"name": "Public internet"}, format="json")
    assert changed.status_code == 200 and changed.json()["name"] == "Public internet"
    assert client.delete(f"/api/boundaries/{boundary_id}/").status_code == 204
    assert not TrustBoundary.objects.filter(pk=boundary_id).exists()
    assert AuditEvent.objects.filter(verb="trust_boundary.delete", object_id=str(boundary_id)).exists()


def test_components_are_created_with_suggested_threats_and_moved_between_boundaries(api, teammate, content):
    client = api(teammate)
    created = client.post(
        f"/api/versions/{content.version.id}/components/",
        {"name": "Model registry", "component_type": "model_registry", "boundary": content.boundary.id},
        format="json",
    )
    assert created.status_code == 201, created.json()
    component = Component.objects.get(pk=created.json()["id"])
    assert component.boundary == content.boundary and component.threats.filter(status="suggested").exists()
    quiet = client.post(
        f"/api/versions/{content.version.id}/components/",
        {"name": "Reviewer", "component_type": "human_reviewer", "suggest": False},
        format="json",
    )
    assert not Component.objects.get(pk=quiet.json()["id"]).threats.exists()
    moved = client.patch(f"/api/components/{component.id}/", {"boundary": None}, format="json")
    assert moved.status_code == 200 and moved.json()["boundary"] is None
    assert client.get(f"/api/components/{component.id}/").json()["name"] == "Model registry"
    assert client.delete(f"/api/components/{component.id}/").status_code == 204
    assert not Component.objects.filter(pk=component.id).exists()


def test_a_bad_component_type_is_a_400_with_the_field(api, teammate, content):
    response = api(teammate).post(
        f"/api/versions/{content.version.id}/components/", {"name": "X", "component_type": "mainframe"}, format="json"
    )
    assert response.status_code == 400 and "component_type" in response.json()["error"]["fields"]


def test_flows_are_created_changed_and_removed(api, teammate, content):
    client = api(teammate)
    created = client.post(
        f"/api/versions/{content.version.id}/flows/",
        {"source": content.store.id, "target": content.api.id, "data": "Features", "authenticated": False},
        format="json",
    )
    assert created.status_code == 201, created.json()
    flow = created.json()
    assert flow["crosses_trust_boundary"] is False and flow["authenticated"] is False
    assert DataFlow.objects.get(pk=flow["id"]).threats.exists()  # suggested for an unauthenticated flow
    changed = client.patch(f"/api/flows/{flow['id']}/", {"protocol": "gRPC", "authenticated": True}, format="json")
    assert changed.json()["protocol"] == "gRPC" and changed.json()["authenticated"] is True
    assert client.get(f"/api/versions/{content.version.id}/flows/").json()["count"] == 2
    assert client.delete(f"/api/flows/{flow['id']}/").status_code == 204


def test_a_flow_from_a_component_to_itself_is_a_400_on_create_and_update(api, teammate, content):
    client = api(teammate)
    body = {"source": content.api.id, "target": content.api.id, "data": "Loop"}
    assert client.post(f"/api/versions/{content.version.id}/flows/", body, format="json").status_code == 400
    response = client.patch(f"/api/flows/{content.flow.id}/", {"target": content.client.id}, format="json")
    assert response.status_code == 400 and "target" in response.json()["error"]["fields"]


def test_a_flow_between_components_of_different_systems_is_a_400(api, teammate, team, content):
    other_system = SystemFactory(team=team, name="Churn model", slug="churn-model")
    other = build_version(actor=teammate, system=other_system, title="Churn")
    response = api(teammate).post(
        f"/api/versions/{content.version.id}/flows/",
        {"source": content.api.id, "target": other.api.id, "data": "Scores"},
        format="json",
    )
    assert response.status_code == 400
    assert "another version" in response.json()["error"]["fields"]["target"][0]
    assert content.version.dataflows.count() == 1


def test_an_element_of_another_team_is_a_404(api, teammate, outsider, other_system, content):
    foreign = build_version(actor=outsider, system=other_system, title="Theirs")
    client = api(teammate)
    response = client.post(
        f"/api/versions/{content.version.id}/flows/",
        {"source": content.api.id, "target": foreign.api.id, "data": "Scores"},
        format="json",
    )
    assert response.status_code == 404
    assert client.get(f"/api/components/{foreign.api.id}/").status_code == 404
    assert (
        client.post(
            f"/api/versions/{content.version.id}/controls/",
            {"name": "X", "threats": [foreign.threat.id]},
            format="json",
        ).status_code
        == 404
    )


def test_threats_are_created_edited_decided_and_removed(api, teammate, content):
    client = api(teammate)
    created = client.post(
        f"/api/versions/{content.version.id}/threats/",
        {
            "title": "Model stolen through the API",
            "stride": "information_disclosure",
            "component": content.api.id,
            "atlas_techniques": ["AML.T0024"],
            "owasp_ml": ["ML05"],
            "likelihood": 3,
            "impact": 4,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    threat = created.json()
    assert threat["status"] == "accepted" and threat["inherent_risk"]["score"] == 12
    assert threat["residual_risk"]["score"] == 12 and threat["controls"] == []
    changed = client.patch(f"/api/threats/{threat['id']}/", {"likelihood": 5, "title": "Model theft"}, format="json")
    assert changed.status_code == 200 and changed.json()["inherent_risk"]["level"] == "critical"
    decided = client.post(
        f"/api/threats/{threat['id']}/decide/", {"status": "not_applicable", "justification": "Offline only."}
    )
    assert decided.status_code == 200 and decided.json()["justification"] == "Offline only."
    assert client.post(f"/api/threats/{threat['id']}/decide/", {"status": "not_applicable"}).status_code == 400
    flow_threat = client.post(
        f"/api/versions/{content.version.id}/threats/",
        {"title": "Sniffing", "stride": "information_disclosure", "flow": content.flow.id},
        format="json",
    )
    assert flow_threat.status_code == 201 and flow_threat.json()["flow"] == content.flow.id
    assert client.delete(f"/api/threats/{threat['id']}/").status_code == 204
    assert not Threat.objects.filter(pk=threat["id"]).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"atlas_techniques": ["AML.T9999"]}, "atlas_techniques"),
        ({"likelihood": 6}, "likelihood"),
        ({"impact": 0}, "impact"),
        ({"owasp_ml": ["ML11"]}, "owasp_ml"),
        ({"stride": "phishing"}, "stride"),
    ],
)
def test_invalid_threat_input_is_a_400_naming_the_field(api, teammate, content, body, field):
    count = Threat.objects.count()
    payload = {"title": "T", "stride": "tampering", "component": content.api.id, **body}
    response = api(teammate).post(f"/api/versions/{content.version.id}/threats/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Threat.objects.count() == count


def test_a_threat_needs_exactly_one_component_or_flow(api, teammate, content):
    client = api(teammate)
    url = f"/api/versions/{content.version.id}/threats/"
    assert client.post(url, {"title": "T", "stride": "tampering"}, format="json").status_code == 400
    both = {"title": "T", "stride": "tampering", "component": content.api.id, "flow": content.flow.id}
    assert client.post(url, both, format="json").status_code == 400


def test_controls_are_created_with_an_owner_and_threats_then_changed_and_removed(api, teammate, owner, content):
    client = api(teammate)
    created = client.post(
        f"/api/versions/{content.version.id}/controls/",
        {
            "name": "Rate limiting",
            "control_type": "detective",
            "atlas_mitigations": ["AML.M0004"],
            "owner": "owner",
            "due_date": str(date.today() + timedelta(days=10)),
            "status": "implemented",
            "threats": [content.flow_threat.id],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    control = created.json()
    assert control["owner"] == "owner" and control["threats"] == [content.flow_threat.id]
    assert control["is_effective"] is True
    threat = client.get(f"/api/threats/{content.flow_threat.id}/").json()
    assert threat["residual_risk"]["impact"] == threat["inherent_risk"]["impact"] - 1
    changed = client.patch(
        f"/api/controls/{control['id']}/", {"threats": [content.threat.id], "owner": None}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["threats"] == [content.threat.id] and changed.json()["owner"] is None
    assert client.delete(f"/api/controls/{control['id']}/").status_code == 204
    assert not Control.objects.filter(pk=control["id"]).exists()


def test_a_control_owner_must_be_a_team_member(api, teammate, outsider, content):
    response = api(teammate).post(
        f"/api/versions/{content.version.id}/controls/", {"name": "X", "owner": "outsider"}, format="json"
    )
    assert response.status_code == 400 and "owner" in response.json()["error"]["fields"]


def test_an_element_of_another_version_is_a_400(api, teammate, approver, content):
    services.version_submit(actor=teammate, version=content.version)
    services.version_approve(actor=approver, version=content.version)
    draft = services.version_start_draft(actor=teammate, threat_model=content.threat_model)
    response = api(teammate).post(
        f"/api/versions/{draft.id}/controls/", {"name": "X", "threats": [content.threat.id]}, format="json"
    )
    assert response.status_code == 400 and "threats" in response.json()["error"]["fields"]
    response = api(teammate).post(
        f"/api/versions/{draft.id}/components/",
        {"name": "X", "component_type": "client", "boundary": content.boundary.id},
        format="json",
    )
    assert response.status_code == 400 and "boundary" in response.json()["error"]["fields"]
    assert not draft.controls.filter(name="X").exists() and not draft.components.filter(name="X").exists()
