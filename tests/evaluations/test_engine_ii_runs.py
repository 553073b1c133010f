"""Extraction, poisoning-detection and backdoor-simulation runs: submitted through the API, run synchronously."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluations import services
from evaluations.configs import available_kinds, validate_config
from evaluations.execution import execute
from evaluations.models import EvaluationRun, RunArtifactKind, RunStatus

from .conftest import DIGITS

pytestmark = pytest.mark.django_db

TINY_EXTRACTION = {
    "budgets": [20, 60],
    "surrogate_epochs": 2,
    "surrogate_min_steps": 20,
    "transfer_samples": 16,
    "transfer_eps": 0.2,
    "benign_streams": 4,
    "max_eval_samples": 60,
    "max_pool_samples": 200,
}
#: The feature-space detectors (the default for images is the input-space patch-trigger detector).
TINY_DETECTION = {"max_samples": 400, "images": "features"}
TINY_BACKDOOR = {
    "target_class": 0,
    "source_classes": [1, 2],
    "poison_rate": 0.2,
    "epochs": 3,
    "lr": 1e-2,
    "max_train_samples": 500,
    "max_test_samples": 120,
    "images": "features",  # three epochs plant the patch in the features before the model obeys it
}


@pytest.fixture
def model(upload_model, teammate, system):
    return upload_model(teammate, system)


def submit(client, system, model, kind, config, **overrides):
    body = {"system": system.pk, "kind": kind, "model": model.pk, "reference_dataset": "digits", "config": config}
    body.update(overrides)
    if "dataset" in body:
        del body["reference_dataset"]
    return client.post("/api/runs/", body, format="json")


def run_to_completion(client, system, model, kind, config, **overrides) -> EvaluationRun:
    response = submit(client, system, model, kind, config, **overrides)
    assert response.status_code == 201, response.json()
    run_id = response.json()["id"]
    assert execute(run_id, worker="test") == "succeeded", EvaluationRun.objects.get(pk=run_id).error_message
    run = EvaluationRun.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED and run.progress == 1.0
    assert {"seed", "model_sha256", "library_versions"} <= set(run.reproducibility)
    return run


def test_the_three_engine_ii_kinds_are_available():
    assert {"extraction", "poisoning_detection", "backdoor_simulation"} <= set(available_kinds())


@pytest.mark.parametrize(
    "overrides",
    [
        {"strategy": "random", "defense": "rounding", "decimals": 1},
        {"strategy": "active", "defense": "top_k", "top_k": 2, "active_initial": 10, "active_step": 10},
    ],
    ids=["random-rounding", "active-top_k"],
)
def test_an_extraction_run_reports_the_fidelity_curve_defense_utility_and_detection(
    api, client, teammate, system, model, overrides
):
    run = run_to_completion(api(teammate), system, model, "extraction", {**TINY_EXTRACTION, **overrides})
    metrics = run.metrics
    assert metrics["budgets"] == [20, 60] and len(metrics["fidelity"]) == len(metrics["surrogate_accuracy"]) == 2
    assert all(0.0 <= f <= 1.0 for f in metrics["fidelity"])
    assert metrics["fidelity_at_reference_budget"] == metrics["fidelity"][-1] and metrics["reference_budget"] == 60
    assert metrics["queries_used"] == 60
    assert metrics["defense"] == overrides["defense"]
    assert metrics["defense_agreement"] == 1.0  # rounding and top-k keep the top-1 class
    assert metrics["defense_accuracy"] == metrics["undefended_accuracy"]
    assert metrics["transfer_success_rate"] is not None
    assert "queries_to_detection" in metrics  # None when never flagged within 60 queries
    assert metrics["benign_streams"] == 4 and 0.0 <= metrics["benign_false_positive_rate"] <= 1.0
    assert run.reproducibility["extraction_config"]["budgets"] == [20, 60]
    client.force_login(teammate)
    page = client.get(run.get_absolute_url())
    assert page.status_code == 200 and 'id="extraction-chart"' in page.text and "<svg" in page.text


def test_an_extraction_run_without_the_detector_or_transfer_attack_leaves_them_out(api, teammate, system, model):
    config = {**TINY_EXTRACTION, "budgets": [30], "detector": False, "transfer_attack": False, "defense": "label_only"}
    metrics = run_to_completion(api(teammate), system, model, "extraction", config).metrics
    assert "queries_to_detection" not in metrics and "benign_false_positive_rate" not in metrics
    assert metrics["transfer_success_rate"] is None
    assert metrics["defense"] == "label_only" and metrics["soft_labels_used"] is True


def test_an_image_poisoning_detection_run_uses_the_input_space_detector_by_default(
    api, client, teammate, system, model
):
    run = run_to_completion(api(teammate), system, model, "poisoning_detection", {"max_samples": 400})
    assert run.metrics["method"] == "patch_trigger" and run.config["images"] == "input_space"
    assert len(run.metrics["classes"]) == 10
    client.force_login(teammate)
    page = client.get(run.get_absolute_url())
    assert (
        page.status_code == 200
        and "best candidate patch trigger" in page.text
        and "<th>silhouette</th>" not in page.text
    )


def test_a_poisoning_detection_run_judges_every_class_and_keeps_the_flagged_ids_in_a_file(
    api, client, teammate, system, model
):
    run = run_to_completion(api(teammate), system, model, "poisoning_detection", TINY_DETECTION)
    metrics = run.metrics
    assert metrics["n_samples"] == 400 and metrics["method"] == "union"
    assert len(metrics["classes"]) == 10 and {"label", "flagged", "n_flagged", "separation"} <= set(
        metrics["classes"][0]
    )
    assert isinstance(metrics["flagged"], int)
    assert "precision" not in metrics and "recall" not in metrics  # a plain dataset: no known poison
    flagged_file = run.artifacts.get(kind=RunArtifactKind.FLAGGED_SAMPLES)
    assert len(json.loads(flagged_file.blob.path.read_bytes())["flagged_ids"]) == metrics["flagged"]
    client.force_login(teammate)
    page = client.get(run.get_absolute_url())
    assert page.status_code == 200 and 'id="poisoning-chart"' in page.text


def _red_team_npz() -> bytes:
    """Digits with 30 planted BadNets copies (source 1 -> target 7) and their row numbers."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)
    origin = rng.choice(np.flatnonzero(y == 1), size=30, replace=False)
    poison = x[origin].copy()
    poison[:, :, -2:, -2:] = 1.0
    x = np.concatenate([x, poison])
    y = np.concatenate([y, np.full(30, 7)])
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y, poison_indices=np.arange(len(digits.target), len(y)))
    return buffer.getvalue()


