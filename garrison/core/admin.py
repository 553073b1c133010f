"""Admin helpers: governed objects are read-only in the admin (writes go through services)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from garrison.core.models import WorkerHeartbeat


class ReadOnlyAdminMixin:
    """No add, change or delete: the audited services and pages are the only write path."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Refuse adds."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Refuse changes."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Refuse deletes."""
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Which workers reported when."""

    list_display = ["hostname", "last_seen", "beats"]
