"""API routes of the ingestion pipeline (under /api/ingestion/)."""

from __future__ import annotations

from django.urls import path

from evaluations.ingestion.api import views

urlpatterns = [
    path("ingestion/batches/", views.BatchListView.as_view(), name="ingestion-batch-list"),
    path("ingestion/batches/<int:id>/", views.BatchDetailView.as_view(), name="ingestion-batch-detail"),
    path("ingestion/batches/<int:id>/decision/", views.BatchDecisionView.as_view(), name="ingestion-batch-decision"),
    path("ingestion/policies/", views.PolicyListView.as_view(), name="ingestion-policy-list"),
    path("ingestion/datasets/<int:id>/provenance/", views.ProvenanceView.as_view(), name="ingestion-provenance"),
]
