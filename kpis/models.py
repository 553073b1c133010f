"""KPI thresholds, the measurement time series, the latest value per KPI, gate policies and decisions."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from kpis.catalog import AMBER, BY_KEY, GREEN, RED

KPI_CHOICES = [(key, definition.name) for key, definition in BY_KEY.items()]


class KpiThreshold(models.Model):
    """A team's (green, amber) bounds for a KPI, per tier or for one system (the override)."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="kpi_thresholds")
    kpi = models.CharField(max_length=48, choices=KPI_CHOICES)
    tier = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1-4; empty for a system override.")
    system = models.ForeignKey(
        "threatmodel.System", on_delete=models.CASCADE, null=True, blank=True, related_name="kpi_thresholds"
    )
    green = models.FloatField()
    amber = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kpi", "tier"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(tier__isnull=False, system__isnull=True)
                    | models.Q(tier__isnull=True, system__isnull=False)
                ),
                name="threshold_for_a_tier_or_a_system",
            ),
            models.UniqueConstraint(
                fields=["team", "kpi", "tier"],
                condition=models.Q(system__isnull=True),
                name="one_threshold_per_team_kpi_tier",
            ),
            models.UniqueConstraint(
                fields=["kpi", "system"], condition=models.Q(system__isnull=False), name="one_override_per_system_kpi"
            ),
        ]

    def __str__(self) -> str:
        scope = f"tier {self.tier}" if self.tier else f"system {self.system_id}"
        return f"{self.kpi} ({scope}): green {self.green}, amber {self.amber}"


class Measurement(models.Model):
    """One value of one KPI for one system at one time, with the evidence that produced it."""

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="kpi_measurements")
    kpi = models.CharField(max_length=48, choices=KPI_CHOICES)
    value = models.FloatField()
    measured_at = models.DateTimeField(default=timezone.now, db_index=True)
    trigger = models.CharField(max_length=40, help_text="What caused the measurement (run, threat model, ...).")
    run = models.ForeignKey(
        "evaluations.EvaluationRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="kpi_measurements"
    )
    reliable = models.BooleanField(null=True, blank=True, help_text="False when the evidence is unreliable.")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["system", "kpi", "measured_at"]
        indexes = [models.Index(fields=["system", "kpi", "measured_at"], name="measurement_series")]

    def __str__(self) -> str:
        return f"{self.system_id} {self.kpi}={self.value} @ {self.measured_at:%Y-%m-%d}"


class CurrentValue(models.Model):
    """The latest measurement of each KPI per system, so dashboards read one row per cell."""

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="kpi_current")
    kpi = models.CharField(max_length=48, choices=KPI_CHOICES)
    measurement = models.ForeignKey(Measurement, on_delete=models.CASCADE, related_name="+")
    value = models.FloatField()
    reliable = models.BooleanField(null=True, blank=True)
    measured_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["system", "kpi"], name="one_current_value")]

    def __str__(self) -> str:
        return f"{self.system_id} {self.kpi}={self.value}"


class SystemKpiStatus(models.Model):
    """A system's portfolio row, precomputed: each KPI's status, value and bounds, and the worst-first counts.

    Kept current by ``kpis.status.statuses_refresh``, which the services call whenever a
    measurement, a threshold, or the system's tier or team changes; ``manage.py
    kpi_status_rebuild`` recomputes every row. ``cells`` maps each KPI key to
    ``{"s": status, "g": green bound, "a": amber bound, "v": value, "t": short text,
    "l": long text, "capped": true when an unreliable result was capped at amber}``
    (``v``, ``t`` and ``l`` only when measured).
    """

    system = models.OneToOneField(
        "threatmodel.System", on_delete=models.CASCADE, primary_key=True, related_name="kpi_status"
    )
    reds = models.PositiveSmallIntegerField(default=0)
    ambers = models.PositiveSmallIntegerField(default=0)
    unknowns = models.PositiveSmallIntegerField(default=0)
    cells = models.JSONField(default=dict)
    catalog = models.CharField(max_length=16, help_text="Fingerprint of the KPI catalog the row was computed with.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.system_id}: {self.reds} red, {self.ambers} amber, {self.unknowns} unmeasured"


class PortfolioGeneration(models.Model):
    """One row whose token changes in every transaction that changes what a portfolio page shows.

    Cached portfolio tables are keyed by it, so a write anywhere (a web worker, a Celery
    worker, a management command) makes every process's cached pages unreachable at the
    moment it commits, whatever the cache backend. The token is random rather than a
    counter so that a rolled-back write can never bring an old key back.
    """

    token = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"portfolio generation {self.token}"


class GatePolicy(models.Model):
    """What a system's release gate requires."""

    system = models.OneToOneField("threatmodel.System", on_delete=models.CASCADE, related_name="gate_policy")
    required_green = models.JSONField(default=list, help_text="KPIs that must be green to pass.")
    allowed_amber = models.JSONField(default=list, help_text="KPIs that may be amber (a warning).")
    require_fresh = models.BooleanField(default=True, help_text="Freshness KPIs of required kinds must be green.")
    block_unreliable = models.BooleanField(default=True, help_text="Fail on an unreliable robustness result.")
    block_critical_findings = models.BooleanField(default=True)
    block_unaccepted_critical_risk = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    AUDITED_FIELDS = (
        "required_green",
        "allowed_amber",
        "require_fresh",
        "block_unreliable",
        "block_critical_findings",
        "block_unaccepted_critical_risk",
    )

    def __str__(self) -> str:
        return f"Gate policy of system {self.system_id}"


class Decision(models.TextChoices):
    """The gate's answer."""

    PASS = "pass", "Pass"
    WARN = "warn", "Warn"
    FAIL = "fail", "Fail"


class GateDecision(models.Model):
    """A stored answer of the security gate, with every reason."""

    system = models.ForeignKey("threatmodel.System", on_delete=models.CASCADE, related_name="gate_decisions")
    model_artifact = models.ForeignKey(
        "evaluations.ModelArtifact", on_delete=models.SET_NULL, null=True, related_name="gate_decisions"
    )
    model_version = models.PositiveIntegerField()
    decision = models.CharField(max_length=8, choices=Decision.choices)
    reasons = models.JSONField(default=list)
    requested_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.decision} for system {self.system_id} model v{self.model_version}"


STATUS_COLOURS = {GREEN: "#1e7b45", AMBER: "#b7791f", RED: "#b42318"}
