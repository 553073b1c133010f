"""Model and dataset registry, evaluation runs, their produced artifacts and schedules."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

SHA256_VALIDATOR = RegexValidator(r"^[0-9a-f]{64}$", "Must be a lowercase hex SHA-256 digest.")


class Blob(models.Model):
    """Bytes stored once, content-addressed under ``MEDIA_ROOT/blobs/<sha256[:2]>/<sha256>``."""

    sha256 = models.CharField(max_length=64, primary_key=True, validators=[SHA256_VALIDATOR])
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"blob {self.sha256[:12]} ({self.size} bytes)"

    @property
    def path(self) -> Path:
        """Where the bytes live on the shared media storage."""
        return blob_path(self.sha256)


def blob_path(sha256: str) -> Path:
    """The storage path of a blob, from its digest."""
    return Path(settings.MEDIA_ROOT) / "blobs" / sha256[:2] / sha256


class ModelFormat(models.TextChoices):
    """Model file formats Garrison can load without running code."""

    TORCHSCRIPT = "torchscript", "TorchScript (torch.jit.save)"
    SAFETENSORS = "safetensors", "safetensors weights + built-in architecture"
    SKOPS = "skops", "scikit-learn via skops"


class ScanStatus(models.TextChoices):
    """Outcome of the static safety scan (and load check) of an uploaded model."""

    PENDING = "pending", "Pending scan"
    CLEAN = "clean", "Clean"
    UNSAFE = "unsafe", "Unsafe"
    REJECTED = "rejected", "Rejected"


# Names of the engine's architecture registry (evaluations.engine.models.ARCHITECTURES); kept here as
# data so the web process never imports torch. A test checks the two agree.
ARCHITECTURES = ("mlp", "small_cnn", "resnet18_cifar", "text_embeddingbag")


class ModelArtifact(models.Model):
    """One version of a system's model file, with its input spec and safety-scan verdict."""

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="model_artifacts")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=120, blank=True)
    format = models.CharField(max_length=16, choices=ModelFormat.choices)
    architecture = models.CharField(max_length=40, blank=True)
    hyperparams = models.JSONField(default=dict, blank=True)
    input_shape = models.JSONField(help_text="Shape of one sample, e.g. [1, 8, 8].")
    input_bounds = models.JSONField(default=list, help_text="[low, high] of valid input values.")
    class_names = models.JSONField(default=list)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="model_artifacts")
    original_filename = models.CharField(max_length=255, blank=True)
    scan_status = models.CharField(max_length=16, choices=ScanStatus.choices, default=ScanStatus.PENDING)
    scan_report = models.JSONField(default=dict, blank=True)
    scan_message = models.TextField(blank=True)
    scanned_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children", help_text="Hardened from."
    )
    produced_by_run = models.ForeignKey(
        "EvaluationRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_models"
    )
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    uploaded_by_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["system", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["system", "version"], name="unique_model_version_per_system"),
        ]

    def __str__(self) -> str:
        return f"{self.system.name} model v{self.version}"

    def get_absolute_url(self) -> str:
        """The model version's page."""
        return reverse("evaluations:model-detail", kwargs={"pk": self.pk})

    @property
    def sha256(self) -> str:
        """Digest of the model file."""
        return self.blob_id

    @property
    def size(self) -> int:
        """Size of the model file in bytes."""
        return self.blob.size

    @property
    def usable(self) -> bool:
        """Only a clean artifact may be loaded for runs."""
        return self.scan_status == ScanStatus.CLEAN

    def clean(self) -> None:
        """Check the input spec and the format-specific fields agree."""
        errors = validate_input_spec(
            fmt=self.format,
            architecture=self.architecture,
            hyperparams=self.hyperparams,
            input_shape=self.input_shape,
            input_bounds=self.input_bounds,
            class_names=self.class_names,
        )
        if errors:
            raise ValidationError(errors)


