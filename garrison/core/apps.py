"""Cross-cutting web plumbing: request ids, errors, health, home page."""

from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Garrison's core app."""

    name = "garrison.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"