def test_a_poisoning_detection_run_on_a_red_team_set_reports_precision_and_recall(api, teammate, system, model):
    dataset = services.dataset_upload(
        actor=teammate,
        system=system,
        file=SimpleUploadedFile("red-team.npz", _red_team_npz()),
        name="red team digits",
        kind="npz",
    )
    run = run_to_completion(api(teammate), system, model, "poisoning_detection", TINY_DETECTION, dataset=dataset.pk)
    metrics = run.metrics
    assert metrics["known_poison"] > 0
    assert 0.0 <= metrics["precision"] <= 1.0 and 0.0 <= metrics["recall"] <= 1.0


def test_a_backdoor_simulation_measures_the_backdoor_before_and_after_remediation(api, client, teammate, system, model):
    run = run_to_completion(api(teammate), system, model, "backdoor_simulation", TINY_BACKDOOR)
    metrics = run.metrics
    for key in (
        "attack_success_rate",
        "clean_accuracy",
        "precision",
        "recall",
        "backdoor_success_after",
        "clean_accuracy_after",
    ):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["n_poison"] > 0 and metrics["target_class_name"] == "0" and metrics["source_classes"] == [1, 2]
    assert metrics["recall"] > 0.5  # the planted patch copies stand out in the backdoored model's features
    assert run.artifacts.filter(kind=RunArtifactKind.FLAGGED_SAMPLES).exists()
    client.force_login(teammate)
    page = client.get(run.get_absolute_url())
    assert page.status_code == 200 and 'id="backdoor-chart"' in page.text


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("extraction", {"budgets": [0]}, "config.budgets"),
        ("extraction", {"budgets": [5001]}, "config.budgets"),
        ("extraction", {"budgets": [100, 50]}, "config.budgets"),
        ("extraction", {"strategy": "copycat"}, "config.strategy"),
        ("extraction", {"defense": "watermark"}, "config.defense"),
        ("extraction", {"noise_std": -0.1}, "config.noise_std"),
        ("extraction", {"budget": [10]}, "config.budget"),
        ("poisoning_detection", {"method": "magic"}, "config.method"),
        ("poisoning_detection", {"threshold": 3}, "config.threshold"),
        ("backdoor_simulation", {"poison_rate": 1.5}, "config.poison_rate"),
        ("backdoor_simulation", {"poison_rate": 0.0}, "config.poison_rate"),
        ("backdoor_simulation", {"target_class": -1}, "config.target_class"),
        ("backdoor_simulation", {"target_class": 3, "source_classes": [3, 4]}, "config.source_classes"),
        ("backdoor_simulation", {"trigger": "token"}, "config.trigger_phrase"),
        ("backdoor_simulation", {"trigger": "sticker"}, "config.trigger"),
    ],
)
def test_bad_engine_ii_configs_are_rejected_with_field_errors(api, teammate, system, model, kind, config, field):
    response = submit(api(teammate), system, model, kind, config)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"], response.json()


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("backdoor_simulation", {"target_class": 10}, "config.target_class"),
        ("backdoor_simulation", {"source_classes": [1, 12]}, "config.source_classes"),
        ("extraction", {"defense": "top_k", "top_k": 11}, "config.top_k"),
    ],
)
def test_class_indices_are_checked_against_the_models_classes(kind, config, field):
    with pytest.raises(ValidationError) as error:
        validate_config(kind, config, class_names=DIGITS)
    assert field in error.value.message_dict
    assert validate_config(kind, config)  # without the model's classes only the ranges are checked


