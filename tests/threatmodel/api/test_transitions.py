"""Review transitions through the API: submit, approve, send back, and the immutability of approved versions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from garrison.audit.models import AuditEvent
from tests.threatmodel.api.builders import build_version
from threatmodel import services
from threatmodel.models import Component

pytestmark = pytest.mark.django_db


def _approved(content, teammate, approver):
    services.version_submit(actor=teammate, version=content.version)
    return services.version_approve(actor=approver, version=content.version)


def test_a_draft_is_submitted_then_approved_by_another_person(api, teammate, approver, content):
    submitted = api(teammate).post(f"/api/versions/{content.version.id}/submit/", {"summary": "First cut."})
    assert submitted.status_code == 200 and submitted.json()["status"] == "in_review"
    assert submitted.json()["submitted_by"] == "teammate" and submitted.json()["summary"] == "First cut."
    approved = api(approver).post(f"/api/versions/{content.version.id}/approve/", {"note": "Looks right."})
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "approved" and approved.json()["reviewed_by"] == "approver"
    assert approved.json()["is_editable"] is False


def test_approving_your_own_version_is_a_403(api, approver, system):
    content = build_version(actor=approver, system=system)
    services.version_submit(actor=approver, version=content.version)
    response = api(approver).post(f"/api/versions/{content.version.id}/approve/")
    assert response.status_code == 403
    assert "another approver" in response.json()["error"]["message"]
    content.version.refresh_from_db()
    assert content.version.status == "in_review"


def test_approving_twice_is_a_409(api, teammate, approver, owner, content):
    _approved(content, teammate, approver)
    response = api(owner).post(f"/api/versions/{content.version.id}/approve/")
    assert response.status_code == 409
    assert AuditEvent.objects.filter(verb="threat_model_version.approve").count() == 1


def test_approving_a_draft_is_a_409_and_editors_cannot_approve(api, teammate, approver, content):
    assert api(approver).post(f"/api/versions/{content.version.id}/approve/").status_code == 409
    services.version_submit(actor=teammate, version=content.version)
    assert api(teammate).post(f"/api/versions/{content.version.id}/approve/").status_code == 403


def test_sending_back_needs_a_note_and_returns_the_version_to_draft(api, teammate, approver, content):
    services.version_submit(actor=teammate, version=content.version)
    missing = api(approver).post(f"/api/versions/{content.version.id}/send-back/", {"note": ""})
    assert missing.status_code == 400 and "note" in missing.json()["error"]["fields"]
    response = api(approver).post(f"/api/versions/{content.version.id}/send-back/", {"note": "Add a flow threat."})
    assert response.status_code == 200
    assert response.json()["status"] == "draft" and response.json()["review_note"] == "Add a flow threat."


def test_a_version_in_review_cannot_be_submitted_again(api, teammate, content):
    services.version_submit(actor=teammate, version=content.version)
    assert api(teammate).post(f"/api/versions/{content.version.id}/submit/").status_code == 409


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/versions/{version}/components/", {"name": "New", "component_type": "client"}),
        ("post", "/api/versions/{version}/boundaries/", {"name": "New"}),
        ("patch", "/api/components/{component}/", {"name": "Renamed"}),
        ("delete", "/api/components/{component}/", None),
        ("patch", "/api/threats/{threat}/", {"likelihood": 1}),
        ("post", "/api/threats/{threat}/decide/", {"status": "not_applicable", "justification": "x"}),
        ("patch", "/api/controls/{control}/", {"status": "planned"}),
        ("delete", "/api/flows/{flow}/", None),
    ],
)
def test_editing_an_approved_version_is_a_409_and_writes_nothing(api, teammate, approver, content, method, path, body):
    _approved(content, teammate, approver)
    events = AuditEvent.objects.count()
    url = path.format(
        version=content.version.id,
        component=content.api.id,
        threat=content.threat.id,
        control=content.control.id,
        flow=content.flow.id,
    )
    response = getattr(api(teammate), method)(url, body, format="json")
    assert response.status_code == 409, response.json()
    assert "start a new draft" in response.json()["error"]["message"]
    assert AuditEvent.objects.count() == events
    assert Component.objects.get(pk=content.api.id).name == "Scoring API"


def test_approvers_accept_residual_risk_and_editors_cannot(api, teammate, approver, content):
    body = {"reason": "Compensated by manual review.", "expires": str(date.today() + timedelta(days=90))}
    assert api(teammate).post(f"/api/threats/{content.threat.id}/accept-risk/", body).status_code == 403
    response = api(approver).post(f"/api/threats/{content.threat.id}/accept-risk/", body)
    assert response.status_code == 200, response.json()
    acceptance = response.json()["risk_acceptance"]
    assert acceptance["accepted_by"] == "approver" and acceptance["active"] is True
    past = {"reason": "x", "expires": str(date.today() - timedelta(days=1))}
    assert api(approver).post(f"/api/threats/{content.threat.id}/accept-risk/", past).status_code == 400
