"""Read-only admin for the evaluations app: writes go through services."""

from __future__ import annotations

from django.contrib import admin

from evaluations.models import Dataset, EvaluationRun, EvaluationSchedule, ModelArtifact


class ReadOnlyAdmin(admin.ModelAdmin):
    """Governed objects are viewed here, never changed."""

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        """No adds."""
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        """No changes."""
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        """No deletes."""
        return False


@admin.register(ModelArtifact)
class ModelArtifactAdmin(ReadOnlyAdmin):
    """Model versions."""

    list_display = ("system", "version", "format", "scan_status", "created_at")
    list_filter = ("format", "scan_status")


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    """Datasets."""

    list_display = ("system", "name", "version", "kind", "status")


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ReadOnlyAdmin):
    """Evaluation runs."""

    list_display = ("id", "system", "kind", "status", "progress", "queued_at")
    list_filter = ("kind", "status")


@admin.register(EvaluationSchedule)
class EvaluationScheduleAdmin(ReadOnlyAdmin):
    """Schedules."""

    list_display = ("system", "name", "kind", "crontab", "run_on_new_model", "enabled")
