"""Incidents: what happened to which systems, the timeline, evidence, remediation and lessons."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class IncidentStatus(models.TextChoices):
    """Incident-response stages (NIST SP 800-61 style), in order."""

    OPEN = "open", "Open"
    TRIAGED = "triaged", "Triaged"
    CONTAINED = "contained", "Contained"
    ERADICATED = "eradicated", "Eradicated"
    RECOVERED = "recovered", "Recovered"
    CLOSED = "closed", "Closed"


class Severity(models.TextChoices):
    """How bad it is."""

    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class DetectionSource(models.TextChoices):
    """How the incident was found."""

    EVALUATION_RUN = "evaluation_run", "Evaluation run"
    MONITOR_ALERT = "monitor_alert", "Monitor alert"
    INGESTION_CHECK = "ingestion_check", "Ingestion check"
    MANUAL_REPORT = "manual_report", "Manual report"


class Incident(models.Model):
    """A security incident affecting one or more ML systems of a team."""

    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="incidents")
    number = models.PositiveIntegerField(help_text="Sequential per team.")
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    status = models.CharField(max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    detection_source = models.CharField(
        max_length=20, choices=DetectionSource.choices, default=DetectionSource.MANUAL_REPORT
    )
    detected_at = models.DateTimeField(default=timezone.now)
    systems = models.ManyToManyField("threatmodel.System", related_name="incidents")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    root_cause = models.TextField(blank=True)
    lessons_learned = models.TextField(blank=True)
    threats = models.ManyToManyField(
        "threatmodel.Threat", blank=True, related_name="incidents", help_text="Threats this incident realised."
    )
    controls = models.ManyToManyField(
        "threatmodel.Control", blank=True, related_name="incidents", help_text="Controls that failed or were involved."
    )
    threat_model_version = models.ForeignKey(
        "threatmodel.ThreatModelVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="incidents",
        help_text="The threat-model draft started from this incident.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True)

    AUDITED_FIELDS = (
        "title",
        "summary",
        "severity",
        "status",
        "detection_source",
        "detected_at",
        "owner",
        "root_cause",
        "lessons_learned",
    )

    class Meta:
        ordering = ["-detected_at", "-number"]
        constraints = [models.UniqueConstraint(fields=["team", "number"], name="unique_incident_number")]

    def __str__(self) -> str:
        return f"INC-{self.number}: {self.title}"

    def get_absolute_url(self) -> str:
        """The incident's page."""
        return reverse("incidents:incident-detail", kwargs={"pk": self.pk})

    @property
    def is_closed(self) -> bool:
        """Whether the incident is closed."""
        return self.status == IncidentStatus.CLOSED

    @property
    def time_to_remediate(self):  # noqa: ANN201 - timedelta or None
        """Detection to closure."""
        return self.closed_at - self.detected_at if self.closed_at else None

    @property
    def time_to_remediate_label(self) -> str:
        """Detection to closure in days and hours, for people."""
        elapsed = self.time_to_remediate
        if elapsed is None:
            return ""
        hours = int(elapsed.total_seconds() // 3600)
        days, hours = divmod(hours, 24)
        return f"{days} d {hours} h" if days else f"{hours} h"


class TimelineEntry(models.Model):
    """One step of what happened, optionally mapped to an ATLAS tactic and technique."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.TextField()
    atlas_tactic = models.CharField(max_length=32, blank=True)
    atlas_technique = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["occurred_at", "id"]
        verbose_name_plural = "timeline entries"

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.note[:60]}"


class EvidenceKind(models.TextChoices):
    """What a piece of evidence is."""

    EVALUATION_RUN = "evaluation_run", "Evaluation run"
    FLAGGED_SAMPLES = "flagged_samples", "Flagged-sample list"
    MODEL_VERSION = "model_version", "Model version"
    OTHER = "other", "Other"


class Evidence(models.Model):
    """Something that shows what happened: a run, a flagged-sample list, a model version, a log."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="evidence")
    kind = models.CharField(max_length=20, choices=EvidenceKind.choices, default=EvidenceKind.OTHER)
    reference = models.CharField(max_length=200, blank=True, help_text="An id or link to the object.")
    description = models.TextField()
    metrics = models.JSONField(default=dict, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.description[:60]}"


class ActionStatus(models.TextChoices):
    """Progress of a remediation action."""

    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class RemediationAction(models.Model):
    """A step to remove the cause or restore the system, with an owner and a due date."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="actions")
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=ActionStatus.choices, default=ActionStatus.OPEN)
    verification = models.TextField(blank=True, help_text="How completion was verified.")
    run = models.ForeignKey(
        "evaluations.EvaluationRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="remediation_actions",
        help_text="A retrain or re-evaluation run whose success completes the action.",
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["due_date", "id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_overdue(self) -> bool:
        """Past its due date and not done."""
        return bool(self.due_date and self.status != ActionStatus.DONE and self.due_date < timezone.localdate())


class ReportKind(models.TextChoices):
    """What a stored report covers."""

    SYSTEM_AUDIT = "system_audit", "System audit"
    PORTFOLIO_AUDIT = "portfolio_audit", "Portfolio audit"


class ReportStatus(models.TextChoices):
    """Rendering progress of a stored report."""

    QUEUED = "queued", "Queued"
    RENDERING = "rendering", "Rendering"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Report(models.Model):
    """A PDF rendered in the background and kept (with its hash) until it expires.

    A system audit belongs to the system's team; a portfolio audit covers every system its
    requester could see and is visible to the requester only (``team`` is empty).
    """

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="reports")
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    system = models.ForeignKey(
        "threatmodel.System", on_delete=models.CASCADE, null=True, blank=True, related_name="reports"
    )
    status = models.CharField(max_length=12, choices=ReportStatus.choices, default=ReportStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=120, blank=True)
    file_path = models.CharField(max_length=255, blank=True, help_text="Relative to MEDIA_ROOT.")
    sha256 = models.CharField(max_length=64, blank=True)
    document_id = models.CharField(max_length=16, blank=True)
    size = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        subject = self.system.name if self.system_id else "all visible systems"
        return f"{self.get_kind_display()} of {subject} ({self.created_at:%Y-%m-%d %H:%M})"

    def get_absolute_url(self) -> str:
        """The report's status page."""
        return reverse("incidents:report-detail", kwargs={"pk": self.pk})
