"""Model and dataset registry: content-addressed storage, upload checks, scanning and permissions."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluations.models import ARCHITECTURES, Blob, Dataset, ModelArtifact, ScanStatus
from evaluations.tasks import scan_model_artifact
from garrison.accounts.roles import TokenRole
from garrison.audit.models import AuditEvent
from tests.evaluations.conftest import DIGITS, TINY_HYPERPARAMS, blob_files, staging_files

pytestmark = pytest.mark.django_db


def multipart(system, data: bytes, name: str = "model.safetensors", **overrides) -> dict:
    """API multipart fields for a model upload."""
    fields = {
        "system": system.pk,
        "file": SimpleUploadedFile(name, data),
        "format": "safetensors",
        "architecture": "small_cnn",
        "hyperparams": json.dumps(TINY_HYPERPARAMS),
        "input_shape": "[1, 8, 8]",
        "input_bounds": "[0, 1]",
        "class_names": json.dumps(DIGITS),
    }
    fields.update(overrides)
    return fields


def test_the_architecture_names_match_the_engine_registry():
    from evaluations.engine.models import ARCHITECTURES as ENGINE

    assert set(ARCHITECTURES) == set(ENGINE)


def test_teammate_uploads_a_model_through_the_api_and_it_is_scanned_clean(
    api, teammate, system, tiny_cnn_bytes, media_root
):
    response = api(teammate).post("/api/models/", multipart(system, tiny_cnn_bytes), format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == 1 and body["scan_status"] == "pending" and body["usable"] is False
    assert body["size"] == len(tiny_cnn_bytes)
    path = media_root / "blobs" / body["sha256"][:2] / body["sha256"]
    assert path.read_bytes() == tiny_cnn_bytes
    assert scan_model_artifact.run(body["id"]) == ScanStatus.CLEAN
    assert api(teammate).get(f"/api/models/{body['id']}/").json()["usable"] is True
    assert AuditEvent.objects.filter(verb="model_artifact.create", object_id=str(body["id"])).count() == 1


def test_duplicate_uploads_are_stored_once_with_new_version_numbers(upload_model, teammate, system, media_root):
    first = upload_model(teammate, system, scan=False)
    second = upload_model(teammate, system, scan=False)
    assert (first.version, second.version) == (1, 2)
    assert first.sha256 == second.sha256
    assert Blob.objects.count() == 1
    assert len(blob_files(media_root)) == 1
    assert staging_files(media_root) == []


def test_a_malicious_pickle_renamed_pt_is_refused_at_upload(api, teammate, system, malicious_pickle, media_root):
    response = api(teammate).post(
        "/api/models/",
        multipart(system, malicious_pickle, name="model.pt", format="torchscript", architecture="", hyperparams="{}"),
        format="multipart",
    )
    assert response.status_code == 400
    assert "raw pickle" in response.json()["error"]["fields"]["file"][0]
    assert blob_files(media_root) == [] and staging_files(media_root) == []
    assert not ModelArtifact.objects.exists()


def test_a_zip_with_a_malicious_pickle_is_scanned_unsafe_and_cannot_be_evaluated(
    api, teammate, system, malicious_torch_zip
):
    response = api(teammate).post(
        "/api/models/",
        multipart(
            system, malicious_torch_zip, name="model.pt", format="torchscript", architecture="", hyperparams="{}"
        ),
        format="multipart",
    )
    assert response.status_code == 201
    model_id = response.json()["id"]
    assert scan_model_artifact.run(model_id) == ScanStatus.UNSAFE
    model = api(teammate).get(f"/api/models/{model_id}/").json()
    assert model["scan_report"]["verdict"] == "malicious"
    submit = api(teammate).post(
        "/api/runs/",
        {"system": system.pk, "kind": "robustness", "model": model_id, "reference_dataset": "digits"},
        format="json",
    )
    assert submit.status_code == 400
    assert "clean" in submit.json()["error"]["fields"]["model"][0]


def test_an_upload_over_the_size_limit_gets_413_and_leaves_no_file(
    api, teammate, system, tiny_cnn_bytes, settings, media_root
):
    settings.GARRISON_MAX_UPLOAD_BYTES = 1000
    response = api(teammate).post("/api/models/", multipart(system, tiny_cnn_bytes), format="multipart")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert blob_files(media_root) == [] and staging_files(media_root) == []


def test_a_truncated_safetensors_file_is_refused(api, teammate, system, tiny_cnn_bytes, media_root):
    response = api(teammate).post("/api/models/", multipart(system, tiny_cnn_bytes[:200]), format="multipart")
    assert response.status_code == 400
    assert "truncated" in response.json()["error"]["fields"]["file"][0]
    assert blob_files(media_root) == [] and staging_files(media_root) == []


def test_a_file_in_the_wrong_format_is_refused(api, teammate, system, media_root):
    response = api(teammate).post(
        "/api/models/", multipart(system, b"PK\x03\x04 not safetensors at all"), format="multipart"
    )
    assert response.status_code == 400
    assert "not safetensors" in response.json()["error"]["fields"]["file"][0]
    assert blob_files(media_root) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"input_shape": "[3, 8, 8]"}, "input_shape"),
        ({"input_bounds": "[1, 0]"}, "input_bounds"),
        ({"class_names": '["only one"]'}, "class_names"),
        ({"architecture": "alexnet"}, "architecture"),
        ({"hyperparams": json.dumps({**TINY_HYPERPARAMS, "num_classes": 3})}, "hyperparams"),
        ({"input_shape": "not json"}, "input_shape"),
    ],
)
def test_an_inconsistent_input_spec_is_refused_with_a_field_error_and_no_file(
    api, teammate, system, tiny_cnn_bytes, media_root, overrides, field
):
    response = api(teammate).post("/api/models/", multipart(system, tiny_cnn_bytes, **overrides), format="multipart")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert blob_files(media_root) == [] and staging_files(media_root) == []
    assert not Blob.objects.exists()


def test_weights_that_do_not_fit_the_declared_architecture_are_rejected_by_the_scan(upload_model, teammate, system):
    artifact = upload_model(teammate, system, scan=False, hyperparams={**TINY_HYPERPARAMS, "feature_dim": 32})
    assert scan_model_artifact.run(artifact.pk) == ScanStatus.REJECTED
    artifact.refresh_from_db()
    assert "does not load as declared" in artifact.scan_message


def test_unknown_upload_fields_are_rejected(api, teammate, system, tiny_cnn_bytes):
    response = api(teammate).post("/api/models/", multipart(system, tiny_cnn_bytes, colour="blue"), format="multipart")
    assert response.status_code == 400
    assert "colour" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("persona", "expected"), [("owner", 201), ("teammate", 201), ("viewer", 403), ("outsider", 404)]
)
def test_who_may_upload_models(request, api, system, tiny_cnn_bytes, persona, expected):
    user = request.getfixturevalue(persona)
    response = api(user).post("/api/models/", multipart(system, tiny_cnn_bytes), format="multipart")
    assert response.status_code == expected


def test_ci_token_uploads_and_viewer_token_cannot(make_token, token_api, system, tiny_cnn_bytes):
    _, ci = make_token(TokenRole.CI)
    _, read_only = make_token(TokenRole.VIEWER)
    assert token_api(ci).post("/api/models/", multipart(system, tiny_cnn_bytes), format="multipart").status_code == 201
    assert (
        token_api(read_only).post("/api/models/", multipart(system, tiny_cnn_bytes), format="multipart").status_code
        == 403
    )
    assert token_api(read_only).get("/api/models/").json()["count"] == 1


def test_outsider_sees_no_models_and_gets_404_for_one(api, upload_model, teammate, outsider, system):
    artifact = upload_model(teammate, system, scan=False)
    assert api(outsider).get("/api/models/").json()["count"] == 0
    assert api(outsider).get(f"/api/models/{artifact.pk}/").status_code == 404


def test_reference_datasets_are_registered_once_and_profiled(api, teammate, system):
    from evaluations.tasks import profile_dataset

    body = {"system": system.pk, "kind": "reference", "reference_name": "digits"}
    first = api(teammate).post("/api/datasets/", body, format="json")
    second = api(teammate).post("/api/datasets/", body, format="json")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert profile_dataset.run(first.json()["id"]) == "ready"
    dataset = Dataset.objects.get()
    assert dataset.schema["input_shape"] == [1, 8, 8]
    assert sum(dataset.class_balance.values()) == 1797


def test_an_npz_dataset_upload_is_profiled_and_a_bad_one_rejected(api, teammate, system):
    import io

    import numpy as np

    from evaluations.tasks import profile_dataset

    buffer = io.BytesIO()
    np.savez(buffer, x=np.random.default_rng(0).random((40, 4)).astype("float32"), y=np.arange(40) % 2)
    good = api(teammate).post(
        "/api/datasets/",
        {"system": system.pk, "kind": "npz", "name": "tabular", "file": SimpleUploadedFile("d.npz", buffer.getvalue())},
        format="multipart",
    )
    assert good.status_code == 201, good.json()
    assert profile_dataset.run(good.json()["id"]) == "ready"
    assert Dataset.objects.get(pk=good.json()["id"]).class_balance == {"0": 20, "1": 20}
    bad = api(teammate).post(
        "/api/datasets/",
        {"system": system.pk, "kind": "npz", "name": "broken", "file": SimpleUploadedFile("d.npz", b"not a zip")},
        format="multipart",
    )
    assert bad.status_code == 400
