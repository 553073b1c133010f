"""Model and dataset registry, evaluation runs and the engine."""

from __future__ import annotations

from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    """The evaluations app."""

    name = "evaluations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the receivers (control evidence after a run)."""
        from evaluations import receivers  # noqa: F401
