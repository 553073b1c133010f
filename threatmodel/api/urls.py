"""API routes for the threatmodel app."""

from __future__ import annotations

from django.urls import path

from threatmodel.api import element_views as elements
from threatmodel.api import interchange_views as interchange
from threatmodel.api import version_views as versions
from threatmodel.api import views

urlpatterns = [
    path("systems/", views.SystemListView.as_view(), name="system-list"),
    path("systems/<int:id>/", views.SystemDetailView.as_view(), name="system-detail"),
    path("systems/<int:id>/threat-models/", versions.SystemThreatModelListView.as_view(), name="threat-model-list"),
    path(
        "systems/<int:id>/threat-models/import/",
        interchange.SystemThreatModelImportView.as_view(),
        name="threat-model-import-new",
    ),
    path("threat-models/<int:id>/", versions.ThreatModelDetailView.as_view(), name="threat-model-detail"),
    path("threat-models/<int:id>/drafts/", versions.ThreatModelDraftView.as_view(), name="threat-model-drafts"),
    path("threat-models/<int:id>/import/", interchange.ThreatModelImportView.as_view(), name="threat-model-import"),
    path("versions/<int:id>/", versions.VersionDetailView.as_view(), name="version-detail"),
    path("versions/<int:id>/submit/", versions.VersionSubmitView.as_view(), name="version-submit"),
    path("versions/<int:id>/approve/", versions.VersionApproveView.as_view(), name="version-approve"),
    path("versions/<int:id>/send-back/", versions.VersionSendBackView.as_view(), name="version-send-back"),
    path("versions/<int:id>/diff/", versions.VersionDiffView.as_view(), name="version-diff"),
    path("versions/<int:id>/otm/", interchange.VersionOtmView.as_view(), name="version-otm"),
    path("versions/<int:id>/boundaries/", elements.BoundaryListView.as_view(), name="boundary-list"),
    path("versions/<int:id>/components/", elements.ComponentListView.as_view(), name="component-list"),
    path("versions/<int:id>/flows/", elements.FlowListView.as_view(), name="flow-list"),
    path("versions/<int:id>/threats/", elements.ThreatListView.as_view(), name="threat-list"),
    path("versions/<int:id>/controls/", elements.ControlListView.as_view(), name="control-list"),
    path("boundaries/<int:id>/", elements.BoundaryDetailView.as_view(), name="boundary-detail"),
    path("components/<int:id>/", elements.ComponentDetailView.as_view(), name="component-detail"),
    path("flows/<int:id>/", elements.FlowDetailView.as_view(), name="flow-detail"),
    path("threats/<int:id>/", elements.ThreatDetailView.as_view(), name="threat-detail"),
    path("threats/<int:id>/decide/", elements.ThreatDecideView.as_view(), name="threat-decide"),
    path("threats/<int:id>/accept-risk/", elements.ThreatAcceptRiskView.as_view(), name="threat-accept-risk"),
    path("controls/<int:id>/", elements.ControlDetailView.as_view(), name="control-detail"),
    path("atlas/", versions.AtlasEntryListView.as_view(), name="atlas-list"),
]
