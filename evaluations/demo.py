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
        artifact = services.model_artifact_upload(
            actor=actor,
            system=system,
            file=SimpleUploadedFile("spam_embeddingbag.safetensors", weights),
            format="safetensors",
            architecture="text_embeddingbag",
            hyperparams=hyperparams,
            input_shape=[length],
            input_bounds=[0.0, float(hyperparams["vocab_size"] - 1)],
            class_names=["ham", "spam"],
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
