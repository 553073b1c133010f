"""Journey 6 from the detecting run: a real poisoning-detection run opens the incident; worked to closure."""

from __future__ import annotations

import pytest
from django.utils import timezone

from incidents.demo import incident_from_run
from incidents.models import IncidentStatus
from tests.factories import PASSWORD
from tests.incidents.text_backdoor import TRIGGER, run_text_poisoning_detection
from threatmodel.models import ThreatModel, VersionStatus
from threatmodel.services import threat_decide

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def detection(teammate, system, settings, tmp_path):
    """A tiny text backdoor caught by a real run; the receiver opens the incident when the run commits."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return run_text_poisoning_detection(actor=teammate, system=system)


@pytest.fixture
def poisoning_threat(teammate, approver, system):
    """An accepted training-data-poisoning threat in the system's approved threat model."""
    from threatmodel.services import component_create, threat_model_create, version_approve, version_submit

    model = threat_model_create(actor=teammate, system=system, title="Fraud scorer threat model")
    draft = model.versions.get(status=VersionStatus.DRAFT)
    component_create(actor=teammate, version=draft, name="Reports feed", component_type="ingestion_pipeline")
    threat = draft.threats.filter(catalog_key="training-data-poisoning").first()
    assert threat is not None, list(draft.threats.values_list("catalog_key", flat=True))
    threat_decide(actor=teammate, threat=threat, status="accepted")
    version_submit(actor=teammate, version=draft, summary="The reports feed.")
    version_approve(actor=approver, version=draft, note="ok")
    return threat


def test_responder_works_the_incident_a_detection_run_opened_from_the_run_page_to_the_pdfs(
    page, teammate, system, detection, poisoning_threat, settings
):
    incident = incident_from_run(detection)
    assert incident is not None, "the receiver should have opened an incident when the run committed"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from garrison.celery import app

    app.conf.task_always_eager = True
    try:
        page.goto("/login/")
        page.fill("#id_username", "teammate")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("text=Welcome, teammate")

        # The run page: the named trigger, and the link to the incident it opened.
        page.goto(detection.get_absolute_url())
        assert TRIGGER in page.locator("#results").inner_text()
        if page.locator("#run-flagged-messages").get_attribute("open") is None:
            page.click("#run-flagged-messages summary")
        on_run_page = page.locator("#run-flagged-messages li").all_inner_texts()
        assert len(on_run_page) == detection.metrics["flagged"] and all(t.endswith(TRIGGER) for t in on_run_page)
        page.click("#run-incidents a.run-incident-link")
        page.wait_for_selector(f"h1:has-text('INC-{incident.number}')")

        # The incident quotes the flagged messages and links back to the run.
        page.click("details.flagged-messages summary")
        quoted = page.locator("details.flagged-messages li")
        assert quoted.count() == detection.metrics["flagged"]
        assert all(text.endswith(TRIGGER) for text in quoted.all_inner_texts())
        assert page.locator("a.evidence-run").first.get_attribute("href") == detection.get_absolute_url()

        page.click("button.move-to[data-to='triaged']")
        page.wait_for_selector("text=The incident is now triaged.")
        page.click("text=Add a timeline entry")
        # To the second: the incident was detected moments ago, and an entry may not precede the detection.
        page.fill("#id_occurred_at", timezone.now().strftime("%Y-%m-%dT%H:%M:%S"))
        page.fill("#id_note", f"Trigger '{TRIGGER}' confirmed: the flagged reports are spam relabelled ham")
        page.fill("#id_atlas_technique", "AML.T0020")
        page.click("form[action$='/timeline/'] button[type=submit]")
        page.wait_for_selector("text=Timeline entry added.")

        # Remediation: one action the detection run verifies, completed by hand with its verification.
        page.click("text=Add a remediation action")
        page.fill("form[action$='/actions/'] input[name=title]", "Drop the flagged records and retrain")
        page.fill("form[action$='/actions/'] input[name=due_date]", timezone.localdate().isoformat())
        page.select_option("form[action$='/actions/'] select[name=run]", str(detection.pk))
        page.click("form[action$='/actions/'] button[type=submit]")
        page.wait_for_selector("text=Remediation action added.")
        assert page.locator(f"#actions + .table-wrap a[href='{detection.get_absolute_url()}']").count() == 1
        page.fill("input[name=verification]", "Retrained without the flagged records; re-run flags none")
        page.click("form[action*='/status/'] button[type=submit]")
        page.wait_for_selector("text=is done.")

        # The threat-model update: link the realised threat, start the draft with it raised.
        page.click("text=Link threats and controls")
        page.locator("label", has_text="Training data poisoning").first.click()
        page.click("form[action$='/links/'] button[type=submit]")
        page.wait_for_selector("text=Links saved.")
        page.click("#start-tm-draft")
        page.wait_for_selector("text=Threat-model draft started with the realised threats.")
        page.goto(incident.get_absolute_url())
        assert page.locator("text=Threat-model draft started from this incident").is_visible()

        page.click("text=Edit the analysis")
        page.fill("#id_root_cause", "Customer 'not spam' reports trained the model without review")
        page.fill("#id_lessons_learned", "Quarantine every label source until the poison scan passes")
        page.click("#save-analysis")
        page.wait_for_selector("text=Saved.")
        for stage in ("contained", "eradicated", "recovered", "closed"):
            page.click(f"button.move-to[data-to='{stage}']")
            page.wait_for_selector(f"text=The incident is now {stage}.")

        incident.refresh_from_db()
        assert incident.status == IncidentStatus.CLOSED and incident.timeline.count() == 1
        draft = incident.threat_model_version
        assert draft is not None and draft.number == 2 and draft.status == VersionStatus.DRAFT
        assert draft.threat_model == ThreatModel.objects.get(system=system)
        raised = draft.threats.get(uid=poisoning_threat.uid)
        assert raised.status == "accepted" and raised.likelihood >= 4

        with page.expect_download() as download:
            page.click("#export-report")
        with open(download.value.path(), "rb") as handle:
            assert handle.read(5) == b"%PDF-"

        # The system audit PDF, from the system's page.
        page.goto(system.get_absolute_url())
        page.click("text=KPIs and gate")
        page.click("#export-audit")
        page.wait_for_selector("#download-report:visible")
        with page.expect_download() as download:
            page.click("#download-report")
        with open(download.value.path(), "rb") as handle:
            assert handle.read(5) == b"%PDF-"
        page.goto(detection.get_absolute_url())
        assert "(closed)" in page.locator("#run-incidents").inner_text()
        assert "verifies the remediation action" in page.locator("#run-incidents").inner_text()
    finally:
        app.conf.task_always_eager = False
