"""Routes for the evaluation pages."""

from __future__ import annotations

from django.urls import path

from evaluations import evidence_views, views

app_name = "evaluations"

urlpatterns = [
    path("", views.run_list, name="run-list"),
    path("controls/<int:control_id>/evidence/", evidence_views.control_evidence, name="control-evidence"),
    path(
        "controls/<int:control_id>/evidence/<int:requirement_id>/delete/",
        evidence_views.control_evidence_delete,
        name="control-evidence-delete",
    ),
    path("runs/new/<int:system_id>/", views.run_create, name="run-create"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/status.json", views.run_status, name="run-status"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/files/<int:artifact_id>/", views.run_artifact, name="run-artifact"),
    path("compare/", views.run_compare, name="run-compare"),
    path("systems/<int:system_id>/", views.system_registry, name="system-registry"),
    path("systems/<int:system_id>/models/upload/", views.model_upload, name="model-upload"),
    path("systems/<int:system_id>/datasets/upload/", views.dataset_upload, name="dataset-upload"),
    path("systems/<int:system_id>/schedules/new/", views.schedule_edit, name="schedule-create"),
    path("schedules/<int:pk>/", views.schedule_edit, name="schedule-edit"),
    path("schedules/<int:pk>/delete/", views.schedule_delete, name="schedule-delete"),
    path("models/<int:pk>/", views.model_detail, name="model-detail"),
]
