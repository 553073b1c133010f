"""KPI definitions, measurements, dashboards and the CI gate."""

from __future__ import annotations

from django.apps import AppConfig


class KpisConfig(AppConfig):
    """The kpis app; it listens to the lower apps' signals to record measurements."""

    name = "kpis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the signal receivers."""
        from kpis import receivers  # noqa: F401
