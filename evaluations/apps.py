"""Model and dataset registry, evaluation runs and the engine."""

from __future__ import annotations

from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    """The evaluations app."""

    name = "evaluations"
    default_auto_field = "django.db.models.BigAutoField"