def validate_input_spec(
    *,
    fmt: str,
    architecture: str,
    hyperparams: object,
    input_shape: object,
    input_bounds: object,
    class_names: object,
) -> dict[str, list[str]]:
    """Field errors for an inconsistent model input spec (empty when it is consistent)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(input_shape, list) or not input_shape or len(input_shape) > 4:
        errors["input_shape"] = ["Give the shape of one sample as 1 to 4 positive integers, e.g. [1, 8, 8]."]
    elif any(isinstance(d, bool) or not isinstance(d, int) or d < 1 or d > 100_000 for d in input_shape):
        errors["input_shape"] = ["Every input_shape dimension must be a positive integer (at most 100000)."]
    numbers = (int, float)
    if (
        not isinstance(input_bounds, list)
        or len(input_bounds) != 2
        or any(isinstance(b, bool) or not isinstance(b, numbers) for b in input_bounds)
    ):
        errors["input_bounds"] = ["Give the valid input range as [low, high], e.g. [0, 1]."]
    elif not input_bounds[0] < input_bounds[1]:
        errors["input_bounds"] = [f"low must be below high; got {input_bounds}."]
    if not isinstance(class_names, list) or len(class_names) < 2:
        errors["class_names"] = ["Name at least two classes, in label order (label i is class_names[i])."]
    elif any(not isinstance(c, str) or not c.strip() or len(c) > 100 for c in class_names):
        errors["class_names"] = ["Class names must be non-empty strings of at most 100 characters."]
    elif len(set(class_names)) != len(class_names):
        errors["class_names"] = ["Class names must be unique."]
    if fmt == ModelFormat.SAFETENSORS:
        if architecture not in ARCHITECTURES:
            errors["architecture"] = [
                f"safetensors weights need a built-in architecture; choose one of {', '.join(ARCHITECTURES)}."
            ]
        if not isinstance(hyperparams, dict):
            errors["hyperparams"] = ['hyperparams must be a JSON object, e.g. {"in_channels": 1}.']
        elif "input_shape" not in errors and "class_names" not in errors:
            errors.update(_architecture_consistency(architecture, hyperparams, input_shape, class_names))
    elif architecture or hyperparams:
        errors["architecture"] = ["Only safetensors models name an architecture; leave it and hyperparams empty."]
    return errors


def _architecture_consistency(
    architecture: str, hyperparams: dict, input_shape: list[int], class_names: list[str]
) -> dict[str, list[str]]:
    """Catch the common mismatches between the architecture's hyperparameters and the input spec."""
    errors: dict[str, list[str]] = {}
    num_classes = hyperparams.get("num_classes")
    if num_classes is not None and num_classes != len(class_names):
        errors["hyperparams"] = [
            f"hyperparams say num_classes={num_classes} but {len(class_names)} class names were given; make them agree."
        ]
    if architecture in ("small_cnn", "resnet18_cifar"):
        square = architecture == "resnet18_cifar" or (len(input_shape) == 3 and input_shape[1] == input_shape[2])
        if len(input_shape) != 3 or not square:
            errors["input_shape"] = [f"{architecture} takes images [channels, height, width]; got {input_shape}."]
        else:
            channels = hyperparams.get("in_channels", 1 if architecture == "small_cnn" else 3)
            if channels != input_shape[0]:
                errors["input_shape"] = [f"input_shape has {input_shape[0]} channel(s) but in_channels is {channels}."]
            size = hyperparams.get("input_size", 8) if architecture == "small_cnn" else None
            if size is not None and size != input_shape[1]:
                errors.setdefault("input_shape", []).append(
                    f"input_shape is {input_shape[1]}x{input_shape[2]} but hyperparams input_size is {size}."
                )
    elif architecture == "mlp":
        features = 1
        for dim in input_shape:
            features *= dim
        if hyperparams.get("in_features") not in (None, features):
            errors["hyperparams"] = [
                f"mlp in_features is {hyperparams.get('in_features')} but input_shape {input_shape} has "
                f"{features} values per sample."
            ]
    return errors


