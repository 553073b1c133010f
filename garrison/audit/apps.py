"""The append-only audit trail."""

from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Garrison's audit app."""

    name = "garrison.audit"
    label = "audit"
    default_auto_field = "django.db.models.BigAutoField"
