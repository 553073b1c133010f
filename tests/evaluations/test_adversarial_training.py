"""Adversarial training registers the hardened model as a new version linked to its parent."""

from __future__ import annotations

import pytest

from evaluations import services
from evaluations.execution import execute
from evaluations.models import ModelArtifact, RunStatus, ScanStatus

pytestmark = pytest.mark.django_db

TINY_TRAINING = {
    "eps": 0.1,
    "method": "fgsm_rs",
    "epochs": 1,
    "batch_size": 32,
    "eval_steps": 3,
    "max_train_samples": 96,
    "max_test_samples": 16,
    "eval_sanity": False,
}


def test_adversarial_training_registers_a_clean_hardened_version_with_its_parent(upload_model, teammate, system):
    parent = upload_model(teammate, system)
    run = services.evaluation_run_queue(
        actor=teammate,
        system=system,
        kind="adversarial_training",
        model_artifact=parent,
        dataset=services.dataset_register_reference(actor=teammate, system=system, reference_name="digits"),
        config=TINY_TRAINING,
    )
    assert execute(run.pk, worker="test") == "succeeded"
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    hardened = ModelArtifact.objects.get(parent=parent)
    assert hardened.version == 2 and hardened.produced_by_run == run
    assert hardened.scan_status == ScanStatus.CLEAN and hardened.sha256 == run.metrics["model_sha256_after"]
    assert hardened.architecture == "small_cnn" and hardened.input_shape == parent.input_shape
    assert {"clean_accuracy_before", "robust_accuracy_after"} <= set(run.metrics)
    # The hardened version loads and can be evaluated in turn.
    follow_up = services.evaluation_run_queue(
        actor=teammate, system=system, kind="model_scan", model_artifact=hardened, config={}
    )
    assert execute(follow_up.pk, worker="test") == "succeeded"


def test_adversarial_training_needs_a_safetensors_model(upload_model, teammate, system):
    from django.core.exceptions import ValidationError

    parent = upload_model(teammate, system)
    ModelArtifact.objects.filter(pk=parent.pk).update(format="torchscript")
    parent.refresh_from_db()
    with pytest.raises(ValidationError) as error:
        services.evaluation_run_queue(
            actor=teammate,
            system=system,
            kind="adversarial_training",
            model_artifact=parent,
            dataset=services.dataset_register_reference(actor=teammate, system=system, reference_name="digits"),
            config=TINY_TRAINING,
        )
    assert "safetensors" in error.value.message_dict["model"][0]