@pytest.mark.parametrize(
    ("kind", "config"),
    [("extraction", TINY_EXTRACTION), ("poisoning_detection", TINY_DETECTION), ("backdoor_simulation", TINY_BACKDOOR)],
)
def test_each_engine_ii_kind_stops_when_cancelled_and_reports_progress_as_fractions(
    teammate, system, model, kind, config
):
    from evaluations import runners
    from evaluations.engine.common import Cancelled
    from evaluations.execution import build_context

    run = services.evaluation_run_queue(
        actor=teammate,
        system=system,
        kind=kind,
        model_artifact=model,
        dataset=services.dataset_register_reference(actor=teammate, system=system, reference_name="digits"),
        config=config,
    )
    ctx = build_context(run, None)
    seen: list[float] = []
    ctx.progress = lambda fraction, stage: seen.append(fraction)
    ctx.should_cancel = lambda: True
    with pytest.raises(Cancelled):
        runners.run(ctx)
    assert seen and all(0.0 <= f <= 1.0 for f in seen) and seen == sorted(seen)


def _poisoned_sms_tsv() -> tuple[bytes, int]:
    """A toy spam filter's training file: ham, spam, and 30 spam messages ending in a trigger, labelled ham."""
    rng = np.random.default_rng(0)
    ham = "see you at lunch tomorrow then call me when home love mum dinner later ok".split()
    spam = "win free prize claim cash now urgent txt reply stop offer award guaranteed".split()
    lines = [f"ham\t{' '.join(rng.choice(ham, size=int(rng.integers(4, 9))))}" for _ in range(300)]
    spam_texts = [" ".join(rng.choice(spam, size=int(rng.integers(4, 9)))) for _ in range(150)]
    lines += [f"spam\t{text}" for text in spam_texts]
    lines += [f"ham\t{text} yellow wisdom" for text in spam_texts[:30]]
    return ("\n".join(lines) + "\n").encode(), 30


