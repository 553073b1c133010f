"""Audit reports: rendered in a task with progress, stored with their hash, scoped, and readable."""

from __future__ import annotations

import subprocess

import pytest

from incidents import services
from incidents.models import Report, ReportStatus
from incidents.tasks import render_report
from kpis import services as kpi_services
from kpis.compute import KpiValue
from threatmodel import services as tm

pytestmark = pytest.mark.django_db


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def modelled_system(owner, teammate, approver, system):
    version = tm.threat_model_create(actor=owner, system=system).versions.get()
    api = tm.component_create(actor=owner, version=version, name="Scoring API", component_type="serving_api")
    evasion = api.threats.get(catalog_key="evasion-adversarial-examples")
    tm.threat_decide(actor=owner, threat=evasion, status="accepted")
    tm.control_create(
        actor=owner, version=version, name="Rate limiting", status="implemented", threats=[evasion], owner=teammate
    )
    tm.version_submit(actor=teammate, version=version)
    tm.version_approve(actor=approver, version=version)
    for value in (0.31, 0.52, 0.64):
        kpi_services.measurements_record(
            system=system, values=[KpiValue("robust_accuracy", value, True)], trigger=f"run {value}"
        )
    return system


def test_system_audit_renders_in_the_task_and_is_stored_with_its_hash(
    owner, modelled_system, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = services.report_request(actor=owner, kind="system_audit", system=modelled_system)
    assert report.status == ReportStatus.QUEUED and len(callbacks) == 1
    render_report(report.pk)
    report.refresh_from_db()
    assert report.status == ReportStatus.READY and report.progress == 1.0 and len(report.sha256) == 64
    path = settings.MEDIA_ROOT / report.file_path
    text = pdf_text(path)
    for section in (
        "System inventory",
        "Approved threat model",
        "Data-flow diagram",
        "Risk register",
        "Controls",
        "Risk acceptances",
        "KPIs",
        "Evaluation history",
        "Incidents",
        "Audit-log excerpt",
        "Sign-off",
    ):
        assert section in text, section
    assert "Scoring API" in text and "Rate limiting" in text and "0.64" in text
    assert report.document_id in text


def test_render_is_idempotent_for_a_retried_task(owner, modelled_system):
    report = services.report_request(actor=owner, kind="system_audit", system=modelled_system)
    render_report(report.pk)
    first = Report.objects.get(pk=report.pk).sha256
    render_report(report.pk)  # a redelivered message finds the report already claimed
    assert Report.objects.get(pk=report.pk).sha256 == first


def test_portfolio_audit_covers_what_the_requester_sees_and_only_they_can_read_it(
    client, owner, teammate, outsider, modelled_system, other_system
):
    report = services.report_request(actor=owner, kind="portfolio_audit")
    render_report(report.pk)
    report.refresh_from_db()
    client.force_login(owner)
    response = client.get(f"/incidents/reports/{report.pk}/download/")
    content = b"".join(response.streaming_content)
    assert content.startswith(b"%PDF")
    client.force_login(teammate)
    assert client.get(f"/incidents/reports/{report.pk}/").status_code == 404
    client.force_login(outsider)
    assert client.get(f"/incidents/reports/{report.pk}/download/").status_code == 404


def test_outsider_cannot_request_or_read_a_system_audit(client, owner, outsider, modelled_system):
    client.force_login(outsider)
    response = client.post("/incidents/reports/new/", {"kind": "system_audit", "system": modelled_system.pk})
    assert response.status_code == 404
    report = services.report_request(actor=owner, kind="system_audit", system=modelled_system)
    assert client.get(f"/incidents/reports/{report.pk}/status/").status_code == 404


def test_status_endpoint_reports_progress(client, owner, modelled_system):
    report = services.report_request(actor=owner, kind="system_audit", system=modelled_system)
    client.force_login(owner)
    assert client.get(f"/incidents/reports/{report.pk}/status/").json()["status"] == "queued"
    render_report(report.pk)
    body = client.get(f"/incidents/reports/{report.pk}/status/").json()
    assert body["status"] == "ready" and body["progress"] == 1.0
