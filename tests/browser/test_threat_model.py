"""Journeys 1 and 2 in a real browser: an editor models a system and submits it; an approver approves it."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD
from threatmodel.models import Control, ThreatModelVersion, ThreatStatus, VersionStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, username):
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(f"text=Welcome, {username}")


def test_editor_fills_a_threat_model_and_another_user_approves_it(browser, live_server, teammate, approver, system):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    sign_in(page, "teammate")
    page.goto(system.get_absolute_url())
    page.click("#start-threat-model")
    page.wait_for_selector("h2#diagram")

    page.click("text=Add a trust boundary")
    page.fill("form[action$='/boundaries/add/'] input[name=name]", "Internet")
    page.click("form[action$='/boundaries/add/'] button[type=submit]")
    page.wait_for_selector("text=Added trust boundary Internet.")

    for name, kind, boundary in (("Mail clients", "client", "Internet"), ("Prediction API", "serving_api", "")):
        page.click("#add-component summary")
        form = page.locator("#add-component form")
        form.locator("input[name=name]").fill(name)
        form.locator("select[name=component_type]").select_option(kind)
        if boundary:
            form.locator("select[name=boundary]").select_option(label=boundary)
        form.locator("button[type=submit]").click()
        page.wait_for_selector(f"text=Added {name}")

    page.click("#add-flow summary")
    flow = page.locator("#add-flow form")
    flow.locator("select[name=source]").select_option(label="Mail clients")
    flow.locator("select[name=target]").select_option(label="Prediction API")
    flow.locator("input[name=data]").fill("SMS text")
    flow.locator("input[name=authenticated]").uncheck()
    flow.locator("button[type=submit]").click()
    page.wait_for_selector("text=Added the data flow")
    assert page.locator("svg.dfd").is_visible()

    evasion_row = page.locator("tr.threat-row", has_text="Evasion with adversarial examples").filter(
        has_text="Prediction API"
    )
    evasion_row.locator("button.accept-threat").click()
    page.wait_for_selector("text=accepted.")

    page.click("#add-control summary")
    control = page.locator("#add-control form")
    control.locator("input[name=name]").fill("Adversarial training")
    control.locator("select[name=status]").select_option("implemented")
    control.locator("select[name=owner]").select_option(label="teammate")
    control.locator("input[name=atlas_mitigations]").fill("AML.M0002")
    control.locator("label", has_text="Evasion with adversarial examples").first.click()
    control.locator("button[type=submit]").click()
    page.wait_for_selector("text=Saved control 'Adversarial training'.")

    page.fill("#id_summary", "First model of the spam filter")
    page.click("#submit-for-review")
    page.wait_for_selector("text=Submitted for review.")
    context.close()

    version = ThreatModelVersion.objects.get(threat_model__system=system)
    assert version.status == VersionStatus.IN_REVIEW
    assert version.threats.filter(status=ThreatStatus.ACCEPTED).count() == 1
    assert Control.objects.get(version=version).threats.count() == 1

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    sign_in(page, "approver")
    page.goto(version.get_absolute_url())
    page.fill("#id_note", "Covers the exposed API; approved.")
    page.click("#approve-version")
    page.wait_for_selector(f"text=Version {version.number} approved.")
    context.close()
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED and version.reviewed_by == approver
