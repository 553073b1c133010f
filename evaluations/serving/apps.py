"""The guarded serving API: deployments of registered model versions behind keys, limits and a monitor."""

from __future__ import annotations

from django.apps import AppConfig


class ServingConfig(AppConfig):
    """Deployments, consumer keys, monitoring alerts and query telemetry (a sub-app of evaluations)."""

    name = "evaluations.serving"
    label = "serving"
    verbose_name = "Serving guard"
    default_auto_field = "django.db.models.BigAutoField"
