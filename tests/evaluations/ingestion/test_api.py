"""The ingestion API: pushes land in quarantine; bad input gets a clear 4xx and is kept; the permission matrix."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluations.ingestion.models import BatchStatus, IngestionBatch
from garrison.accounts.roles import TokenRole
from garrison.audit.models import AuditEvent
from tests.evaluations.ingestion.conftest import clean_batch, tsv

URL = "/api/ingestion/batches/"


def _records(batch) -> list[dict]:
    return [{"label": label, "text": text} for label, text in zip(batch.labels, batch.texts, strict=True)]


@pytest.fixture
def records(sms, sms_split):
    return _records(clean_batch(sms, sms_split[1], 50, seed=1))


def test_an_editor_token_pushes_json_records_into_quarantine(make_token, token_api, policy, records):
    _, secret = make_token(TokenRole.EDITOR)
    response = token_api(secret).post(
        URL, {"system": policy.system_id, "dataset": "sms", "records": records}, format="json"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (
        body["status"] == BatchStatus.QUEUED
        and body["n_records"] == 50
        and body["base"] == policy.versions.get().dataset_id
    )
    batch = IngestionBatch.objects.get(pk=body["id"])
    assert batch.token_prefix and batch.pushed_by is None and batch.pushed_by_label.startswith("token:")
    assert AuditEvent.objects.filter(verb="ingestion_batch.push", object_id=str(batch.pk)).exists()


def test_an_editor_pushes_a_tsv_file(api, teammate, policy, sms, sms_split):
    data = tsv(clean_batch(sms, sms_split[1], 40, seed=2))
    response = api(teammate).post(
        URL,
        {"system": policy.system_id, "dataset": "sms", "file": SimpleUploadedFile("b.tsv", data)},
        format="multipart",
    )
    assert response.status_code == 202, response.json()
    assert response.json()["sha256"] and response.json()["input_format"] == "tsv"


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"records": []}, 400, "holds no records"),
        ({"records": [{"label": "eggs", "text": "hi"}]}, 400, "not one of the dataset's classes"),
        ({"records": [{"label": "ham", "body": "hi"}]}, 400, "wrong fields"),
        ({"file": b"ham\thi\n\xff\xfe\n"}, 400, "not UTF-8"),
        ({"file": b"just a line without a tab\n"}, 400, "label<TAB>text"),
    ],
)
def test_bad_batches_get_a_clear_400_and_are_kept_for_forensics(api, teammate, policy, payload, status, words):
    data = {"system": policy.system_id, "dataset": "sms"}
    if "file" in payload:
        data["file"] = SimpleUploadedFile("bad.tsv", payload["file"])
        response = api(teammate).post(URL, data, format="multipart")
    else:
        response = api(teammate).post(URL, {**data, **payload}, format="json")
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error["message"] and "kept as batch #" in error["message"]
    kept = IngestionBatch.objects.get()
    assert kept.status == BatchStatus.INVALID and words in kept.status_message
    assert AuditEvent.objects.filter(verb="ingestion_batch.refuse", object_id=str(kept.pk)).exists()
    if "file" in payload:
        assert kept.raw_blob.path.read_bytes() == payload["file"]


def test_a_batch_over_the_records_limit_gets_413_and_is_kept(api, teammate, policy, records):
    policy.max_batch_records = 10
    policy.save()
    response = api(teammate).post(
        URL, {"system": policy.system_id, "dataset": "sms", "records": records}, format="json"
    )
    assert response.status_code == 413
    assert "at most 10" in response.json()["error"]["message"]
    assert IngestionBatch.objects.get().status == BatchStatus.INVALID


def test_a_batch_over_the_byte_limit_gets_413_without_storing_its_bytes(api, teammate, policy, settings):
    settings.GARRISON_INGESTION_MAX_BATCH_BYTES = 100
    response = api(teammate).post(
        URL,
        {"system": policy.system_id, "dataset": "sms", "file": SimpleUploadedFile("big.tsv", b"ham\tx\n" * 50)},
        format="multipart",
    )
    assert response.status_code == 413 and "limit is 100" in response.json()["error"]["message"]
    kept = IngestionBatch.objects.get()
    assert kept.raw_blob is None and kept.size_bytes == 300


def test_records_and_file_together_or_neither_are_refused(api, teammate, policy):
    response = api(teammate).post(URL, {"system": policy.system_id, "dataset": "sms"}, format="json")
    assert response.status_code == 400 and "either records" in response.json()["error"]["message"]


def test_a_push_to_a_dataset_not_under_ingestion_is_404_with_a_hint(api, teammate, policy, records):
    response = api(teammate).post(
        URL, {"system": policy.system_id, "dataset": "other", "records": records}, format="json"
    )
    assert response.status_code == 404


@pytest.mark.parametrize("role", [TokenRole.VIEWER, TokenRole.CI])
def test_viewer_and_ci_tokens_cannot_push(make_token, token_api, policy, records, role):
    _, secret = make_token(role)
    response = token_api(secret).post(
        URL, {"system": policy.system_id, "dataset": "sms", "records": records}, format="json"
    )
    assert response.status_code == 403 and "push training-data batches" in response.json()["error"]["message"]
    assert not IngestionBatch.objects.exists()


def test_a_token_of_another_team_cannot_push_or_see_the_dataset(token_api, outsider, other_team, policy, records):
    from garrison.accounts.services import api_token_create

    _, secret = api_token_create(actor=outsider, team=other_team, name="their ci", role=TokenRole.CI)
    client = token_api(secret)
    response = client.post(URL, {"system": policy.system_id, "dataset": "sms", "records": records}, format="json")
    assert response.status_code == 404
    assert client.get(URL).json()["results"] == []


def test_outsiders_and_viewers_see_what_their_role_allows(api, outsider, viewer, teammate, policy, records):
    pushed = api(teammate).post(URL, {"system": policy.system_id, "dataset": "sms", "records": records}, format="json")
    batch_id = pushed.json()["id"]
    assert api(outsider).get(f"{URL}{batch_id}/").status_code == 404
    assert (
        api(outsider)
        .post(URL, {"system": policy.system_id, "dataset": "sms", "records": records}, format="json")
        .status_code
        == 404
    )
    assert api(viewer).get(f"{URL}{batch_id}/").status_code == 200
    assert (
        api(viewer)
        .post(URL, {"system": policy.system_id, "dataset": "sms", "records": records}, format="json")
        .status_code
        == 403
    )
    assert api().get(URL).status_code in (401, 403)


def test_only_approvers_decide_and_only_held_batches(api, make_token, token_api, teammate, approver, policy, records):
    pushed = api(teammate).post(URL, {"system": policy.system_id, "dataset": "sms", "records": records}, format="json")
    decision_url = f"{URL}{pushed.json()['id']}/decision/"
    assert api(teammate).post(decision_url, {"decision": "accept"}, format="json").status_code == 403
    _, secret = make_token(TokenRole.EDITOR)
    assert token_api(secret).post(decision_url, {"decision": "accept"}, format="json").status_code == 403
    response = api(approver).post(decision_url, {"decision": "accept"}, format="json")
    assert response.status_code == 409 and "only batches held for review" in response.json()["error"]["message"]
    assert api(approver).post(decision_url, {"decision": "maybe"}, format="json").status_code == 400
