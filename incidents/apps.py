"""Incidents, remediation and reports."""

from __future__ import annotations

from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    """The incidents app."""

    name = "incidents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the receivers (remediation runs, poisoning incidents)."""
        from incidents import receivers  # noqa: F401
