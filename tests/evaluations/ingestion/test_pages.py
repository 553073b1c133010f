"""Ingestion pages: quarantine lists, the batch report with its chart and decision form, provenance; scoping."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evaluations.ingestion import services
from evaluations.ingestion.models import BatchStatus, IngestionPolicy
from evaluations.ingestion.tasks import check_batch
from garrison.audit.models import AuditEvent
from tests.evaluations.ingestion.conftest import poisoned_batch, tsv


@pytest.fixture
def held(teammate, policy, sms, sms_split):
    records, _ = poisoned_batch(sms, sms_split[1], 200, 20, seed=31)
    batch = services.batch_push(actor=teammate, policy=policy, data=tsv(records), filename="poisoned.tsv")
    check_batch.run(batch.pk)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.HELD
    return batch


def test_the_batch_page_shows_the_report_chart_flagged_records_and_the_decision_form(client, approver, held):
    client.force_login(approver)
    page = client.get(held.get_absolute_url())
    assert page.status_code == 200
    for marker in (
        'id="check-report"',
        'id="label-chart"',
        'id="flagged-records"',
        'id="decision"',
        'id="check-poison_scan"',
        "blue moon",
    ):
        assert marker in page.text, marker


def test_an_approver_rejects_in_the_browser_and_the_decision_is_audited(client, approver, held):
    client.force_login(approver)
    response = client.post(held.get_absolute_url(), {"decision": "reject", "note": "trigger phrase"})
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.status == BatchStatus.REJECTED and held.decided_by == approver
    assert AuditEvent.objects.filter(verb="ingestion_batch.reject", actor=approver).exists()


def test_an_editor_sees_the_report_but_no_decision_form_and_cannot_post_one(client, teammate, held):
    client.force_login(teammate)
    page = client.get(held.get_absolute_url())
    assert page.status_code == 200 and 'id="decision"' not in page.text
    assert client.post(held.get_absolute_url(), {"decision": "accept"}).status_code == 403


def test_outsiders_get_404_on_every_ingestion_page(client, outsider, held, policy):
    client.force_login(outsider)
    for url in (
        held.get_absolute_url(),
        reverse("ingestion:system", args=[policy.system_id]),
        reverse("ingestion:provenance", args=[held.base_id]),
    ):
        assert client.get(url).status_code == 404, url
    assert f"#{held.pk}" not in client.get(reverse("ingestion:batch-list")).text


def test_the_list_and_system_pages_show_the_quarantine(client, viewer, held, policy):
    client.force_login(viewer)
    listing = client.get(reverse("ingestion:batch-list") + "?status=held")
    assert listing.status_code == 200 and held.get_absolute_url() in listing.text
    system_page = client.get(reverse("ingestion:system", args=[policy.system_id]))
    assert system_page.status_code == 200 and "policy-create" not in system_page.text


def test_the_provenance_page_draws_the_graph_of_versions_and_batches(client, approver, held):
    services.batch_decide(actor=approver, batch=held, decision="accept_without_flagged")
    held.refresh_from_db()
    client.force_login(approver)
    page = client.get(reverse("ingestion:provenance", args=[held.produced_id]))
    assert page.status_code == 200
    assert 'id="provenance-graph"' in page.text and "<svg" in page.text and f"batch #{held.pk}" in page.text
    assert 'id="v2"' in page.text and held.produced.sha256[:16] in page.text


def test_an_approver_governs_a_dataset_from_the_system_page(client, approver, base_dataset):
    client.force_login(approver)
    url = reverse("ingestion:system", args=[base_dataset.system_id])
    response = client.post(
        url,
        {"dataset": base_dataset.pk, "mode": "auto_accept", "max_batch_records": 500, "open_incident_on_poison": "on"},
    )
    assert response.status_code == 302
    policy = IngestionPolicy.objects.get()
    assert policy.mode == "auto_accept" and policy.max_batch_records == 500


def test_pushing_a_bad_file_in_the_browser_shows_the_reason_on_the_kept_batch(client, teammate, policy):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(teammate)
    response = client.post(
        reverse("ingestion:batch-upload", args=[policy.pk]),
        {"file": SimpleUploadedFile("bad.tsv", b"spamalot\thello\n")},
        follow=True,
    )
    assert response.status_code == 200 and "not one of the dataset&#x27;s classes" in response.text
    assert 'id="batch-message"' in response.text
