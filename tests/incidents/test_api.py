"""The incidents and reports API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Report
from incidents.tasks import render_report

pytestmark = pytest.mark.django_db


def test_open_move_and_read_an_incident_through_the_api(api, teammate, system):
    client = api(teammate)
    created = client.post(
        "/api/incidents/",
        {
            "systems": [system.id],
            "title": "Evasion spike",
            "severity": "high",
            "detected_at": (timezone.now() - timedelta(hours=1)).isoformat(),
        },
        format="json",
    )
    assert created.status_code == 201
    incident_id = created.json()["id"]
    assert (
        client.post(
            f"/api/incidents/{incident_id}/timeline/",
            {"occurred_at": timezone.now().isoformat(), "note": "Blocked the key", "atlas_technique": "AML.T0043"},
            format="json",
        ).status_code
        == 201
    )
    moved = client.post(f"/api/incidents/{incident_id}/transition/", {"to": "triaged"}, format="json")
    assert moved.json()["status"] == "triaged" and len(moved.json()["timeline"]) == 1
    skipped = client.post(f"/api/incidents/{incident_id}/transition/", {"to": "closed"}, format="json")
    assert skipped.status_code == 409 and "cannot become closed" in skipped.json()["error"]["message"]


def test_incident_api_bad_input_and_scoping(api, teammate, viewer, outsider, system, other_system):
    assert api(teammate).post("/api/incidents/", {"systems": [], "title": "x"}, format="json").status_code == 400
    assert api(viewer).post("/api/incidents/", {"systems": [system.id], "title": "x"}, format="json").status_code == 403
    assert (
        api(outsider).post("/api/incidents/", {"systems": [system.id], "title": "x"}, format="json").status_code == 404
    )
    created = api(teammate).post("/api/incidents/", {"systems": [system.id], "title": "Mine"}, format="json")
    assert api(outsider).get(f"/api/incidents/{created.json()['id']}/").status_code == 404
    future = api(teammate).post(
        f"/api/incidents/{created.json()['id']}/timeline/",
        {"occurred_at": (timezone.now() + timedelta(days=1)).isoformat(), "note": "later"},
        format="json",
    )
    assert future.status_code == 400 and "occurred_at" in future.json()["error"]["fields"]


def test_request_poll_and_download_an_audit_report(api, owner, system, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    client = api(owner)
    queued = client.post("/api/reports/", {"kind": "system_audit", "system": system.id}, format="json")
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    report_id = queued.json()["id"]
    assert client.get(f"/api/reports/{report_id}/download/").status_code == 404
    render_report(report_id)
    assert client.get(f"/api/reports/{report_id}/").json()["status"] == "ready"
    response = client.get(f"/api/reports/{report_id}/download/")
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    assert response["X-Document-SHA256"] == Report.objects.get(pk=report_id).sha256
