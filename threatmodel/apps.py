"""ML systems and their STRIDE-for-ML threat models."""

from __future__ import annotations

from django.apps import AppConfig


class ThreatModelConfig(AppConfig):
    """The threatmodel app."""

    name = "threatmodel"
    default_auto_field = "django.db.models.BigAutoField"
