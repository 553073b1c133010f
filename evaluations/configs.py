"""Per-kind run configs, validated with DRF serializers: clear field errors, unknown fields rejected.

The validated config (with defaults filled in) is what is stored on the run and handed to the runner,
so a run's recorded config says exactly what ran.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from rest_framework import serializers

from evaluations.models import RunKind
from garrison.core.api.serializers import InputSerializer

MAX_SEED = 2**31 - 1


class _Common(InputSerializer):
    seed = serializers.IntegerField(min_value=0, max_value=MAX_SEED, default=0, help_text="Base random seed.")
    device = serializers.ChoiceField(
        choices=["cpu", "cuda"], default="cpu", help_text="'cuda' needs GPU workers (GARRISON_GPU_QUEUE)."
    )

    def validate_device(self, value: str) -> str:
        """A GPU run needs a GPU queue to go to."""
        if value == "cuda" and not settings.GARRISON_GPU_QUEUE:
            raise serializers.ValidationError(
                "No GPU workers are configured (GARRISON_GPU_QUEUE is empty); use device 'cpu'."
            )
        return value


class ModelScanConfig(_Common):
    """A model-file scan takes no settings beyond the artifact."""


class RobustnessConfig(_Common):
    """An epsilon sweep of one attack over (a sample of) the dataset's test split."""

    attack = serializers.ChoiceField(choices=["fgsm", "pgd", "apgd", "square"], default="pgd")
    epsilons = serializers.ListField(
        child=serializers.FloatField(min_value=0.0, max_value=1000.0),
        min_length=1,
        max_length=20,
        default=[0.0, 0.05, 0.1, 0.2],
        help_text="Budgets in input units; 0 measures clean accuracy.",
    )
    norm = serializers.ChoiceField(choices=["linf", "l2"], default="linf")
    steps = serializers.IntegerField(min_value=1, max_value=1000, default=10, help_text="PGD/APGD steps.")
    restarts = serializers.IntegerField(min_value=1, max_value=20, default=1)
    n_queries = serializers.IntegerField(min_value=1, max_value=100_000, default=1000, help_text="Square only.")
    split = serializers.ChoiceField(choices=["test", "train"], default="test")
    max_samples = serializers.IntegerField(min_value=1, max_value=100_000, default=500)
    batch_size = serializers.IntegerField(min_value=1, max_value=4096, default=128)
    shard_size = serializers.IntegerField(
        min_value=1,
        max_value=100_000,
        default=256,
        help_text="Samples per shard unit; each unit has its own derived seed, so sharding never changes results.",
    )
    shards = serializers.IntegerField(min_value=1, max_value=64, default=1, help_text="Parallel tasks.")
    sanity = serializers.ChoiceField(
        choices=["full", "quick", "off"],
        default="full",
        help_text="Reliability (sanity) checks: 'full' (the engine's defaults), 'quick' (a small subset and "
        "weaker checking attacks), or 'off'.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Cross-field rules."""
        if attrs.get("attack") == "square" and attrs.get("norm") == "l2":
            raise serializers.ValidationError({"norm": "Square supports only 'linf'."})
        if attrs.get("attack") == "fgsm" and attrs.get("norm") == "l2":
            raise serializers.ValidationError({"norm": "FGSM is an Linf attack; use 'pgd' for L2."})
        if sorted(attrs.get("epsilons", [])) != list(attrs.get("epsilons", [])):
            raise serializers.ValidationError({"epsilons": "List the budgets in increasing order."})
        return attrs


class AdversarialTrainingConfig(_Common):
    """Harden the model with PGD or fast-FGSM adversarial training; the result is a new model version."""

    eps = serializers.FloatField(min_value=1e-6, max_value=1000.0, default=0.1)
    method = serializers.ChoiceField(choices=["pgd", "fgsm_rs"], default="pgd")
    steps = serializers.IntegerField(min_value=1, max_value=100, default=10)
    adversarial_fraction = serializers.FloatField(min_value=0.01, max_value=1.0, default=1.0)
    init = serializers.ChoiceField(choices=["scratch", "pretrained"], default="pretrained")
    epochs = serializers.IntegerField(min_value=1, max_value=500, default=10)
    batch_size = serializers.IntegerField(min_value=1, max_value=4096, default=64)
    lr = serializers.FloatField(min_value=1e-7, max_value=10.0, default=1e-2)
    optimizer = serializers.ChoiceField(choices=["adam", "sgd"], default="adam")
    lr_schedule = serializers.ChoiceField(choices=["constant", "cyclic"], default="cyclic")
    eval_steps = serializers.IntegerField(min_value=1, max_value=1000, default=20)
    eval_restarts = serializers.IntegerField(min_value=1, max_value=20, default=1)
    eval_sanity = serializers.BooleanField(
        default=True, help_text="Run the sanity checks on the before/after evaluations (slower, recommended)."
    )
    max_train_samples = serializers.IntegerField(min_value=2, max_value=1_000_000, default=2000)
    max_test_samples = serializers.IntegerField(min_value=1, max_value=100_000, default=500)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The evaluation attack must be stronger than the training attack."""
        attack_steps = attrs["steps"] if attrs["method"] == "pgd" else 1
        if attrs["eval_steps"] * attrs["eval_restarts"] <= attack_steps or attrs["eval_steps"] < attack_steps:
            raise serializers.ValidationError(
                {"eval_steps": "The evaluation attack must be stronger than the training attack: raise eval_steps."}
            )
        return attrs


CONFIG_SERIALIZERS: dict[str, type[InputSerializer]] = {
    RunKind.MODEL_SCAN: ModelScanConfig,
    RunKind.ROBUSTNESS: RobustnessConfig,
    RunKind.ADVERSARIAL_TRAINING: AdversarialTrainingConfig,
}

NEEDS_DATASET = {RunKind.ROBUSTNESS, RunKind.ADVERSARIAL_TRAINING}


def available_kinds() -> list[str]:
    """Kinds that have a config serializer and a runner wired to a present engine module."""
    from evaluations.runners import runner_available

    return [kind for kind in RunKind.values if kind in CONFIG_SERIALIZERS and runner_available(kind)]


def validate_config(kind: str, config: Any) -> dict[str, Any]:
    """The validated config with defaults, or a ``ValidationError`` keyed ``config.<field>``."""
    if kind not in RunKind.values:
        raise ValidationError({"kind": f"Unknown kind '{kind}'; choose one of {', '.join(RunKind.values)}."})
    if kind not in available_kinds():
        raise ValidationError(
            {
                "kind": f"'{kind}' evaluations are not available yet in this Garrison version; choose one of "
                f"{', '.join(available_kinds())}."
            }
        )
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValidationError({"config": "config must be a JSON object."})
    serializer = CONFIG_SERIALIZERS[kind](data=config)
    if not serializer.is_valid():
        raise ValidationError(
            {f"config.{name}": [str(m) for m in _messages(errors)] for name, errors in serializer.errors.items()}
        )
    return dict(serializer.validated_data)


def _messages(errors: Any) -> list[str]:
    if isinstance(errors, dict):
        return [f"{key}: {message}" for key, value in errors.items() for message in _messages(value)]
    if isinstance(errors, list):
        return [message for item in errors for message in _messages(item)]
    return [str(errors)]
