"""Robustness runs on a text model: the word-substitution attack, with before/after texts on the page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluations import services
from evaluations.demo import train_spam_embeddingbag
from evaluations.execution import execute
from evaluations.models import EvaluationRun, RunStatus, ScanStatus
from evaluations.tasks import scan_model_artifact

pytestmark = pytest.mark.django_db


@pytest.fixture
def spam_model(teammate, system, media_root):
    weights, hyperparams, length = train_spam_embeddingbag(epochs=2)
    artifact = services.model_artifact_upload(
        actor=teammate,
        system=system,
        file=SimpleUploadedFile("spam.safetensors", weights),
        format="safetensors",
        architecture="text_embeddingbag",
        hyperparams=hyperparams,
        input_shape=[length],
        input_bounds=[0.0, float(hyperparams["vocab_size"] - 1)],
        class_names=["ham", "spam"],
    )
    scan_model_artifact.run(artifact.pk)
    artifact.refresh_from_db()
    assert artifact.scan_status == ScanStatus.CLEAN
    return artifact


def test_a_text_model_is_attacked_with_word_edits_and_the_page_shows_the_texts(
    api, client, teammate, system, spam_model
):
    response = api(teammate).post(
        "/api/runs/",
        {
            "system": system.pk,
            "kind": "robustness",
            "model": spam_model.pk,
            "reference_dataset": "sms_spam",
            "config": {"attack": "text", "epsilons": [0, 1, 3], "max_samples": 40, "sanity": "quick"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    run_id = response.json()["id"]
    assert execute(run_id, worker="test") == "succeeded", EvaluationRun.objects.get(pk=run_id).error_message
    run = EvaluationRun.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED
    robust = run.metrics["robust_accuracy"]
    assert robust[0] == pytest.approx(run.metrics["clean_accuracy"]) and robust[2] <= robust[0]
    client.force_login(teammate)
    page = client.get(f"/evaluations/runs/{run_id}/").content.decode()
    assert 'id="adversarial-texts"' in page and "word edits" in page


def test_text_budgets_must_be_whole_edits(api, teammate, system, spam_model):
    response = api(teammate).post(
        "/api/runs/",
        {
            "system": system.pk,
            "kind": "robustness",
            "model": spam_model.pk,
            "reference_dataset": "sms_spam",
            "config": {"attack": "text", "epsilons": [0, 0.5]},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "word edits" in str(response.json()["error"]["fields"])
