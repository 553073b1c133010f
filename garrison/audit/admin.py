"""Admin for audit events: read-only, as the rows are append-only."""

from __future__ import annotations

from django.contrib import admin

from garrison.audit.models import AuditEvent
from garrison.core.admin import ReadOnlyAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Audit events."""

    list_display = ["created_at", "team", "actor_label", "verb", "object_type", "object_id", "object_repr"]
    list_filter = ["verb", "object_type", "team"]
    search_fields = ["actor_label", "object_repr", "object_id", "request_id"]
    date_hierarchy = "created_at"