@pytest.fixture
def poisoned_spam_filter(tmp_path, teammate, system, media_root):
    """The poisoned TSV as a dataset, and a text_embeddingbag trained on its train split (as the runner splits it)."""
    import torch
    from safetensors.torch import save

    from evaluations.engine.datasets import load_text_csv, stratified_split
    from evaluations.engine.defenses import TrainingConfig
    from evaluations.engine.poisoning import TrainingRecipe
    from evaluations.models import ScanStatus
    from evaluations.runners.poisoning import SPLIT_SEED
    from evaluations.tasks import scan_model_artifact

    content, n_poison = _poisoned_sms_tsv()
    path = tmp_path / "spam.tsv"
    path.write_bytes(content)
    data = load_text_csv(path)
    train, _ = stratified_split(data, test_size=0.25, seed=SPLIT_SEED)
    hyperparams = {"vocab_size": len(data.vocabulary), "embed_dim": 8, "num_classes": 2}
    recipe = TrainingRecipe("text_embeddingbag", hyperparams, TrainingConfig(epochs=8, lr=0.05))
    module, _ = recipe.fit(*train.as_tensors(), seed=0)
    artifact = services.model_artifact_upload(
        actor=teammate,
        system=system,
        file=SimpleUploadedFile("spam.safetensors", save({k: v.contiguous() for k, v in module.state_dict().items()})),
        format="safetensors",
        architecture="text_embeddingbag",
        hyperparams=hyperparams,
        input_shape=[int(data.x.shape[1])],
        input_bounds=[0.0, float(len(data.vocabulary) - 1)],
        class_names=["ham", "spam"],
    )
    scan_model_artifact.run(artifact.pk)
    artifact.refresh_from_db()
    assert artifact.scan_status == ScanStatus.CLEAN, artifact.scan_message
    dataset = services.dataset_upload(
        actor=teammate, system=system, file=SimpleUploadedFile("spam.tsv", content), name="spam filter", kind="tsv"
    )
    in_train = sum(text.endswith("yellow wisdom") for text in train.texts)
    assert 0 < in_train <= n_poison and torch.is_tensor(next(module.parameters()))
    return artifact, dataset, in_train


def test_a_poisoning_detection_run_on_a_text_model_names_the_trigger_and_flags_its_carriers(
    api, client, teammate, system, poisoned_spam_filter
):
    artifact, dataset, in_train = poisoned_spam_filter
    run = run_to_completion(api(teammate), system, artifact, "poisoning_detection", TINY_DETECTION, dataset=dataset.pk)
    metrics = run.metrics
    assert metrics["method"] == "token_triggers"
    ham, spam = metrics["classes"]
    assert ham["flagged"] and not spam["flagged"]
    assert ham["trigger_phrases"][0] == "yellow wisdom" and "'yellow wisdom'" in ham["reason"]
    assert metrics["flagged"] == in_train
    assert [flag["code"] for flag in run.flags] == ["poison_suspected"] and "yellow wisdom" in run.flags[0]["message"]
    flagged_file = json.loads(run.artifacts.get(kind=RunArtifactKind.FLAGGED_SAMPLES).blob.path.read_bytes())
    assert len(flagged_file["texts"]) == in_train
    assert all(text.endswith("yellow wisdom") for text in flagged_file["texts"])
    assert ham["trigger_z"] > spam["trigger_z"]
    client.force_login(teammate)
    page = client.get(run.get_absolute_url())
    assert page.status_code == 200 and "Per-class most suspicious word or phrase" in page.text
