"""API routes for incidents and reports."""

from __future__ import annotations

from django.urls import path

from incidents.api import views

urlpatterns = [
    path("incidents/", views.IncidentListView.as_view(), name="incident-list"),
    path("incidents/<int:id>/", views.IncidentDetailView.as_view(), name="incident-detail"),
    path("incidents/<int:id>/transition/", views.IncidentTransitionView.as_view(), name="incident-transition"),
    path("incidents/<int:id>/timeline/", views.IncidentTimelineView.as_view(), name="incident-timeline"),
    path("reports/", views.ReportListView.as_view(), name="report-list"),
    path("reports/<int:id>/", views.ReportDetailView.as_view(), name="report-detail"),
    path("reports/<int:id>/download/", views.ReportDownloadView.as_view(), name="report-download"),
]
