"""Routes for the audit-log pages."""

from __future__ import annotations

from django.urls import path

from garrison.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.audit_home, name="log"),
    path("<slug:team>/", views.team_log, name="team-log"),
]
