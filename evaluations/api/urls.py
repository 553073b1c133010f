"""API routes for the evaluations app."""

from __future__ import annotations

from django.urls import path

from evaluations.api import views

urlpatterns = [
    path("models/", views.ModelListView.as_view(), name="model-list"),
    path("models/<int:id>/", views.ModelDetailView.as_view(), name="model-detail"),
    path("datasets/", views.DatasetListView.as_view(), name="dataset-list"),
    path("datasets/<int:id>/", views.DatasetDetailView.as_view(), name="dataset-detail"),
    path("runs/", views.RunListView.as_view(), name="run-list"),
    path("runs/<int:id>/", views.RunDetailView.as_view(), name="run-detail"),
    path("runs/<int:id>/status/", views.RunStatusView.as_view(), name="run-status"),
    path("runs/<int:id>/cancel/", views.RunCancelView.as_view(), name="run-cancel"),
    path("runs/<int:id>/artifacts/<int:artifact_id>/", views.RunArtifactDownloadView.as_view(), name="run-artifact"),
]