class DatasetKind(models.TextChoices):
    """How a dataset is stored."""

    NPZ = "npz", "NumPy .npz (x, y)"
    CSV = "csv", "CSV (comma-separated)"
    TSV = "tsv", "TSV (label<TAB>text)"
    REFERENCE = "reference", "Built-in reference dataset"


class ReferenceDataset(models.TextChoices):
    """Reference workloads that need no upload (see evaluations.engine.datasets.reference)."""

    DIGITS = "digits", "Digits (8x8 images, 10 classes)"
    BREAST_CANCER = "breast_cancer", "Breast cancer (30 tabular features, 2 classes)"
    SMS_SPAM = "sms_spam", "SMS Spam Collection (text, 2 classes)"


class DatasetStatus(models.TextChoices):
    """Whether the dataset has been read and profiled by a worker."""

    PENDING = "pending", "Pending profile"
    READY = "ready", "Ready"
    REJECTED = "rejected", "Rejected"


class Dataset(models.Model):
    """A versioned evaluation dataset of a system: an uploaded file or a built-in reference workload."""

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=120)
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=DatasetKind.choices)
    reference_name = models.CharField(max_length=40, choices=ReferenceDataset.choices, blank=True)
    label_column = models.CharField(max_length=120, blank=True, help_text="CSV only: the label column.")
    blob = models.ForeignKey(Blob, null=True, blank=True, on_delete=models.PROTECT, related_name="datasets")
    original_filename = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=DatasetStatus.choices, default=DatasetStatus.PENDING)
    status_message = models.TextField(blank=True)
    schema = models.JSONField(default=dict, blank=True)
    class_balance = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=255, blank=True, help_text="Where the data came from.")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    uploaded_by_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["system", "name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["system", "name", "version"], name="unique_dataset_version_per_system"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def sha256(self) -> str:
        """Digest of the uploaded file ('' for reference datasets)."""
        return self.blob_id or ""

    @property
    def size(self) -> int:
        """Size of the uploaded file in bytes (0 for reference datasets)."""
        return self.blob.size if self.blob_id else 0

    def clean(self) -> None:
        """A reference dataset names its workload; an uploaded one has a file."""
        if self.kind == DatasetKind.REFERENCE:
            if not self.reference_name:
                raise ValidationError({"reference_name": "Choose a reference dataset."})
        elif self.blob_id is None:
            raise ValidationError({"file": "Upload the dataset file."})
        if self.kind == DatasetKind.CSV and not self.label_column:
            raise ValidationError({"label_column": "Name the CSV column that holds the labels."})


class RunKind(models.TextChoices):
    """What an evaluation run does."""

    ROBUSTNESS = "robustness", "Adversarial robustness"
    ADVERSARIAL_TRAINING = "adversarial_training", "Adversarial training"
    EXTRACTION = "extraction", "Model extraction"
    POISONING_DETECTION = "poisoning_detection", "Poisoning detection"
    BACKDOOR_SIMULATION = "backdoor_simulation", "Backdoor simulation"
    MODEL_SCAN = "model_scan", "Model file scan"


class RunStatus(models.TextChoices):
    """Lifecycle of an evaluation run; changes go through ``services.evaluation_run_transition``."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class EvaluationRun(models.Model):
    """One evaluation job: what ran on which model and data, its progress, results and provenance."""

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="evaluation_runs")
    kind = models.CharField(max_length=32, choices=RunKind.choices)
    model_artifact = models.ForeignKey(ModelArtifact, on_delete=models.PROTECT, related_name="runs")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    progress = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    stage = models.CharField(max_length=120, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    queued_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=2)
    worker = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    shards = models.PositiveSmallIntegerField(default=1)
    metrics = models.JSONField(default=dict, blank=True)
    flags = models.JSONField(default=list, blank=True, help_text="Reliability (sanity) flags.")
    reliable = models.BooleanField(null=True, blank=True)
    reproducibility = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    error_traceback = models.TextField(blank=True)
    engine_seconds = models.FloatField(null=True, blank=True)
    schedule = models.ForeignKey(
        "EvaluationSchedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_by_label = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0.0, progress__lte=1.0), name="run_progress_between_0_and_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} run #{self.pk}"

    def get_absolute_url(self) -> str:
        """The run's page."""
        return reverse("evaluations:run-detail", kwargs={"pk": self.pk})

    @property
    def finished(self) -> bool:
        """True once the run can change no more."""
        return self.status in FINISHED_STATUSES


class RunShard(models.Model):
    """One sample range of a sharded robustness run, computed by its own task."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="shard_rows")
    index = models.PositiveSmallIntegerField()
    attempt = models.PositiveIntegerField(default=0, help_text="The run attempt this shard belongs to.")
    done = models.BooleanField(default=False)
    progress = models.FloatField(default=0.0)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="unique_shard_index_per_run")]

    def __str__(self) -> str:
        return f"shard {self.index} of run #{self.run_id}"


class RunArtifactKind(models.TextChoices):
    """What a run produced."""

    PLOT = "plot", "Plot"
    FLAGGED_SAMPLES = "flagged_samples", "Flagged samples"
    HARDENED_MODEL = "hardened_model", "Hardened model"
    REPORT = "report", "Report"


class RunArtifact(models.Model):
    """A file a run produced (stored as a blob)."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="artifacts")
    kind = models.CharField(max_length=20, choices=RunArtifactKind.choices)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100, default="application/octet-stream")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="run_artifacts")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["run", "kind", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class EvaluationSchedule(models.Model):
    """A recurring evaluation of a system's latest clean model, and/or one on every new model version."""

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="evaluation_schedules")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=32, choices=RunKind.choices)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    config = models.JSONField(default=dict, blank=True)
    crontab = models.CharField(
        max_length=100,
        blank=True,
        help_text="minute hour day-of-month month day-of-week, e.g. '0 3 * * 1'; empty for no recurring run.",
    )
    run_on_new_model = models.BooleanField(default=False, help_text="Also run when a new model version is clean.")
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["system", "name"]
        constraints = [models.UniqueConstraint(fields=["system", "name"], name="unique_schedule_name_per_system")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """A crontab has five fields; a schedule does something."""
        if self.crontab and len(self.crontab.split()) != 5:
            raise ValidationError(
                {"crontab": "Use five fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * 1'."}
            )
        if not self.crontab and not self.run_on_new_model:
            raise ValidationError({"crontab": "Give a crontab, or tick 'run on new model version', or both."})


class Comparator(models.TextChoices):
    """How a metric is compared with its threshold."""

    AT_LEAST = ">=", "at least"
    AT_MOST = "<=", "at most"


class EvidenceRequirement(models.Model):
    """What must hold for a control to count as verified: a metric of the latest run of a kind.

    It follows the control across threat-model versions by the control's uid, so a new
    draft keeps its evidence. Example: robust accuracy at eps 0.1 at least 0.6, from a
    robustness run at most 30 days old.
    """

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="evidence_requirements")
    control_uid = models.UUIDField()
    control_name = models.CharField(max_length=160, help_text="The control's name when the requirement was set.")
    kind = models.CharField(max_length=32, choices=RunKind.choices)
    metric = models.CharField(max_length=64)
    comparator = models.CharField(max_length=2, choices=Comparator.choices, default=Comparator.AT_LEAST)
    threshold = models.FloatField()
    epsilon = models.FloatField(null=True, blank=True, help_text="For per-epsilon robustness metrics.")
    max_age_days = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["system", "control_name", "kind"]

    def __str__(self) -> str:
        at = f" at eps {self.epsilon:g}" if self.epsilon is not None else ""
        return (
            f"{self.get_kind_display()}: {self.metric}{at} {self.get_comparator_display()} {self.threshold:g}, "
            f"at most {self.max_age_days} days old"
        )
