"""Routes for the interchange pages (OTM download, file import); included by the project's URLs."""

from __future__ import annotations

from django.urls import path

from threatmodel import views_interchange

app_name = "interchange"

urlpatterns = [
    path("versions/<int:pk>/otm/", views_interchange.version_export_otm, name="version-otm"),
    path("threat-models/<int:threat_model_id>/import/", views_interchange.import_form, name="threat-model-import"),
    path("systems/<int:system_id>/threat-models/import/", views_interchange.import_form, name="system-import"),
]
