"""Threat models: versions of a system's components, flows, trust boundaries, threats and controls.

Every element carries a ``uid`` that stays the same when a new draft copies a version,
so two versions can be diffed element by element.
"""

from __future__ import annotations

import uuid
from datetime import date

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from threatmodel.catalog import COMPONENT_TYPES, OWASP_ML_TOP10, STRIDE_CATEGORIES
from threatmodel.risk import risk_level

SCALE = [MinValueValidator(1), MaxValueValidator(5)]


class VersionStatus(models.TextChoices):
    """Where a threat-model version is in review."""

    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    SUPERSEDED = "superseded", "Superseded"


class ThreatStatus(models.TextChoices):
    """What the team decided about a threat."""

    SUGGESTED = "suggested", "Suggested"
    ACCEPTED = "accepted", "Accepted"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class ControlType(models.TextChoices):
    """How a control acts."""

    PREVENTIVE = "preventive", "Preventive"
    DETECTIVE = "detective", "Detective"
    CORRECTIVE = "corrective", "Corrective"


class ControlStatus(models.TextChoices):
    """How far a control has got."""

    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in_progress", "In progress"
    IMPLEMENTED = "implemented", "Implemented"
    VERIFIED = "verified", "Verified"


class EvidenceState(models.TextChoices):
    """What the evaluation evidence linked to a control says (set by the evaluations app)."""

    NONE = "none", "No evidence linked"
    PASSING = "passing", "Evidence passing"
    FAILING = "failing", "Evidence failing"
    STALE = "stale", "Evidence stale"


class ThreatModel(models.Model):
    """A threat model of one system; its content lives in versions."""

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="threat_models")
    title = models.CharField(max_length=160)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["system__name", "title"]
        constraints = [models.UniqueConstraint(fields=["system", "title"], name="unique_threat_model_title")]

    def __str__(self) -> str:
        return f"{self.system.name}: {self.title}"


