"""ML systems: the inventory every threat model, evaluation and KPI hangs from."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

TAG_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,39}$"


class LifecycleStage(models.TextChoices):
    """Where the system is in its life."""

    RESEARCH = "research", "Research"
    DEVELOPMENT = "development", "Development"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    RETIRED = "retired", "Retired"


class CriticalityTier(models.IntegerChoices):
    """How much harm a compromise does; tier 1 is the most critical."""

    TIER_1 = 1, "Tier 1 (critical)"
    TIER_2 = 2, "Tier 2 (high)"
    TIER_3 = 3, "Tier 3 (moderate)"
    TIER_4 = 4, "Tier 4 (low)"


class DataClassification(models.TextChoices):
    """The most sensitive data the system touches."""

    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted (regulated or personal data)"


def validate_tags(value: object) -> None:
    """Tags are a list of short lowercase words."""
    if not isinstance(value, list):
        raise ValidationError("Tags must be a list of strings.")
    pattern = RegexValidator(TAG_PATTERN)
    for tag in value:
        if not isinstance(tag, str):
            raise ValidationError(f"Tag {tag!r} is not a string.")
        try:
            pattern(tag)
        except ValidationError as exc:
            raise ValidationError(
                f"Tag '{tag}' is invalid: use up to 40 lowercase letters, digits, '-', '_' or '.'."
            ) from exc
    if len(value) > 20:
        raise ValidationError("At most 20 tags per system.")


class System(models.Model):
    """An ML system a team governs: its models, data, pipelines and serving endpoints."""

    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="systems")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60)
    description = models.TextField(blank=True)
    lifecycle_stage = models.CharField(
        max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.DEVELOPMENT
    )
    criticality_tier = models.PositiveSmallIntegerField(
        choices=CriticalityTier.choices,
        default=CriticalityTier.TIER_3,
        validators=[MinValueValidator(1), MaxValueValidator(4)],
    )
    data_classification = models.CharField(
        max_length=16, choices=DataClassification.choices, default=DataClassification.INTERNAL
    )
    deployment_endpoint = models.URLField(blank=True, help_text="Where the model is served, if it is.")
    tags = models.JSONField(default=list, blank=True, validators=[validate_tags])
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    AUDITED_FIELDS = (
        "name",
        "slug",
        "description",
        "lifecycle_stage",
        "criticality_tier",
        "data_classification",
        "deployment_endpoint",
        "tags",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "slug"], name="unique_system_slug_per_team"),
            models.CheckConstraint(
                condition=models.Q(criticality_tier__gte=1, criticality_tier__lte=4),
                name="system_tier_between_1_and_4",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        """The system's home page."""
        return reverse("threatmodel:system-detail", kwargs={"team": self.team.slug, "slug": self.slug})
