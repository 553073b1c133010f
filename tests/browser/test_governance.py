"""Journey 5 in a real browser: portfolio -> the red system -> its trend chart -> export the audit PDF."""

from __future__ import annotations

import pytest

from kpis import services as kpi_services
from kpis.compute import KpiValue
from tests.factories import PASSWORD, SystemFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_governance_lead_drills_into_the_red_system_and_exports_its_audit(page, owner, team, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Render reports in the request for this test; the real-worker path is covered by the worker tests.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from garrison.celery import app

    app.conf.task_always_eager = True
    calm = SystemFactory(team=team, name="Calm model", slug="calm-model")
    red = SystemFactory(team=team, name="Leaky model", slug="leaky-model")
    kpi_services.measurements_record(system=calm, values=[KpiValue("scan_critical_findings", 0)], trigger="scan")
    for value in (0.62, 0.48, 0.21):
        kpi_services.measurements_record(
            system=red, values=[KpiValue("robust_accuracy", value, True)], trigger=f"robustness run {value}"
        )
    try:
        page.goto("/login/")
        page.fill("#id_username", "owner")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("text=Welcome, owner")
        page.click("nav >> text=KPIs")
        first_row = page.locator("#portfolio tbody tr").first
        assert "Leaky model" in first_row.inner_text()
        first_row.locator("a", has_text="Leaky model").click()
        page.wait_for_selector("h1:has-text('Leaky model KPIs')")
        chart = page.locator(".trend[data-kpi='robust_accuracy'] svg")
        assert chart.is_visible()
        assert chart.locator("circle").count() == 3
        page.click("#export-audit")
        page.wait_for_selector("#download-report:visible")
        with page.expect_download() as download:
            page.click("#download-report")
        path = download.value.path()
        with open(path, "rb") as handle:
            assert handle.read(5) == b"%PDF-"
    finally:
        app.conf.task_always_eager = False
