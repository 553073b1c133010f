"""Threat models and versions through the API: create, read, start drafts, full content, diff, ATLAS list."""

from __future__ import annotations

import pytest

from garrison.audit.models import AuditEvent
from threatmodel import services
from threatmodel.models import ThreatModel

pytestmark = pytest.mark.django_db


def test_editor_creates_a_threat_model_with_an_empty_draft(api, teammate, system):
    response = api(teammate).post(f"/api/systems/{system.id}/threat-models/", {"title": "Scorer"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["title"] == "Scorer" and body["system"] == system.id
    [version] = body["versions"]
    assert version["number"] == 1 and version["status"] == "draft" and version["author"] == "teammate"
    assert AuditEvent.objects.filter(verb="threat_model.create").count() == 1


def test_a_duplicate_title_is_a_400_and_nothing_is_written(api, teammate, system, content):
    response = api(teammate).post(
        f"/api/systems/{system.id}/threat-models/", {"title": content.threat_model.title}, format="json"
    )
    assert response.status_code == 400
    assert ThreatModel.objects.filter(system=system).count() == 1


def test_unknown_input_fields_are_rejected(api, teammate, system):
    response = api(teammate).post(f"/api/systems/{system.id}/threat-models/", {"titel": "x"}, format="json")
    assert response.status_code == 400
    assert "titel" in response.json()["error"]["fields"]


def test_threat_models_are_listed_per_system_with_their_versions(api, viewer, system, content):
    body = api(viewer).get(f"/api/systems/{system.id}/threat-models/").json()
    assert body["count"] == 1
    assert body["results"][0]["versions"][0]["id"] == content.version.id
    detail = api(viewer).get(f"/api/threat-models/{content.threat_model.id}/").json()
    assert [v["number"] for v in detail["versions"]] == [1]


def test_starting_a_draft_while_one_is_open_is_a_409(api, teammate, content):
    response = api(teammate).post(f"/api/threat-models/{content.threat_model.id}/drafts/")
    assert response.status_code == 409
    assert "still draft" in response.json()["error"]["message"]


def test_a_new_draft_copies_the_approved_version(api, teammate, approver, content):
    services.version_submit(actor=teammate, version=content.version)
    services.version_approve(actor=approver, version=content.version)
    response = api(teammate).post(f"/api/threat-models/{content.threat_model.id}/drafts/")
    assert response.status_code == 201
    draft = response.json()
    assert draft["number"] == 2 and draft["based_on"] == content.version.id and draft["status"] == "draft"
    copied = api(teammate).get(f"/api/versions/{draft['id']}/").json()
    assert {c["name"] for c in copied["components"]} == {"Scoring API", "Training data", "Merchant app"}


def test_version_content_has_every_element_with_inherent_and_residual_risk(api, viewer, content):
    body = api(viewer).get(f"/api/versions/{content.version.id}/").json()
    assert body["version"]["status"] == "draft" and body["version"]["system"] == content.version.threat_model.system_id
    assert [b["name"] for b in body["boundaries"]] == ["Serving VPC"]
    assert len(body["components"]) == 3 and len(body["flows"]) == 1 and len(body["controls"]) == 1
    threat = next(t for t in body["threats"] if t["id"] == content.threat.id)
    assert threat["inherent_risk"] == {"likelihood": 4, "impact": 5, "score": 20, "level": "critical"}
    # A verified preventive control lowers likelihood by 2.
    assert threat["residual_risk"] == {"likelihood": 2, "impact": 5, "score": 10, "level": "high"}
    assert threat["controls"] == [content.control.id]
    assert body["controls"][0]["owner"] == "teammate" and body["controls"][0]["threats"] == [content.threat.id]
    assert body["coverage"]["covered"] >= 1 and body["coverage"]["total"] >= 1
    live = len(body["threats"]) - body["status_counts"]["not_applicable"]
    assert sum(cell["count"] for row in body["heat_map"]["inherent"] for cell in row["cells"]) == live


def test_version_content_costs_a_fixed_number_of_queries(api, viewer, content, django_assert_max_num_queries):
    client = api(viewer)
    with django_assert_max_num_queries(16):
        assert client.get(f"/api/versions/{content.version.id}/").status_code == 200


def test_diff_shows_what_changed_between_two_versions(api, teammate, approver, viewer, content):
    services.version_submit(actor=teammate, version=content.version)
    services.version_approve(actor=approver, version=content.version)
    draft = services.version_start_draft(actor=teammate, threat_model=content.threat_model)
    services.boundary_create(actor=teammate, version=draft, name="Internet")
    api_copy = draft.components.get(uid=content.api.uid)
    services.component_update(actor=teammate, component=api_copy, description="Public scoring endpoint.")
    services.control_delete(actor=teammate, control=draft.controls.get())

    response = api(viewer).get(f"/api/versions/{draft.id}/diff/", {"against": content.version.id})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["old"], body["new"]) == (1, 2)
    sections = body["sections"]
    assert [(c["label"], c["change"]) for c in sections["boundaries"]] == [("Internet", "added")]
    [changed] = sections["components"]
    assert changed["change"] == "changed" and changed["fields"]["description"] == ["", "Public scoring endpoint."]
    assert [(c["label"], c["change"]) for c in sections["controls"]] == [("Adversarial training", "removed")]
    assert sections["flows"] == [] and sections["threats"] == []


def test_diff_needs_a_version_of_the_same_threat_model(api, teammate, viewer, system, content):
    other = services.threat_model_create(actor=teammate, system=system, title="Another").versions.get()
    response = api(viewer).get(f"/api/versions/{content.version.id}/diff/", {"against": other.id})
    assert response.status_code == 400
    assert "against" in response.json()["error"]["fields"]
    assert api(viewer).get(f"/api/versions/{content.version.id}/diff/").status_code == 400


def test_atlas_reference_data_is_filtered_by_kind_and_search(api, viewer):
    body = api(viewer).get("/api/atlas/", {"kind": "mitigation", "page_size": 200}).json()
    assert body["count"] > 10 and all(e["kind"] == "mitigation" for e in body["results"])
    found = api(viewer).get("/api/atlas/", {"search": "AML.T0043"}).json()["results"]
    assert "AML.T0043" in [e["atlas_id"] for e in found]
    assert found[0]["names"] and found[0]["names"][0]["release"]
    assert api(viewer).get("/api/atlas/", {"kind": "bogus"}).status_code == 400
