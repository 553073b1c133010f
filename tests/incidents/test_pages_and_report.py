"""Incident pages, permissions and the incident-report PDF."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import Incident

pytestmark = pytest.mark.django_db


def pdf_text(content: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(content)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_editor_opens_an_incident_through_the_form(client, teammate, system):
    client.force_login(teammate)
    response = client.post(
        "/incidents/new/",
        {
            "title": "Label flipping",
            "systems": [system.pk],
            "severity": "critical",
            "detection_source": "manual_report",
        },
    )
    incident = Incident.objects.get(title="Label flipping")
    assert response["Location"] == incident.get_absolute_url()
    assert incident.reporter == teammate and list(incident.systems.all()) == [system]


def test_incident_page_walks_the_workflow(client, teammate, incident):
    client.force_login(teammate)
    client.post(f"/incidents/{incident.pk}/transition/", {"to": "triaged"})
    client.post(
        f"/incidents/{incident.pk}/timeline/",
        {
            "occurred_at": (timezone.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
            "note": "Quarantined the batch",
            "atlas_technique": "AML.T0020",
        },
    )
    client.post(
        f"/incidents/{incident.pk}/evidence/",
        {"kind": "flagged_samples", "description": "14 flagged SMS", "reference": "run 7"},
    )
    client.post(f"/incidents/{incident.pk}/actions/", {"title": "Retrain"})
    page = client.get(incident.get_absolute_url()).content.decode()
    for text in ("Quarantined the batch", "14 flagged SMS", "Retrain", 'class="current">Triaged'):
        assert text in page


def test_a_bad_transition_is_explained_on_the_page(client, teammate, incident):
    client.force_login(teammate)
    page = client.post(f"/incidents/{incident.pk}/transition/", {"to": "closed"}, follow=True).content.decode()
    assert "cannot become closed" in page


def test_viewer_reads_but_cannot_change(client, viewer, incident):
    client.force_login(viewer)
    page = client.get(incident.get_absolute_url()).content.decode()
    assert "Add a timeline entry" not in page
    assert client.post(f"/incidents/{incident.pk}/transition/", {"to": "triaged"}).status_code == 403


def test_outsider_gets_404_for_the_incident_and_its_report(client, outsider, incident):
    client.force_login(outsider)
    assert client.get(incident.get_absolute_url()).status_code == 404
    assert client.get(f"/incidents/{incident.pk}/report.pdf").status_code == 404
    assert "Backdoored" not in client.get("/incidents/").content.decode()


def test_incident_report_pdf_has_every_section_and_the_numbers(client, teammate, incident, tmp_path):
    services.timeline_add(
        actor=teammate,
        incident=incident,
        note="Spectral signature flagged 14 of 5,574 records",
        occurred_at=timezone.now() - timedelta(minutes=10),
    )
    services.evidence_add(
        actor=teammate,
        incident=incident,
        kind="evaluation_run",
        description="Poison scan",
        metrics={"precision": 0.93, "recall": 1.0},
    )
    services.incident_update(
        actor=teammate, incident=incident, root_cause="Unvetted customer reports", lessons_learned="Quarantine first"
    )
    client.force_login(teammate)
    response = client.get(f"/incidents/{incident.pk}/report.pdf")
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content, tmp_path)
    for section in (
        "Executive summary",
        "Affected systems",
        "Timeline",
        "Evidence",
        "Root cause",
        "Remediation and verification",
        "Threat-model changes",
        "Lessons learned",
        "Sign-off",
    ):
        assert section in text, section
    assert "14 of 5,574 records" in text and "precision = 0.93" in text
    assert "Fraud scorer" in text and "INC-1" in text
    assert text.count("document ") >= 1 and "generated" in text


def test_user_text_with_markup_is_printed_not_fetched(client, teammate, incident, tmp_path):
    services.incident_update(
        actor=teammate, incident=incident, summary='<img src="http://169.254.169.254/x"> url(file:///etc/passwd)'
    )
    client.force_login(teammate)
    text = pdf_text(client.get(f"/incidents/{incident.pk}/report.pdf").content, tmp_path)
    assert '<img src="http://169.254.169.254/x">' in text.replace("\n", " ")
