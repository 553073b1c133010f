"""Admin for KPIs: read-only (thresholds and policies change through the audited pages and API)."""

from __future__ import annotations

from django.contrib import admin

from garrison.core.admin import ReadOnlyAdminMixin
from kpis.models import GateDecision, GatePolicy, KpiThreshold, Measurement


@admin.register(KpiThreshold)
class KpiThresholdAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Thresholds and overrides."""

    list_display = ["kpi", "team", "tier", "system", "green", "amber", "updated_at"]
    list_filter = ["kpi", "team", "tier"]


@admin.register(Measurement)
class MeasurementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The KPI time series."""

    list_display = ["system", "kpi", "value", "measured_at", "trigger", "reliable"]
    list_filter = ["kpi"]
    date_hierarchy = "measured_at"


@admin.register(GatePolicy)
class GatePolicyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Gate policies."""

    list_display = ["system", "require_fresh", "block_unreliable", "updated_at"]


@admin.register(GateDecision)
class GateDecisionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Stored gate decisions."""

    list_display = ["system", "model_version", "decision", "requested_by", "created_at"]
    list_filter = ["decision"]
