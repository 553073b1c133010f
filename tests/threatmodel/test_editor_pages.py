"""The threat-model editor pages: forms, filters, permissions, review and diff."""

from __future__ import annotations

import pytest

from threatmodel import services
from threatmodel.models import Component, Control, ThreatModel, ThreatStatus, VersionStatus

pytestmark = pytest.mark.django_db


def test_editor_starts_a_threat_model_from_the_system_page(client, teammate, system):
    client.force_login(teammate)
    assert "Start a threat model" in client.get(system.get_absolute_url()).content.decode()
    response = client.post(f"/systems/{system.pk}/threat-models/new/", {"title": "Scoring model"})
    version = ThreatModel.objects.get(system=system).versions.get()
    assert response["Location"] == version.get_absolute_url()


def test_editor_adds_components_flows_and_sees_the_diagram(client, teammate, draft):
    client.force_login(teammate)
    url = draft.get_absolute_url()
    client.post(f"/versions/{draft.pk}/boundaries/add/", {"name": "Internet"})
    boundary = draft.trustboundarys.get()
    client.post(
        f"/versions/{draft.pk}/components/add/",
        {"name": "Gateway", "component_type": "client", "boundary": boundary.pk},
    )
    client.post(f"/versions/{draft.pk}/components/add/", {"name": "Scorer", "component_type": "serving_api"})
    gateway, scorer = Component.objects.get(name="Gateway"), Component.objects.get(name="Scorer")
    client.post(
        f"/versions/{draft.pk}/flows/add/",
        {"source": gateway.pk, "target": scorer.pk, "data": "events", "protocol": "gRPC"},
    )
    page = client.get(url).content.decode()
    assert '<svg class="dfd"' in page and "Gateway" in page and "events [gRPC]" in page
    assert "Internet" in page
    assert draft.threats.filter(status=ThreatStatus.SUGGESTED).count() > 5


def test_invalid_component_form_explains_the_problem(client, teammate, draft):
    client.force_login(teammate)
    response = client.post(
        f"/versions/{draft.pk}/components/add/", {"name": "", "component_type": "toaster"}, follow=True
    )
    page = response.content.decode()
    assert "Select a valid choice" in page
    assert not draft.components.exists()


def test_accept_and_not_applicable_from_the_threat_table(client, teammate, modelled):
    client.force_login(teammate)
    threat, other = modelled.threats.all()[:2]
    client.post(f"/threats/{threat.pk}/decide/", {"status": "accepted"})
    client.post(f"/threats/{other.pk}/decide/", {"status": "not_applicable", "justification": ""})
    client.post(f"/threats/{other.pk}/decide/", {"status": "not_applicable", "justification": "Internal only"})
    threat.refresh_from_db()
    other.refresh_from_db()
    assert threat.status == ThreatStatus.ACCEPTED
    assert other.status == ThreatStatus.NOT_APPLICABLE and other.justification == "Internal only"


def test_threat_table_filters_by_stride_and_level(client, viewer, modelled):
    client.force_login(viewer)
    page = client.get(modelled.get_absolute_url(), {"stride": "repudiation"}).content.decode()
    rows = page.split('id="threat-table"')[1].split("</table>")[0]
    assert "Repudiation" in rows and "Tampering" not in rows
    low = client.get(modelled.get_absolute_url(), {"level": "critical"}).content.decode()
    assert "match the filters" in low.split('id="threat-table"')[1].split("</table>")[0] or "critical" in low


def test_control_form_links_threats_and_updates_residual_risk(client, teammate, modelled):
    client.force_login(teammate)
    threat = modelled.threats.filter(component__name="Prediction API").first()
    response = client.post(
        f"/versions/{modelled.pk}/controls/add/",
        {
            "name": "Rate limiting",
            "control_type": "preventive",
            "status": "verified",
            "owner": teammate.pk,
            "atlas_mitigations": "aml.m0004",
            "threats": [threat.pk],
        },
    )
    assert response.status_code == 302
    control = Control.objects.get(name="Rate limiting")
    assert control.atlas_mitigations == ["AML.M0004"] and list(control.threats.all()) == [threat]


