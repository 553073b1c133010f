"""Secure data ingestion: quarantined batches, checks, approval and dataset-version provenance."""

from __future__ import annotations

from django.apps import AppConfig


class IngestionConfig(AppConfig):
    """Ingestion policies, batches and provenance (a sub-app of evaluations)."""

    name = "evaluations.ingestion"
    label = "ingestion"
    verbose_name = "Data ingestion"
    default_auto_field = "django.db.models.BigAutoField"