class ThreatModelVersion(models.Model):
    """One version of a threat model: draft, in review, approved (immutable) or superseded."""

    threat_model = models.ForeignKey(ThreatModel, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    based_on = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    summary = models.TextField(blank=True, help_text="What changed in this version.")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["threat_model", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["threat_model", "number"], name="unique_version_number"),
            models.UniqueConstraint(
                fields=["threat_model"],
                condition=models.Q(status__in=["draft", "in_review"]),
                name="one_open_version_per_threat_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.threat_model} v{self.number} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        """The version's editor (or read-only view)."""
        return reverse("threatmodel:version-detail", kwargs={"pk": self.pk})

    @property
    def is_editable(self) -> bool:
        """Only drafts can be changed."""
        return self.status == VersionStatus.DRAFT


class VersionElement(models.Model):
    """Common fields of everything that belongs to a version."""

    version = models.ForeignKey(ThreatModelVersion, on_delete=models.CASCADE, related_name="%(class)ss")
    uid = models.UUIDField(default=uuid.uuid4, help_text="Stable across versions, for diffs.")

    class Meta:
        abstract = True
        constraints = [models.UniqueConstraint(fields=["version", "uid"], name="unique_%(class)s_uid")]


class TrustBoundary(VersionElement):
    """A boundary between zones of different trust (e.g. the internet and the serving VPC)."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    DIFF_FIELDS = ("name", "description")

    class Meta(VersionElement.Meta):
        ordering = ["name"]
        verbose_name_plural = "trust boundaries"

    def __str__(self) -> str:
        return self.name


class Component(VersionElement):
    """A typed element of the ML system: data source, pipeline, model, serving API, ..."""

    name = models.CharField(max_length=120)
    component_type = models.CharField(max_length=32, choices=list(COMPONENT_TYPES.items()))
    description = models.TextField(blank=True)
    boundary = models.ForeignKey(
        TrustBoundary, on_delete=models.SET_NULL, null=True, blank=True, related_name="components"
    )

    DIFF_FIELDS = ("name", "component_type", "description", "boundary")

    class Meta(VersionElement.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DataFlow(VersionElement):
    """Data moving from one component to another."""

    source = models.ForeignKey(Component, on_delete=models.CASCADE, related_name="outgoing_flows")
    target = models.ForeignKey(Component, on_delete=models.CASCADE, related_name="incoming_flows")
    data = models.CharField(max_length=160, help_text="What moves, e.g. 'labelled SMS messages'.")
    protocol = models.CharField(max_length=60, blank=True, help_text="e.g. HTTPS, S3, Kafka.")
    authenticated = models.BooleanField(default=True)

    DIFF_FIELDS = ("source", "target", "data", "protocol", "authenticated")

    class Meta(VersionElement.Meta):
        ordering = ["source__name", "target__name"]

    def __str__(self) -> str:
        return f"{self.source} → {self.target}: {self.data}"

    @property
    def crosses_trust_boundary(self) -> bool:
        """Whether the two ends sit in different trust zones."""
        return self.source.boundary_id != self.target.boundary_id


class Threat(VersionElement):
    """A threat to one component or flow, with its inherent risk and the team's decision."""

    catalog_key = models.CharField(max_length=80, blank=True, help_text="The catalog template it came from.")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    stride = models.CharField(max_length=32, choices=list(STRIDE_CATEGORIES.items()))
    component = models.ForeignKey(Component, on_delete=models.CASCADE, null=True, blank=True, related_name="threats")
    flow = models.ForeignKey(DataFlow, on_delete=models.CASCADE, null=True, blank=True, related_name="threats")
    atlas_techniques = models.JSONField(default=list, blank=True)
    owasp_ml = models.JSONField(default=list, blank=True)
    suggested_mitigations = models.JSONField(default=list, blank=True)
    evaluation_kind = models.CharField(max_length=32, blank=True)
    likelihood = models.PositiveSmallIntegerField(validators=SCALE, default=3)
    impact = models.PositiveSmallIntegerField(validators=SCALE, default=3)
    status = models.CharField(max_length=16, choices=ThreatStatus.choices, default=ThreatStatus.SUGGESTED)
    justification = models.TextField(blank=True, help_text="Why the threat does not apply.")
    risk_accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    risk_acceptance_reason = models.TextField(blank=True)
    risk_acceptance_expires = models.DateField(null=True, blank=True)

    DIFF_FIELDS = (
        "catalog_key",
        "title",
        "description",
        "stride",
        "component",
        "flow",
        "atlas_techniques",
        "owasp_ml",
        "likelihood",
        "impact",
        "status",
        "justification",
        "risk_acceptance_reason",
        "risk_acceptance_expires",
    )

    class Meta(VersionElement.Meta):
        ordering = ["stride", "title"]
        constraints = [
            *VersionElement.Meta.constraints,
            models.CheckConstraint(
                condition=models.Q(likelihood__gte=1, likelihood__lte=5, impact__gte=1, impact__lte=5),
                name="threat_scores_between_1_and_5",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def inherent_risk(self) -> int:
        """Likelihood x impact, 1-25."""
        return self.likelihood * self.impact

    @property
    def inherent_level(self) -> str:
        """low / medium / high / critical."""
        return risk_level(self.inherent_risk)

    @property
    def element(self) -> Component | DataFlow | None:
        """The component or flow the threat is about."""
        return self.component or self.flow

    @property
    def risk_acceptance_active(self) -> bool:
        """Whether an unexpired risk acceptance covers this threat."""
        return bool(self.risk_accepted_by_id) and (
            self.risk_acceptance_expires is None or self.risk_acceptance_expires >= date.today()
        )


class Control(VersionElement):
    """A safeguard that mitigates threats, with an owner and (optionally) evaluation evidence."""

    name = models.CharField(max_length=160)
    description = models.TextField(blank=True)
    control_type = models.CharField(max_length=16, choices=ControlType.choices, default=ControlType.PREVENTIVE)
    atlas_mitigations = models.JSONField(default=list, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=ControlStatus.choices, default=ControlStatus.PLANNED)
    threats = models.ManyToManyField(Threat, related_name="controls", blank=True)
    evidence_state = models.CharField(max_length=16, choices=EvidenceState.choices, default=EvidenceState.NONE)
    evidence_detail = models.CharField(max_length=255, blank=True)
    evidence_checked_at = models.DateTimeField(null=True, blank=True)

    DIFF_FIELDS = ("name", "description", "control_type", "atlas_mitigations", "owner", "due_date", "status")

    class Meta(VersionElement.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_effective(self) -> bool:
        """Implemented or verified, and no linked evidence says otherwise."""
        return self.status in (ControlStatus.IMPLEMENTED, ControlStatus.VERIFIED) and self.evidence_state not in (
            EvidenceState.FAILING,
            EvidenceState.STALE,
        )

    @property
    def is_verified(self) -> bool:
        """Verified, and its evidence (if any) passing."""
        return self.status == ControlStatus.VERIFIED and self.evidence_state in (
            EvidenceState.NONE,
            EvidenceState.PASSING,
        )

    @property
    def is_overdue(self) -> bool:
        """Past its due date and not yet implemented."""
        return (
            self.due_date is not None
            and self.due_date < date.today()
            and self.status in (ControlStatus.PLANNED, ControlStatus.IN_PROGRESS)
        )


OWASP_CHOICES = list(OWASP_ML_TOP10.items())
