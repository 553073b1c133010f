"""Routes for the incident pages."""

from __future__ import annotations

from django.urls import path

from incidents import report_views, reports, views

app_name = "incidents"

urlpatterns = [
    path("", views.incident_list, name="incident-list"),
    path("new/", views.incident_open, name="incident-open"),
    path("<int:pk>/", views.incident_detail, name="incident-detail"),
    path("<int:pk>/edit/", views.incident_edit, name="incident-edit"),
    path("<int:pk>/transition/", views.incident_transition, name="incident-transition"),
    path("<int:pk>/timeline/", views.timeline_add, name="timeline-add"),
    path("<int:pk>/evidence/", views.evidence_add, name="evidence-add"),
    path("<int:pk>/actions/", views.action_add, name="action-add"),
    path("<int:pk>/actions/<int:action_id>/status/", views.action_status, name="action-status"),
    path("<int:pk>/links/", views.incident_link, name="incident-link"),
    path("<int:pk>/threat-model-draft/", views.incident_threat_model_draft, name="threat-model-draft"),
    path("<int:pk>/report.pdf", reports.incident_report_pdf, name="incident-report"),
    path("reports/", report_views.report_list, name="report-list"),
    path("reports/new/", report_views.report_request, name="report-request"),
    path("reports/<int:pk>/", report_views.report_detail, name="report-detail"),
    path("reports/<int:pk>/status/", report_views.report_status, name="report-status"),
    path("reports/<int:pk>/download/", report_views.report_download, name="report-download"),
]
