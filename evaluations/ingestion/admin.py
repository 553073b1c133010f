"""Read-only admin views of ingestion rows (writes go through the services)."""

from __future__ import annotations

from django.contrib import admin

from evaluations.ingestion.models import DatasetVersionRecord, IngestionBatch, IngestionPolicy


@admin.register(IngestionPolicy)
class IngestionPolicyAdmin(admin.ModelAdmin):
    """Governed datasets."""

    list_display = ("dataset_name", "system", "format", "mode")
    readonly_fields = [f.name for f in IngestionPolicy._meta.fields]


@admin.register(IngestionBatch)
class IngestionBatchAdmin(admin.ModelAdmin):
    """Batches (kept, never deleted here)."""

    list_display = ("id", "policy", "status", "n_records", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in IngestionBatch._meta.fields]

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        """Batches are kept for forensics."""
        return False


@admin.register(DatasetVersionRecord)
class DatasetVersionRecordAdmin(admin.ModelAdmin):
    """Provenance records."""

    list_display = ("dataset", "policy", "source", "created_at")
    readonly_fields = [f.name for f in DatasetVersionRecord._meta.fields]
