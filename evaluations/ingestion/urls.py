"""Routes of the ingestion pages (under /ingestion/)."""

from __future__ import annotations

from django.urls import path

from evaluations.ingestion import views

app_name = "ingestion"

urlpatterns = [
    path("", views.batch_list, name="batch-list"),
    path("systems/<int:system_id>/", views.system_ingestion, name="system"),
    path("policies/<int:pk>/", views.policy_update, name="policy-update"),
    path("policies/<int:pk>/batches/", views.batch_upload, name="batch-upload"),
    path("batches/<int:pk>/", views.batch_detail, name="batch-detail"),
    path("batches/<int:pk>/recheck/", views.batch_recheck, name="batch-recheck"),
    path("datasets/<int:dataset_id>/provenance/", views.provenance, name="provenance"),
]
