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

    attack = serializers.ChoiceField(
        choices=["fgsm", "pgd", "apgd", "square", "text"],
        default="pgd",
        help_text="'text' is the score-based word-substitution attack for token-id (text) models.",
    )
    epsilons = serializers.ListField(
        child=serializers.FloatField(min_value=0.0, max_value=1000.0),
        min_length=1,
        max_length=20,
        default=[0.0, 0.05, 0.1, 0.2],
        help_text="Budgets in input units; 0 measures clean accuracy. For the text attack: word edits (0, 1, 2, ...).",
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
        if attrs.get("attack") == "text" and any(e != int(e) or e > 50 for e in attrs.get("epsilons", [])):
            raise serializers.ValidationError(
                {"epsilons": "For the text attack the budgets are whole numbers of word edits, e.g. [0, 1, 2, 3]."}
            )
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


class ExtractionRunConfig(_Common):
    """Steal the model through its predictions (behind an output defense) and measure fidelity per budget."""

    strategy = serializers.ChoiceField(
        choices=["random", "jacobian", "pool", "active"],
        default="random",
        help_text="random: uniform inputs; jacobian: Papernot augmentation from train-split seeds; pool: the "
        "train split as a natural pool; active: uncertainty sampling from it.",
    )
    budgets = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=5000),
        min_length=1,
        max_length=10,
        default=[50, 100, 200, 500, 1000],
        help_text="Attack-query budgets, strictly increasing; a surrogate is trained and measured at each.",
    )
    defense = serializers.ChoiceField(
        choices=["none", "label_only", "top_k", "rounding", "reverse_sigmoid", "gaussian_noise"], default="none"
    )
    top_k = serializers.IntegerField(min_value=1, max_value=1000, default=3, help_text="top_k defense: k.")
    decimals = serializers.IntegerField(min_value=0, max_value=15, default=2, help_text="rounding defense.")
    beta = serializers.FloatField(min_value=1e-6, max_value=10.0, default=0.7, help_text="reverse_sigmoid defense.")
    gamma = serializers.FloatField(min_value=1e-6, max_value=100.0, default=1.2, help_text="reverse_sigmoid defense.")
    noise_std = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.05, help_text="gaussian_noise defense.")
    surrogate = serializers.ChoiceField(
        choices=["auto", "mlp", "small_cnn", "text_embeddingbag"],
        default="auto",
        help_text="The attacker's architecture; auto: text_embeddingbag for text models, else mlp.",
    )
    surrogate_epochs = serializers.IntegerField(min_value=1, max_value=500, default=30)
    surrogate_min_steps = serializers.IntegerField(
        min_value=0, max_value=100_000, default=300, help_text="At least this many training steps per budget."
    )
    jacobian_step = serializers.FloatField(min_value=1e-6, max_value=1.0, default=0.1)
    jacobian_seed_size = serializers.IntegerField(min_value=1, max_value=5000, default=50)
    active_initial = serializers.IntegerField(min_value=1, max_value=5000, default=100)
    active_step = serializers.IntegerField(min_value=1, max_value=5000, default=100)
    transfer_attack = serializers.BooleanField(
        default=True, help_text="Replay PGD examples crafted on the surrogate against the victim."
    )
    transfer_eps = serializers.FloatField(min_value=1e-6, max_value=1000.0, default=0.1)
    transfer_samples = serializers.IntegerField(min_value=1, max_value=10_000, default=200)
    detector = serializers.BooleanField(
        default=True, help_text="Monitor the attacker with the extraction detector and replay benign clients."
    )
    benign_streams = serializers.IntegerField(
        min_value=1, max_value=500, default=50, help_text="Benign clients drawn from the test split."
    )
    max_eval_samples = serializers.IntegerField(min_value=1, max_value=100_000, default=500)
    max_pool_samples = serializers.IntegerField(min_value=1, max_value=1_000_000, default=5000)
    target = serializers.ChoiceField(
        choices=["local", "deployment"],
        default="local",
        help_text="local: the model in the worker behind `defense`; deployment: the guarded endpoint of "
        "`deployment` over real HTTP, with a key the run issues for itself and revokes at the end (the "
        "deployment's own output policy, limits and monitor apply; `defense` and `detector` are ignored).",
    )
    deployment = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="target deployment: its id."
    )
    http_batch_size = serializers.IntegerField(
        min_value=1, max_value=4096, default=32, help_text="target deployment: inputs per request."
    )
    max_rate_limit_wait = serializers.FloatField(
        min_value=0.0,
        max_value=3600.0,
        default=120.0,
        help_text="target deployment: most seconds the attacker waits out 429s (Retry-After) before it stops.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Budgets must grow; a deployment target names an active deployment."""
        budgets = list(attrs.get("budgets", []))
        if any(a >= b for a, b in zip(budgets, budgets[1:], strict=False)):
            raise serializers.ValidationError({"budgets": "List the budgets in strictly increasing order."})
        if attrs.get("target") == "deployment":
            from evaluations.serving.models import Deployment, DeploymentStatus

            if not attrs.get("deployment"):
                raise serializers.ValidationError({"deployment": "Name the deployment (its id) to attack over HTTP."})
            status = Deployment.objects.filter(pk=attrs["deployment"]).values_list("status", flat=True).first()
            if status is None:
                raise serializers.ValidationError({"deployment": f"No deployment {attrs['deployment']}."})
            if status != DeploymentStatus.ACTIVE:
                raise serializers.ValidationError({"deployment": "That deployment is disabled; enable it first."})
        elif attrs.get("deployment"):
            raise serializers.ValidationError({"deployment": "Set target to 'deployment' to attack a deployment."})
        return attrs


DETECTION_METHODS = ["union", "consensus", "spectral_signatures", "activation_clustering"]
IMAGE_DETECTORS = ["input_space", "union", "features"]
_IMAGES_HELP = (
    "Images only. input_space: reconstruct patch triggers in the inputs (the default); features: the "
    "feature-space detectors chosen by method (spectral signatures, activation clustering); union: both, "
    "a feature-space finding kept only when the input-space exclusion check agrees."
)


class PoisoningDetectionConfig(_Common):
    """Spectral signatures and activation clustering over the model's penultimate features of the train split."""

    method = serializers.ChoiceField(
        choices=DETECTION_METHODS,
        default="union",
        help_text="union: a class is flagged when either detector flags it; consensus: when both do.",
    )
    layer = serializers.CharField(
        default="", allow_blank=True, max_length=200, help_text="Feature layer name; blank finds the last Linear."
    )
    images = serializers.ChoiceField(choices=IMAGE_DETECTORS, default="input_space", help_text=_IMAGES_HELP)
    max_samples = serializers.IntegerField(min_value=20, max_value=1_000_000, default=100_000)
    batch_size = serializers.IntegerField(min_value=1, max_value=4096, default=512)


class BackdoorSimulationConfig(_Common):
    """Red team: plant a backdoor in the train split, train on it, detect the poison, drop it and retrain."""

    trigger = serializers.ChoiceField(
        choices=["patch", "token"], default="patch", help_text="patch for images, token (a phrase) for text."
    )
    patch_size = serializers.IntegerField(min_value=1, max_value=64, default=2)
    patch_location = serializers.ChoiceField(
        choices=["bottom_right", "bottom_left", "top_right", "top_left"], default="bottom_right"
    )
    trigger_phrase = serializers.CharField(
        default="", allow_blank=True, max_length=200, help_text="token trigger: words from the dataset's vocabulary."
    )
    target_class = serializers.IntegerField(min_value=0, max_value=100_000, default=0)
    source_classes = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=100_000),
        default=None,
        allow_null=True,
        max_length=1000,
        help_text="Classes the trigger should flip to the target; null means every other class.",
    )
    poison_rate = serializers.FloatField(
        default=0.1, help_text="Fraction of the target class made of poison, strictly between 0 and 1."
    )
    rate_of = serializers.ChoiceField(choices=["target_class", "train"], default="target_class")
    epochs = serializers.IntegerField(min_value=1, max_value=500, default=10)
    batch_size = serializers.IntegerField(min_value=1, max_value=4096, default=64)
    lr = serializers.FloatField(min_value=1e-7, max_value=10.0, default=3e-3)
    method = serializers.ChoiceField(choices=DETECTION_METHODS, default="union")
    images = serializers.ChoiceField(choices=IMAGE_DETECTORS, default="input_space", help_text=_IMAGES_HELP)
    clean_baseline = serializers.BooleanField(
        default=False, help_text="Also train on the clean data for a reference clean accuracy (twice the time)."
    )
    max_train_samples = serializers.IntegerField(min_value=20, max_value=1_000_000, default=100_000)
    max_test_samples = serializers.IntegerField(min_value=1, max_value=100_000, default=100_000)

    def validate_poison_rate(self, value: float) -> float:
        """Strictly between 0 and 1."""
        if not 0.0 < value < 1.0:
            raise serializers.ValidationError("Give a fraction strictly between 0 and 1, e.g. 0.1 for 10%.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The trigger's own settings, and sources that differ from the target."""
        if attrs.get("trigger") == "token" and not attrs.get("trigger_phrase", "").strip():
            raise serializers.ValidationError({"trigger_phrase": "A token trigger needs a phrase, e.g. 'call now'."})
        sources = attrs.get("source_classes")
        if sources is not None and not sources:
            raise serializers.ValidationError({"source_classes": "Name at least one class, or null for all others."})
        if sources and attrs.get("target_class", 0) in sources:
            raise serializers.ValidationError(
                {"source_classes": "Leave the target class out: the backdoor flips other classes to it."}
            )
        return attrs


CONFIG_SERIALIZERS: dict[str, type[InputSerializer]] = {
    RunKind.MODEL_SCAN: ModelScanConfig,
    RunKind.ROBUSTNESS: RobustnessConfig,
    RunKind.ADVERSARIAL_TRAINING: AdversarialTrainingConfig,
    RunKind.EXTRACTION: ExtractionRunConfig,
    RunKind.POISONING_DETECTION: PoisoningDetectionConfig,
    RunKind.BACKDOOR_SIMULATION: BackdoorSimulationConfig,
}

NEEDS_DATASET = {
    RunKind.ROBUSTNESS,
    RunKind.ADVERSARIAL_TRAINING,
    RunKind.EXTRACTION,
    RunKind.POISONING_DETECTION,
    RunKind.BACKDOOR_SIMULATION,
}


def available_kinds() -> list[str]:
    """Kinds that have a config serializer and a runner wired to a present engine module."""
    from evaluations.runners import runner_available

    return [kind for kind in RunKind.values if kind in CONFIG_SERIALIZERS and runner_available(kind)]


def validate_config(kind: str, config: Any, *, class_names: list[str] | None = None) -> dict[str, Any]:
    """The validated config with defaults, or a ``ValidationError`` keyed ``config.<field>``.

    With the model's ``class_names``, class indices in the config (target and source classes, top-k) are
    also checked against them.
    """
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
    validated = dict(serializer.validated_data)
    if class_names is not None:
        errors = class_errors(validated, class_names)
        if errors:
            raise ValidationError({f"config.{name}": [message] for name, message in errors.items()})
    return validated


def class_errors(config: dict[str, Any], class_names: list[str]) -> dict[str, str]:
    """Field errors for class indices in ``config`` that the model does not have."""
    n = len(class_names)
    known = f"the model has {n} classes (0..{n - 1}: {', '.join(class_names[:12])}{', ...' if n > 12 else ''})"
    errors = {}
    if "target_class" in config and config["target_class"] >= n:
        errors["target_class"] = f"Unknown target class {config['target_class']}: {known}."
    missing = [c for c in config.get("source_classes") or [] if c >= n]
    if missing:
        errors["source_classes"] = f"Unknown source classes {missing}: {known}."
    if config.get("defense") == "top_k" and config.get("top_k", 1) > n:
        errors["top_k"] = f"k must be at most the number of classes: {known}."
    return errors


def _messages(errors: Any) -> list[str]:
    if isinstance(errors, dict):
        return [f"{key}: {message}" for key, value in errors.items() for message in _messages(value)]
    if isinstance(errors, list):
        return [message for item in errors for message in _messages(item)]
    return [str(errors)]
