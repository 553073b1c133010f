"""MITRE ATLAS reference data: IDs are keys, names are labels versioned per release."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AtlasRelease(models.Model):
    """One ATLAS data release loaded into Garrison."""

    version = models.CharField(max_length=32, unique=True)
    loaded_at = models.DateTimeField(default=timezone.now)
    is_current = models.BooleanField(default=False)
    source = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-loaded_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_current"], condition=models.Q(is_current=True), name="one_current_atlas_release"
            )
        ]

    def __str__(self) -> str:
        return f"ATLAS {self.version}"


class AtlasKind(models.TextChoices):
    """What an ATLAS ID names."""

    TACTIC = "tactic", "Tactic"
    TECHNIQUE = "technique", "Technique"
    MITIGATION = "mitigation", "Mitigation"


class AtlasEntry(models.Model):
    """An ATLAS tactic, technique or mitigation, keyed by its ID (e.g. AML.T0043)."""

    atlas_id = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=16, choices=AtlasKind.choices)
    name = models.CharField(max_length=255, help_text="The name in the current release.")
    parent_id = models.CharField(max_length=32, blank=True, help_text="The parent technique of a sub-technique.")
    related_ids = models.JSONField(
        default=list, blank=True, help_text="Tactics of a technique, or techniques a mitigation addresses."
    )
    description = models.TextField(blank=True)
    first_release = models.ForeignKey(AtlasRelease, on_delete=models.PROTECT, related_name="+")
    last_release = models.ForeignKey(AtlasRelease, on_delete=models.PROTECT, related_name="+")
    withdrawn = models.BooleanField(default=False, help_text="Absent from the current release.")

    class Meta:
        ordering = ["atlas_id"]
        verbose_name_plural = "ATLAS entries"

    def __str__(self) -> str:
        return f"{self.atlas_id} {self.name}"


class AtlasName(models.Model):
    """The name an ATLAS ID carried from a release on (ATLAS renamed 'ML' to 'AI' in 2025)."""

    entry = models.ForeignKey(AtlasEntry, on_delete=models.CASCADE, related_name="names")
    release = models.ForeignKey(AtlasRelease, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["entry", "release__loaded_at"]
        constraints = [models.UniqueConstraint(fields=["entry", "release"], name="one_name_per_release")]

    def __str__(self) -> str:
        return f"{self.entry.atlas_id} = {self.name} (from {self.release.version})"
