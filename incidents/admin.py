"""Admin for incidents: read-only (writes go through the audited pages and API)."""

from __future__ import annotations

from django.contrib import admin

from garrison.core.admin import ReadOnlyAdminMixin
from incidents.models import Incident


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Incidents."""

    list_display = ["__str__", "team", "severity", "status", "detected_at", "closed_at"]
    list_filter = ["severity", "status", "team"]
    search_fields = ["title", "summary"]