def test_control_form_rejects_unknown_mitigations(client, teammate, modelled):
    client.force_login(teammate)
    response = client.post(
        f"/versions/{modelled.pk}/controls/add/",
        {"name": "Bogus", "control_type": "preventive", "status": "planned", "atlas_mitigations": "AML.M9999"},
    )
    assert response.status_code == 400
    assert "Unknown ATLAS mitigation" in response.content.decode()
    assert not Control.objects.filter(name="Bogus").exists()


def test_viewer_sees_the_model_but_no_edit_forms_and_cannot_post(client, viewer, modelled):
    client.force_login(viewer)
    page = client.get(modelled.get_absolute_url()).content.decode()
    assert "Add a component" not in page and "Submit for review" not in page
    assert (
        client.post(f"/versions/{modelled.pk}/components/add/", {"name": "X", "component_type": "client"}).status_code
        == 403
    )


def test_outsider_gets_404_for_every_editor_page(client, outsider, modelled):
    client.force_login(outsider)
    threat = modelled.threats.first()
    for url in (modelled.get_absolute_url(), f"/versions/{modelled.pk}/diff/", f"/threats/{threat.pk}/"):
        assert client.get(url).status_code == 404
    assert client.post(f"/threats/{threat.pk}/decide/", {"status": "accepted"}).status_code == 404


def test_review_flow_through_the_pages(client, teammate, approver, modelled):
    client.force_login(teammate)
    client.post(f"/versions/{modelled.pk}/submit/", {"summary": "First model"})
    modelled.refresh_from_db()
    assert modelled.status == VersionStatus.IN_REVIEW
    client.force_login(approver)
    page = client.get(modelled.get_absolute_url()).content.decode()
    assert 'id="approve-version"' in page
    client.post(f"/versions/{modelled.pk}/review/", {"decision": "approve", "note": "Looks right"})
    modelled.refresh_from_db()
    assert modelled.status == VersionStatus.APPROVED
    page = client.get(modelled.get_absolute_url()).content.decode()
    assert "Approved versions cannot change" in page and "Add a component" not in page


def test_author_sees_why_they_cannot_approve(client, owner, modelled):
    client.force_login(owner)
    client.post(f"/versions/{modelled.pk}/submit/", {})
    response = client.post(f"/versions/{modelled.pk}/review/", {"decision": "approve"})
    assert response.status_code == 403
    modelled.refresh_from_db()
    assert modelled.status == VersionStatus.IN_REVIEW


def test_diff_page_shows_changes_between_versions(client, owner, teammate, approver, modelled):
    services.version_submit(actor=teammate, version=modelled)
    services.version_approve(actor=approver, version=modelled)
    draft = services.version_start_draft(actor=owner, threat_model=modelled.threat_model)
    services.component_create(
        actor=owner, version=draft, name="Feature store", component_type="feature_store", suggest=False
    )
    client.force_login(owner)
    page = client.get(f"/versions/{draft.pk}/diff/").content.decode()
    assert "Feature store" in page and "added" in page


def test_editing_a_threat_on_its_page(client, teammate, modelled):
    client.force_login(teammate)
    threat = modelled.threats.first()
    response = client.post(
        f"/threats/{threat.pk}/",
        {"title": "Sharper title", "likelihood": 5, "impact": 5, "atlas_techniques": "AML.T0043", "owasp_ml": ["ML01"]},
    )
    assert response.status_code == 302
    threat.refresh_from_db()
    assert threat.title == "Sharper title" and threat.inherent_risk == 25 and threat.atlas_techniques == ["AML.T0043"]


def test_version_page_costs_a_bounded_number_of_queries(client, viewer, modelled, django_assert_max_num_queries):
    client.force_login(viewer)
    with django_assert_max_num_queries(20):
        client.get(modelled.get_absolute_url())
