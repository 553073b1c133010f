"""Routes for the systems pages."""

from __future__ import annotations

from django.urls import path

from threatmodel import views, views_versions

app_name = "threatmodel"

urlpatterns = [
    path("", views.home, name="home"),
    path("systems/", views.system_list, name="system-list"),
    path("systems/new/", views.system_create, name="system-create"),
    path("systems/<slug:team>/<slug:slug>/", views.system_detail, name="system-detail"),
    path("systems/<slug:team>/<slug:slug>/edit/", views.system_edit, name="system-edit"),
    path("systems/<int:system_id>/threat-models/new/", views_versions.threat_model_create, name="threat-model-create"),
    path("versions/<int:pk>/", views_versions.version_detail, name="version-detail"),
    path("versions/<int:pk>/diff/", views_versions.version_diff, name="version-diff"),
    path("versions/<int:pk>/new-draft/", views_versions.version_start_draft, name="version-start-draft"),
    path("versions/<int:pk>/submit/", views_versions.version_submit, name="version-submit"),
    path("versions/<int:pk>/review/", views_versions.version_review, name="version-review"),
    path("versions/<int:pk>/boundaries/add/", views_versions.boundary_add, name="boundary-add"),
    path("versions/<int:pk>/components/add/", views_versions.component_add, name="component-add"),
    path("versions/<int:pk>/flows/add/", views_versions.flow_add, name="flow-add"),
    path("versions/<int:pk>/threats/add/", views_versions.threat_add, name="threat-add"),
    path("versions/<int:pk>/controls/add/", views_versions.control_form, name="control-add"),
    path("versions/<int:pk>/controls/<int:control_id>/", views_versions.control_form, name="control-edit"),
    path("threats/<int:pk>/", views_versions.threat_edit, name="threat-edit"),
    path("threats/<int:pk>/decide/", views_versions.threat_decide, name="threat-decide"),
    path("threats/<int:pk>/accept-risk/", views_versions.threat_accept_risk, name="threat-accept-risk"),
    path("elements/<str:kind>/<int:pk>/delete/", views_versions.element_delete, name="element-delete"),
]
