"""KPI definitions, measurements, dashboards and the CI gate."""

from __future__ import annotations

from django.apps import AppConfig


class KpisConfig(AppConfig):
    """The kpis app."""

    name = "kpis"
    default_auto_field = "django.db.models.BigAutoField"
