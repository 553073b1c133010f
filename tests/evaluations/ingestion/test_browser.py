"""Journey 8 in a real browser: a batch waits in quarantine with its report; an approver accepts it without the
flagged records and follows the new version's provenance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evaluations.ingestion import services
from evaluations.ingestion.models import BatchStatus, IngestionBatch
from evaluations.ingestion.tasks import check_batch
from tests.evaluations.ingestion.conftest import poisoned_batch, tsv
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _shot(browser_page, name: str) -> None:  # noqa: ANN001
    """Save a screenshot when GARRISON_SCREENSHOTS names a folder (for looking at the pages)."""
    folder = os.environ.get("GARRISON_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser_page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_an_approver_governs_a_dataset_reviews_a_poisoned_batch_and_accepts_it_without_the_flagged_records(
    page,  # noqa: F811
    approver,
    teammate,
    base_dataset,
    sms,
    sms_split,
):
    page.goto("/login/")
    page.fill("#id_username", "approver")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"/ingestion/systems/{base_dataset.system_id}/")
    form = page.locator("#policy-create")
    form.locator("select[name=dataset]").select_option(str(base_dataset.pk))
    form.locator("button[type=submit]").click()
    page.wait_for_selector(f"text={base_dataset} is now the accepted base")
    policy = base_dataset.provenance.policy

    records, poison = poisoned_batch(sms, sms_split[1], 200, 20, seed=41)
    batch = services.batch_push(actor=teammate, policy=policy, data=tsv(records), filename="nightly.tsv")
    check_batch.run(batch.pk)
    page.goto("/ingestion/?status=held")
    _shot(page, "ingestion_list")
    page.click(f"a[href='/ingestion/batches/{batch.pk}/']")
    page.wait_for_selector("#check-report")
    assert page.locator("#check-poison_scan .badge").inner_text() == "fail"
    assert page.locator("#label-chart").count() == 1
    flagged_rows = page.locator("#flagged-records tbody tr").count()
    assert flagged_rows >= len(poison)
    _shot(page, "ingestion_batch")
    page.check("input[name=decision][value=accept_without_flagged]")
    page.fill("textarea[name=note]", "trigger phrase 'blue moon' on spam labelled ham")
    page.click("#decision button[type=submit]")
    page.wait_for_selector("text=Decision recorded.")
    batch = IngestionBatch.objects.get(pk=batch.pk)
    assert batch.status == BatchStatus.ACCEPTED and batch.produced.version == 2
    page.click(f"a[href='/ingestion/datasets/{batch.produced_id}/provenance/']")
    page.wait_for_selector("#provenance-graph svg")
    assert page.locator("#versions tbody tr").count() == 2
    _shot(page, "ingestion_provenance")
    page.goto(f"/ingestion/systems/{base_dataset.system_id}/")
    _shot(page, "ingestion_system")
