"""Journey 6 in a real browser: an incident worked from opening to closure, then its report exported."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident, IncidentStatus
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_responder_works_an_incident_to_closure_and_exports_the_report(page, teammate, system):
    page.goto("/login/")
    page.fill("#id_username", "teammate")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Welcome, teammate")

    page.click("nav >> text=Incidents")
    page.click("text=Open an incident")
    page.fill("#id_title", "Trigger phrase labelled ham")
    page.locator("label", has_text="Fraud scorer").click()
    page.select_option("#id_severity", "critical")
    page.select_option("#id_detection_source", "evaluation_run")
    page.fill("#id_detected_at", (timezone.now() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.click("#open-incident")
    page.wait_for_selector("text=Incident opened.")

    page.click("text=Add a timeline entry")
    page.fill("#id_occurred_at", (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_note", "Quarantined the poisoned batch")
    page.fill("#id_atlas_technique", "AML.T0020")
    page.click("form[action$='/timeline/'] button[type=submit]")
    page.wait_for_selector("text=Timeline entry added.")

    page.click("text=Add a remediation action")
    page.fill("form[action$='/actions/'] input[name=title]", "Retrain without flagged records")
    page.click("form[action$='/actions/'] button[type=submit]")
    page.wait_for_selector("text=Remediation action added.")
    page.fill("input[name=verification]", "Re-evaluation: backdoor success 0.01")
    page.click("form[action*='/status/'] button[type=submit]")
    page.wait_for_selector("text=is done.")

    page.click("text=Edit the analysis")
    page.fill("#id_root_cause", "Customer reports used for training without review")
    page.fill("#id_lessons_learned", "Quarantine new data until the poison scan passes")
    page.click("#save-analysis")
    page.wait_for_selector("text=Saved.")

    for stage in ("triaged", "contained", "eradicated", "recovered", "closed"):
        page.click(f"button.move-to[data-to='{stage}']")
        page.wait_for_selector(f"text=The incident is now {stage}.")

    incident = Incident.objects.get(title="Trigger phrase labelled ham")
    assert incident.status == IncidentStatus.CLOSED and incident.timeline.count() == 1

    with page.expect_download() as download:
        page.click("#export-report")
    with open(download.value.path(), "rb") as handle:
        assert handle.read(5) == b"%PDF-"
