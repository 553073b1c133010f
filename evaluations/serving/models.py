"""Deployments of a model version, their consumer keys, monitor alerts and sampled query logs."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone


class OutputPolicy(models.TextChoices):
    """What a prediction reveals (engine II's output defenses)."""

    FULL = "full", "Full probabilities"
    TOP_K = "top_k", "Top-k classes"
    LABEL_ONLY = "label_only", "Label only"
    ROUNDING = "rounding", "Rounded probabilities"
    REVERSE_SIGMOID = "reverse_sigmoid", "Reverse sigmoid (deceptive perturbation)"
    GAUSSIAN_NOISE = "gaussian_noise", "Gaussian noise"


class MonitorAction(models.TextChoices):
    """What happens to a key once the extraction monitor flags it."""

    LOG = "log", "Log only"
    THROTTLE = "throttle", "Throttle the key"
    LABEL_ONLY = "label_only", "Switch the key to label-only answers"
    BLOCK = "block", "Block the key"


class DeploymentStatus(models.TextChoices):
    """Whether the endpoint answers."""

    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


class Deployment(models.Model):
    """A model version of a system served at ``/api/serve/<system>/<deployment>/predict``."""

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="deployments")
    model_artifact = models.ForeignKey("evaluations.ModelArtifact", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, help_text="The deployment's part of the URL.")
    status = models.CharField(max_length=16, choices=DeploymentStatus.choices, default=DeploymentStatus.ACTIVE)
    # Output policy and its parameters (only the chosen policy's parameters are used).
    output_policy = models.CharField(max_length=20, choices=OutputPolicy.choices, default=OutputPolicy.FULL)
    top_k = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1)])
    decimals = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(15)])
    beta = models.FloatField(default=0.7, validators=[MinValueValidator(1e-6), MaxValueValidator(10.0)])
    gamma = models.FloatField(default=1.2, validators=[MinValueValidator(1e-6), MaxValueValidator(100.0)])
    noise_std = models.FloatField(default=0.05, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    noise_seed = models.PositiveIntegerField(default=0)
    # Request limits.
    max_batch = models.PositiveIntegerField(default=64, validators=[MinValueValidator(1), MaxValueValidator(4096)])
    max_body_bytes = models.PositiveIntegerField(
        default=1024 * 1024, validators=[MinValueValidator(1024), MaxValueValidator(16 * 1024 * 1024)]
    )
    # Rate limits per key, counted in inputs (one input is one query).
    rate_per_minute = models.PositiveIntegerField(default=600, validators=[MinValueValidator(1)])
    burst = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1)], help_text="Most inputs per key within one second."
    )
    daily_quota = models.PositiveIntegerField(default=50_000, validators=[MinValueValidator(1)])
    # Monitoring.
    monitor_enabled = models.BooleanField(default=True)
    monitor_action = models.CharField(max_length=16, choices=MonitorAction.choices, default=MonitorAction.LOG)
    throttle_per_minute = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1)], help_text="A throttled key's inputs per minute."
    )
    open_incident = models.BooleanField(default=False, help_text="Open an incident when the monitor flags a key.")
    # Detector thresholds are data dependent: calibrate them on the model's benign traffic.
    monitor_prada_threshold = models.FloatField(
        default=0.92,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="PRADA flags a client whose Shapiro-Wilk W of query distances falls below this.",
    )
    monitor_entropy_max_fraction = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="The entropy monitor flags a client when more of its last 50 answers than this are uncertain; "
        "raise it for a model that is often unsure of natural inputs.",
    )
    # Telemetry.
    log_sample_rate = models.FloatField(default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    log_full_inputs = models.BooleanField(
        default=False, help_text="Store the inputs themselves in query logs (else only their SHA-256)."
    )
    log_retention_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    AUDITED_FIELDS = (
        "name",
        "slug",
        "status",
        "model_artifact",
        "output_policy",
        "top_k",
        "decimals",
        "beta",
        "gamma",
        "noise_std",
        "noise_seed",
        "max_batch",
        "max_body_bytes",
        "rate_per_minute",
        "burst",
        "daily_quota",
        "monitor_enabled",
        "monitor_action",
        "throttle_per_minute",
        "open_incident",
        "monitor_prada_threshold",
        "monitor_entropy_max_fraction",
        "log_sample_rate",
        "log_full_inputs",
        "log_retention_days",
    )

    class Meta:
        ordering = ["system__name", "name"]
        constraints = [models.UniqueConstraint(fields=["system", "slug"], name="unique_deployment_slug_per_system")]

    def __str__(self) -> str:
        return f"{self.system.name} / {self.name}"

    def get_absolute_url(self) -> str:
        """The deployment's monitoring page."""
        return reverse("serving:deployment-detail", kwargs={"pk": self.pk})

    @property
    def predict_path(self) -> str:
        """The prediction endpoint's path."""
        return reverse("serving:predict", kwargs={"system": self.system.slug, "deployment": self.slug})

    def policy(self) -> dict[str, object]:
        """The output policy with the parameters it uses, as recorded with each logged query."""
        params = {
            OutputPolicy.TOP_K: {"k": self.top_k},
            OutputPolicy.ROUNDING: {"decimals": self.decimals},
            OutputPolicy.REVERSE_SIGMOID: {"beta": self.beta, "gamma": self.gamma},
            OutputPolicy.GAUSSIAN_NOISE: {"std": self.noise_std, "seed": self.noise_seed},
        }.get(self.output_policy, {})
        return {"name": self.output_policy, **params}

    def clean(self) -> None:
        """Cross-field rules: the model must be servable and a full batch must fit the burst."""
        errors: dict[str, list[str]] = {}
        artifact = self.model_artifact if self.model_artifact_id else None
        if artifact is not None:
            if self.system_id and artifact.system_id != self.system_id:
                errors["model_artifact"] = ["That model version belongs to another system."]
            elif artifact.scan_status != "clean":
                errors["model_artifact"] = [
                    f"Model v{artifact.version} is {artifact.get_scan_status_display().lower()}; only models whose "
                    "safety scan came back clean can be served."
                ]
            if self.output_policy == OutputPolicy.TOP_K and self.top_k > len(artifact.class_names or []):
                errors["top_k"] = [f"k must be at most the model's {len(artifact.class_names or [])} classes."]
        if self.max_batch and self.burst and self.max_batch > self.burst:
            errors["burst"] = [
                f"The burst ({self.burst}) must allow at least one full batch ({self.max_batch} inputs); raise the "
                "burst or lower max_batch."
            ]
        if self.burst and self.rate_per_minute and self.burst > self.rate_per_minute:
            errors.setdefault("burst", []).append("The burst cannot exceed the per-minute rate.")
        if self.daily_quota and self.rate_per_minute and self.daily_quota < self.max_batch:
            errors["daily_quota"] = ["The daily quota must allow at least one full batch."]
        if errors:
            raise ValidationError(errors)


class ConsumerKey(models.Model):
    """A deployment's API key for one consumer; only the SHA-256 of the secret is stored."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="keys")
    owner = models.CharField(max_length=120, help_text="Who uses the key (a team, a partner, a service).")
    purpose = models.CharField(max_length=255, blank=True, help_text="What the key is for.")
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    issued_for_run = models.ForeignKey(
        "evaluations.EvaluationRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Set by the monitor when it flags the key.
    flagged_at = models.DateTimeField(null=True, blank=True)
    enforced_action = models.CharField(max_length=16, choices=MonitorAction.choices, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.owner} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        """Whether the key was revoked."""
        return self.revoked_at is not None


class MonitorAlert(models.Model):
    """The extraction monitor flagged a key's query stream."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="alerts")
    key = models.ForeignKey(ConsumerKey, on_delete=models.CASCADE, related_name="alerts")
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    queries = models.PositiveIntegerField(help_text="The key's query count when it was flagged (1-based).")
    monitors = models.JSONField(default=list, help_text="The monitors that voted: prada, volume, entropy, edits.")
    action = models.CharField(max_length=16, choices=MonitorAction.choices)
    state = models.JSONField(default=dict, help_text="The detector's state at the flagging query.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"alert on {self.key} after {self.queries} queries"


class QueryLog(models.Model):
    """One sampled prediction request (telemetry): who asked, what policy answered, and the monitor's scores."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="query_logs")
    key = models.ForeignKey(ConsumerKey, null=True, on_delete=models.SET_NULL, related_name="query_logs")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    batch_size = models.PositiveIntegerField()
    input_sha256 = models.JSONField(default=list, help_text="SHA-256 of each input (its float64 bytes).")
    inputs = models.JSONField(null=True, blank=True, help_text="The inputs, only when the deployment opts in.")
    labels = models.JSONField(default=list)
    policy = models.JSONField(default=dict, help_text="The output policy that answered, with its parameters.")
    latency_ms = models.FloatField()
    key_queries = models.PositiveIntegerField(default=0, help_text="The key's monitored query count after this one.")
    prada_w = models.FloatField(null=True, blank=True)
    uncertain_fraction = models.FloatField(null=True, blank=True)
    volume_in_window = models.PositiveIntegerField(null=True, blank=True)
    flagged = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["deployment", "created_at"], name="serving_log_deployment_time"),
            models.Index(fields=["created_at"], name="serving_log_time"),
        ]

    def __str__(self) -> str:
        return f"query log {self.pk} ({self.batch_size} inputs)"
