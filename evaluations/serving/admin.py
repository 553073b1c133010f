"""Admin for deployments (read-mostly: writes go through the services and pages)."""

from __future__ import annotations

from django.contrib import admin

from evaluations.serving.models import ConsumerKey, Deployment, MonitorAlert


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    """Deployments."""

    list_display = ["name", "system", "model_artifact", "output_policy", "monitor_action", "status"]
    readonly_fields = [f.name for f in Deployment._meta.fields]


@admin.register(ConsumerKey)
class ConsumerKeyAdmin(admin.ModelAdmin):
    """Consumer keys (hashes only)."""

    list_display = ["prefix", "owner", "deployment", "revoked_at", "enforced_action"]
    readonly_fields = [f.name for f in ConsumerKey._meta.fields]


@admin.register(MonitorAlert)
class MonitorAlertAdmin(admin.ModelAdmin):
    """Monitor alerts."""

    list_display = ["created_at", "deployment", "key", "queries", "action"]
    readonly_fields = [f.name for f in MonitorAlert._meta.fields]
