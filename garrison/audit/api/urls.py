"""API routes for the audit log."""

from __future__ import annotations

from django.urls import path

from garrison.audit.api import views

urlpatterns = [
    path("teams/<slug:team>/audit-events/", views.AuditEventListView.as_view(), name="audit-event-list"),
]
