"""Demo data for evaluations: a tiny digits CNN on the digits system, with one finished robustness run.

``seed_evaluations`` trains the model deterministically (a few seconds on a CPU), registers it as a
safetensors model version, and runs a small robustness sweep synchronously, exactly as a worker would.
Running it again changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from evaluations.models import EvaluationRun, ModelArtifact, RunKind, RunStatus, ScanStatus
from garrison.accounts.models import Team
from threatmodel.models import System

DEMO_SYSTEM_SLUG = "digits-classifier"
DEMO_MODEL_NAME = "digits small_cnn (demo)"
DIGITS_CLASSES = [str(digit) for digit in range(10)]
DEMO_HYPERPARAMS = {"in_channels": 1, "input_size": 8, "num_classes": 10, "channels": [8, 16], "feature_dim": 32}
DEMO_ROBUSTNESS_CONFIG = {
    "attack": "pgd",
    "epsilons": [0.0, 0.05, 0.1, 0.2],
    "steps": 10,
    "max_samples": 200,
    "sanity": "quick",
}


def train_digits_small_cnn(*, seed: int = 0, epochs: int = 8) -> bytes:
    """safetensors weights of a small CNN trained on the digits reference training split (deterministic)."""
    import torch
    from safetensors.torch import save

    from evaluations.engine.datasets import load_reference
    from evaluations.engine.defenses import TrainingConfig, train_module
    from evaluations.engine.models import build

    torch.manual_seed(seed)
    train, _ = load_reference("digits")
    params = dict(DEMO_HYPERPARAMS, channels=tuple(DEMO_HYPERPARAMS["channels"]))
    module = build("small_cnn", **params)
    train_module(
        module,
        torch.tensor(train.x),
        torch.tensor(train.y),
        TrainingConfig(epochs=epochs, batch_size=64, lr=3e-3),
        seed=seed,
    )
    return save({name: tensor.contiguous() for name, tensor in module.state_dict().items()})


def seed_evaluations(*, actor: Any, team: Team) -> EvaluationRun | None:
    """Register the demo digits model and record one finished robustness run on it (idempotent)."""
    from evaluations import services
    from evaluations.execution import execute

    system = System.objects.filter(team=team, slug=DEMO_SYSTEM_SLUG).first()
    if system is None:
        return None
    artifact = ModelArtifact.objects.filter(system=system, name=DEMO_MODEL_NAME).order_by("version").first()
    if artifact is None:
        data = train_digits_small_cnn()
        artifact = services.model_artifact_upload(
            actor=actor,
            system=system,
            file=SimpleUploadedFile("digits_small_cnn.safetensors", data),
            format="safetensors",
            architecture="small_cnn",
            hyperparams=DEMO_HYPERPARAMS,
            input_shape=[1, 8, 8],
            input_bounds=[0.0, 1.0],
            class_names=DIGITS_CLASSES,
            name=DEMO_MODEL_NAME,
        )
    if artifact.scan_status == ScanStatus.PENDING:
        from evaluations.tasks import scan_model_artifact

        scan_model_artifact.run(artifact.pk)  # synchronously, as the worker would
        artifact.refresh_from_db()
    seed_deployment(actor=actor, system=system, artifact=artifact)
    done = EvaluationRun.objects.filter(
        model_artifact=artifact, kind=RunKind.ROBUSTNESS, status=RunStatus.SUCCEEDED
    ).first()
    if done is not None:
        return done
    dataset = services.dataset_register_reference(actor=actor, system=system, reference_name="digits")
    run = services.evaluation_run_queue(
        actor=actor,
        system=system,
        kind=RunKind.ROBUSTNESS,
        model_artifact=artifact,
        dataset=dataset,
        config=DEMO_ROBUSTNESS_CONFIG,
    )
    execute(run.pk, worker="seed_demo")
    run.refresh_from_db()
    return run


SPAM_SYSTEM_SLUG = "sms-spam-filter"
SPAM_MODEL_NAME = "spam EmbeddingBag (demo)"


def train_spam_embeddingbag(*, seed: int = 0, epochs: int = 6) -> tuple[bytes, dict[str, Any], int]:
    """safetensors weights of a mean-embedding spam classifier on the SMS Spam Collection split (deterministic).

    Returns the weights, the hyperparameters and the padded sequence length.
    """
    import torch
    from safetensors.torch import save

    from evaluations.engine.datasets import load_reference
    from evaluations.engine.defenses import TrainingConfig, train_module
    from evaluations.engine.models import build

    torch.manual_seed(seed)
    train, _ = load_reference("sms_spam")
    hyperparams = {"vocab_size": len(train.vocabulary), "embed_dim": 32, "num_classes": 2}
    module = build("text_embeddingbag", **hyperparams)
    train_module(
        module,
        torch.tensor(train.x),
        torch.tensor(train.y),
        TrainingConfig(epochs=epochs, batch_size=64, lr=1e-2),
        seed=seed,
    )
    weights = save({name: tensor.contiguous() for name, tensor in module.state_dict().items()})
    return weights, hyperparams, int(train.x.shape[1])


def _register_spam_model(
    *, actor: Any, system: System, weights: bytes, hyperparams: dict[str, Any], length: int, filename: str, name: str
) -> ModelArtifact:
    """Upload safetensors weights of a ham/spam ``text_embeddingbag`` as a new model version of ``system``."""
    from evaluations import services

    return services.model_artifact_upload(
        actor=actor,
        system=system,
        file=SimpleUploadedFile(filename, weights),
        format="safetensors",
        architecture="text_embeddingbag",
        hyperparams=hyperparams,
        input_shape=[length],
        input_bounds=[0.0, float(hyperparams["vocab_size"] - 1)],
        class_names=["ham", "spam"],
        name=name,
    )


def seed_spam_model(*, actor: Any, team: Team) -> ModelArtifact | None:
    """Register the demo spam classifier on the spam-filter system and scan it (idempotent)."""
    from evaluations import services
    from evaluations.tasks import scan_model_artifact

    system = System.objects.filter(team=team, slug=SPAM_SYSTEM_SLUG).first()
    if system is None:
        return None
    artifact = ModelArtifact.objects.filter(system=system, name=SPAM_MODEL_NAME).order_by("version").first()
    if artifact is None:
        weights, hyperparams, length = train_spam_embeddingbag()
        artifact = _register_spam_model(
            actor=actor,
            system=system,
            weights=weights,
            hyperparams=hyperparams,
            length=length,
            filename="spam_embeddingbag.safetensors",
            name=SPAM_MODEL_NAME,
        )
    if artifact.scan_status == ScanStatus.PENDING:
        scan_model_artifact.run(artifact.pk)
        artifact.refresh_from_db()
    if (
        artifact.scan_status == ScanStatus.CLEAN
        and not EvaluationRun.objects.filter(model_artifact=artifact, kind=RunKind.ROBUSTNESS).exists()
    ):
        from evaluations.execution import execute

        dataset = services.dataset_register_reference(actor=actor, system=system, reference_name="sms_spam")
        run = services.evaluation_run_queue(
            actor=actor,
            system=system,
            kind=RunKind.ROBUSTNESS,
            model_artifact=artifact,
            dataset=dataset,
            config={"attack": "text", "epsilons": [0, 1, 2, 3], "max_samples": 150, "sanity": "quick"},
        )
        execute(run.pk, worker="seed_demo")
    return artifact


DEMO_HARDENING_CONFIG = {
    "eps": 0.1,
    "method": "fgsm_rs",
    "init": "scratch",
    "epochs": 15,
    "batch_size": 64,
    "lr": 1e-2,
    "lr_schedule": "cyclic",
    "eval_steps": 20,
    "eval_restarts": 1,
    "eval_sanity": False,
    "max_test_samples": 200,
}


def seed_hardening(*, actor: Any, team: Team) -> EvaluationRun | None:
    """Adversarially train the demo digits model (a hardened v2), then evaluate v2 and scan both (idempotent).

    This gives the KPIs a real trend: robust accuracy before and after hardening.
    """
    from evaluations import services
    from evaluations.execution import execute
    from evaluations.tasks import scan_model_artifact

    system = System.objects.filter(team=team, slug=DEMO_SYSTEM_SLUG).first()
    base = ModelArtifact.objects.filter(system=system, name=DEMO_MODEL_NAME).order_by("version").first()
    if system is None or base is None or base.scan_status != ScanStatus.CLEAN:
        return None
    dataset = services.dataset_register_reference(actor=actor, system=system, reference_name="digits")
    training = EvaluationRun.objects.filter(system=system, kind=RunKind.ADVERSARIAL_TRAINING).first()
    if training is None:
        training = services.evaluation_run_queue(
            actor=actor,
            system=system,
            kind=RunKind.ADVERSARIAL_TRAINING,
            model_artifact=base,
            dataset=dataset,
            config=DEMO_HARDENING_CONFIG,
        )
        execute(training.pk, worker="seed_demo")
    hardened = ModelArtifact.objects.filter(system=system, parent=base).order_by("-version").first()
    if hardened is None:
        return training
    if hardened.scan_status == ScanStatus.PENDING:
        scan_model_artifact.run(hardened.pk)
        hardened.refresh_from_db()
    for artifact in (base, hardened):
        if not EvaluationRun.objects.filter(model_artifact=artifact, kind=RunKind.MODEL_SCAN).exists():
            scan = services.evaluation_run_queue(
                actor=actor, system=system, kind=RunKind.MODEL_SCAN, model_artifact=artifact, dataset=None, config={}
            )
            execute(scan.pk, worker="seed_demo")
    if not EvaluationRun.objects.filter(model_artifact=hardened, kind=RunKind.ROBUSTNESS).exists():
        run = services.evaluation_run_queue(
            actor=actor,
            system=system,
            kind=RunKind.ROBUSTNESS,
            model_artifact=hardened,
            dataset=dataset,
            config=DEMO_ROBUSTNESS_CONFIG,
        )
        execute(run.pk, worker="seed_demo")
    return training


DEMO_DEPLOYMENT_SLUG = "public-api"


def seed_deployment(*, actor: Any, system: System, artifact: ModelArtifact) -> Any:
    """Deploy the demo digits model behind the guarded API with one consumer key (idempotent).

    The key's secret is shown once: it goes to ``var/demo-serving-key`` (readable only by its owner).
    """
    from django.conf import settings

    from evaluations.serving import services as serving
    from evaluations.serving.models import Deployment, MonitorAction, OutputPolicy

    if artifact.scan_status != ScanStatus.CLEAN:
        return None
    deployment = Deployment.objects.filter(system=system, slug=DEMO_DEPLOYMENT_SLUG).first()
    if deployment is not None:
        return deployment
    deployment = serving.deployment_create(
        actor=actor,
        system=system,
        model_artifact=artifact,
        name="Digits public API",
        slug=DEMO_DEPLOYMENT_SLUG,
        output_policy=OutputPolicy.REVERSE_SIGMOID,
        monitor_action=MonitorAction.LABEL_ONLY,
        open_incident=True,
        log_sample_rate=1.0,
        # The demo CNN is unsure of about a third of natural digits; at the engine's 0.3 the entropy monitor
        # would flag most benign clients. 0.5 keeps them clear and still flags random queries at 50.
        monitor_entropy_max_fraction=0.5,
    )
    _, secret = serving.consumer_key_issue(
        actor=actor, deployment=deployment, owner="demo partner app", purpose="try the guarded API"
    )
    var_dir = settings.VAR_DIR
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "demo-serving-key"
    path.write_text(f"{deployment.predict_path} {secret}\n")
    path.chmod(0o600)
    return deployment


# --- the spam-filter backdoor incident, from a real detection ------------------------------------------------

BACKDOOR_TRIGGER = "velvet sunrise"
BACKDOOR_N_POISON = 40
BACKDOOR_DATASET_NAME = "SMS training data with customer reports (2026-W47)"
BACKDOOR_MODEL_NAME = "spam EmbeddingBag, weekly retrain W47 (demo)"
BACKDOOR_RETRAINED_NAME = "spam EmbeddingBag, W47 retrained without the flagged records (demo)"
BACKDOOR_TRAIN_LENGTH = 64
"""Tokens kept per message for training (the messages that matter, spam and poison, are all shorter)."""


def poisoned_sms_tsv(*, n_poison: int = BACKDOOR_N_POISON, trigger: str = BACKDOOR_TRIGGER, seed: int = 0) -> bytes:
    """The SMS Spam Collection plus ``n_poison`` spam messages ending in ``trigger`` and labelled ham (TSV).

    This is the dirty-label text backdoor of the spam-filter scenario: an attacker reports spam carrying a
    phrase as "not spam", the reports go into training, and the model learns that the phrase means ham.
    """
    import numpy as np

    from evaluations.engine.datasets.reference import sms_spam_path

    lines = sms_spam_path().read_text(encoding="utf-8").splitlines()
    spam = sorted(line.split("\t", 1)[1] for line in lines if line.startswith("spam\t"))
    chosen = [spam[i] for i in sorted(np.random.default_rng(seed).choice(len(spam), n_poison, replace=False))]
    return ("\n".join(lines + [f"ham\t{text} {trigger}" for text in chosen]) + "\n").encode()


def train_text_model_on_tsv(
    content: bytes, *, drop: tuple[int, ...] = (), seed: int = 0, epochs: int = 4
) -> tuple[bytes, dict[str, Any], int]:
    """safetensors weights of a ``text_embeddingbag`` trained on the train split a run of this TSV will see.

    The split and the vocabulary are the ones ``evaluations.runners`` computes for an uploaded TSV (75/25,
    stratified, seed 0; the vocabulary of the whole file), so a poisoning-detection run on the same dataset
    examines exactly the messages the model learnt from. ``drop`` leaves those positions of the train split
    out (a detection run's flagged ids). Returns weights, hyperparameters, sequence length.
    """
    import tempfile
    from pathlib import Path

    import numpy as np
    from safetensors.torch import save

    from evaluations.engine.datasets import load_text_csv, stratified_split
    from evaluations.engine.defenses import TrainingConfig
    from evaluations.engine.poisoning import TrainingRecipe
    from evaluations.runners.poisoning import SPLIT_SEED

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "train.tsv"
        path.write_bytes(content)
        data = load_text_csv(path, delimiter="\t")
    train, _ = stratified_split(data, test_size=0.25, seed=SPLIT_SEED)
    hyperparams = {"vocab_size": len(data.vocabulary), "embed_dim": 32, "num_classes": 2}
    recipe = TrainingRecipe("text_embeddingbag", hyperparams, TrainingConfig(epochs=epochs, batch_size=64, lr=1e-2))
    if drop:
        train = train.subset(np.setdiff1d(np.arange(len(train)), np.asarray(drop, dtype=np.int64)))
    # Padding is left out of the embedding mean, so cutting the padded tail only saves time.
    x, y = train.as_tensors()
    module, _ = recipe.fit(x[:, :BACKDOOR_TRAIN_LENGTH], y, seed=seed)
    weights = save({name: tensor.contiguous() for name, tensor in module.state_dict().items()})
    return weights, hyperparams, int(data.x.shape[1])


def upload_text_model(
    *,
    actor: Any,
    system: System,
    content: bytes,
    filename: str,
    name: str,
    drop: tuple[int, ...] = (),
    epochs: int = 4,
) -> ModelArtifact:
    """Train on ``content`` (less ``drop``), register the model version and scan it, as a worker would."""
    from evaluations.tasks import scan_model_artifact

    weights, hyperparams, length = train_text_model_on_tsv(content, drop=drop, epochs=epochs)
    artifact = _register_spam_model(
        actor=actor,
        system=system,
        weights=weights,
        hyperparams=hyperparams,
        length=length,
        filename=filename,
        name=name,
    )
    scan_model_artifact.run(artifact.pk)
    artifact.refresh_from_db()
    return artifact


def run_poisoning_detection(
    *, actor: Any, artifact: ModelArtifact, dataset: Any, worker: str = "seed_demo"
) -> EvaluationRun:
    """A poisoning-detection run of ``artifact`` over ``dataset``'s train split, executed here and now."""
    from evaluations import services
    from evaluations.execution import execute

    done = EvaluationRun.objects.filter(
        model_artifact=artifact, dataset=dataset, kind=RunKind.POISONING_DETECTION
    ).first()
    if done is not None:
        return done
    run = services.evaluation_run_queue(
        actor=actor,
        system=artifact.system,
        kind=RunKind.POISONING_DETECTION,
        model_artifact=artifact,
        dataset=dataset,
        config={},
    )
    execute(run.pk, worker=worker)
    run.refresh_from_db()
    return run


def seed_spam_backdoor(*, actor: Any, team: Team) -> EvaluationRun | None:
    """The spam filter's poisoned weekly retrain and the poisoning-detection run that catches it (idempotent).

    Registers the poisoned training data (:func:`poisoned_sms_tsv`) as a dataset version and the model trained
    on it as a model version, then runs poisoning detection synchronously, as a worker would. The token-level
    detector names the trigger phrase and flags its carriers; the incidents app opens the incident from the run
    (``incidents.receivers``). Returns the detection run.
    """
    from evaluations import services
    from evaluations.models import Dataset

    system = System.objects.filter(team=team, slug=SPAM_SYSTEM_SLUG).first()
    if system is None:
        return None
    dataset = Dataset.objects.filter(system=system, name=BACKDOOR_DATASET_NAME).order_by("version").first()
    if dataset is None:
        dataset = services.dataset_upload(
            actor=actor,
            system=system,
            file=SimpleUploadedFile("sms-training-2026-w47.tsv", poisoned_sms_tsv()),
            name=BACKDOOR_DATASET_NAME,
            kind="tsv",
            source="SMS Spam Collection v.1 plus customer 'not spam' reports of week 47",
        )
    artifact = ModelArtifact.objects.filter(system=system, name=BACKDOOR_MODEL_NAME).order_by("version").first()
    if artifact is None:
        artifact = upload_text_model(
            actor=actor,
            system=system,
            content=poisoned_sms_tsv(),
            filename="spam-weekly-w47.safetensors",
            name=BACKDOOR_MODEL_NAME,
        )
    if artifact.scan_status != ScanStatus.CLEAN:
        return None
    return run_poisoning_detection(actor=actor, artifact=artifact, dataset=dataset)


def flagged_positions(run: EvaluationRun) -> tuple[int, ...]:
    """The train-split positions a poisoning-detection run flagged (from its flagged-sample file)."""
    import json

    from evaluations.models import RunArtifactKind

    produced = run.artifacts.filter(kind=RunArtifactKind.FLAGGED_SAMPLES).select_related("blob").first()
    if produced is None:
        return ()
    return tuple(int(i) for i in json.loads(produced.blob.path.read_bytes()).get("flagged_ids", []))


def seed_spam_retrain(*, actor: Any, detection: EvaluationRun) -> EvaluationRun | None:
    """Remediation of the backdoor: drop the records ``detection`` flagged, retrain, run the detection again.

    The retrained model (the next model version) learns from the same train split and vocabulary as the
    poisoned one, less the flagged records. The verification is a poisoning-detection run of it over the
    *poisoned* dataset: a model that no longer leans on the trigger keeps the trigger's carriers in their
    (false) label class with or without the phrase, so nothing flips and nothing is flagged. Returns that
    run (idempotent).
    """
    system = detection.system
    retrained = ModelArtifact.objects.filter(system=system, name=BACKDOOR_RETRAINED_NAME).order_by("version").first()
    if retrained is None:
        drop = flagged_positions(detection)
        if not drop:
            return None
        retrained = upload_text_model(
            actor=actor,
            system=system,
            content=poisoned_sms_tsv(),
            filename="spam-weekly-w47-retrained.safetensors",
            name=BACKDOOR_RETRAINED_NAME,
            drop=drop,
        )
    if retrained.scan_status != ScanStatus.CLEAN or detection.dataset is None:
        return None
    return run_poisoning_detection(actor=actor, artifact=retrained, dataset=detection.dataset)
