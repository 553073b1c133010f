"""Admin for ML systems: read-only (writes go through the audited pages and API)."""

from __future__ import annotations

from django.contrib import admin

from garrison.core.admin import ReadOnlyAdminMixin
from threatmodel.models import System


@admin.register(System)
class SystemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Systems."""

    list_display = ["name", "team", "lifecycle_stage", "criticality_tier", "data_classification"]
    list_filter = ["lifecycle_stage", "criticality_tier", "team"]
    search_fields = ["name", "slug", "description"]
