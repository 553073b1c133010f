"""Governed datasets (ingestion policies), quarantined batches and the provenance of accepted versions."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone


class DataFormat(models.TextChoices):
    """How a governed dataset's records are stored."""

    TSV = "tsv", "Text (label<TAB>text)"
    CSV = "csv", "Tabular CSV"
    NPZ = "npz", "Tensors (npz x, y)"


class PolicyMode(models.TextChoices):
    """What happens to a batch that passes every check."""

    AUTO_ACCEPT = "auto_accept", "Auto-accept batches that pass every check"
    REQUIRE_APPROVAL = "require_approval", "An approver decides every batch"


class IngestionPolicy(models.Model):
    """A system's dataset that takes new data only through quarantine, with its schema and decision policy."""

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="ingestion_policies")
    dataset_name = models.CharField(max_length=120)
    format = models.CharField(max_length=8, choices=DataFormat.choices)
    schema = models.JSONField(help_text="Fields, types and known labels every batch must match.")
    mode = models.CharField(max_length=20, choices=PolicyMode.choices, default=PolicyMode.REQUIRE_APPROVAL)
    max_batch_records = models.PositiveIntegerField(
        default=10_000, validators=[MinValueValidator(1), MaxValueValidator(1_000_000)]
    )
    open_incident_on_poison = models.BooleanField(
        default=True, help_text="Open an incident when the poison scan flags records of a batch."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["system", "dataset_name"]
        verbose_name_plural = "ingestion policies"
        constraints = [
            models.UniqueConstraint(fields=["system", "dataset_name"], name="unique_ingestion_policy_per_dataset"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_name} ({self.system.name})"

    def get_absolute_url(self) -> str:
        """The system's ingestion page."""
        return reverse("ingestion:system", kwargs={"system_id": self.system_id})


class BatchStatus(models.TextChoices):
    """Lifecycle of a pushed batch; changes go through ``ingestion.services``."""

    INVALID = "invalid", "Refused at push (kept for forensics)"
    QUEUED = "queued", "Queued for checks"
    CHECKING = "checking", "Checking"
    HELD = "held", "Held for review"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Check job failed"


class Decision(models.TextChoices):
    """What was decided about a held batch."""

    ACCEPT = "accept", "Accept"
    ACCEPT_WITHOUT_FLAGGED = "accept_without_flagged", "Accept without the flagged records"
    REJECT = "reject", "Reject"
    AUTO_ACCEPT = "auto_accept", "Auto-accepted (every check passed)"


class IngestionBatch(models.Model):
    """A batch of new records pushed for a governed dataset: quarantined until checked and decided."""

    policy = models.ForeignKey(IngestionPolicy, on_delete=models.CASCADE, related_name="batches")
    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="ingestion_batches")
    base = models.ForeignKey(
        "evaluations.Dataset",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The accepted version the batch is checked against.",
    )
    source = models.CharField(max_length=20, default="api_push")
    input_format = models.CharField(max_length=8, help_text="json, tsv, csv or npz.")
    original_filename = models.CharField(max_length=255, blank=True)
    raw_blob = models.ForeignKey(
        "evaluations.Blob",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The bytes as pushed (kept for forensics).",
    )
    records_blob = models.ForeignKey(
        "evaluations.Blob",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The records in the dataset's canonical format (valid batches only).",
    )
    size_bytes = models.PositiveBigIntegerField(default=0)
    n_records = models.PositiveIntegerField(default=0)
    label_counts = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=BatchStatus.choices, default=BatchStatus.QUEUED)
    status_message = models.TextField(blank=True)
    error_code = models.CharField(max_length=20, blank=True)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=120, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    checks_passed = models.BooleanField(null=True, blank=True)
    pushed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pushed_by_label = models.CharField(max_length=150, blank=True)
    token_prefix = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=24, choices=Decision.choices, blank=True)
    decision_note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_label = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    produced = models.ForeignKey(
        "evaluations.Dataset",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The dataset version the accepted batch created.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ingestion batches"
        indexes = [models.Index(fields=["system", "status"], name="ingestion_batch_system_status")]

    def __str__(self) -> str:
        return f"batch #{self.pk} for {self.policy.dataset_name}"

    def get_absolute_url(self) -> str:
        """The batch's review page."""
        return reverse("ingestion:batch-detail", kwargs={"pk": self.pk})

    @property
    def flagged(self) -> dict[str, list[str]]:
        """Flagged record position (as a string) -> the checks that flagged it."""
        return dict((self.report or {}).get("flagged", {}))

    @property
    def decidable(self) -> bool:
        """Whether an approver can decide the batch now."""
        return self.status == BatchStatus.HELD


class VersionSource(models.TextChoices):
    """Where a governed dataset version came from."""

    UPLOAD = "upload", "Upload"
    API_PUSH = "api_push", "API push"
    IMPORT = "import", "Import from a path"
    BATCH = "batch", "Accepted batch merged into the previous version"


class DatasetVersionRecord(models.Model):
    """Provenance of one accepted version of a governed dataset; the existence of this row means 'accepted'."""

    dataset = models.OneToOneField("evaluations.Dataset", on_delete=models.CASCADE, related_name="provenance")
    policy = models.ForeignKey(IngestionPolicy, on_delete=models.CASCADE, related_name="versions")
    parents = models.ManyToManyField("evaluations.Dataset", blank=True, related_name="+")
    batch = models.OneToOneField(
        IngestionBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="version_record"
    )
    source = models.CharField(max_length=12, choices=VersionSource.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    token_prefix = models.CharField(max_length=16, blank=True)
    files = models.JSONField(default=list, help_text="[{role, name, sha256, size}] of every file involved.")
    label_counts = models.JSONField(default=dict)
    n_records = models.PositiveIntegerField(default=0)
    transformation = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["policy", "-created_at"]

    def __str__(self) -> str:
        return f"provenance of {self.dataset}"
