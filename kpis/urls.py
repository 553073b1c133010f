"""Routes for the KPI dashboards."""

from __future__ import annotations

from django.urls import path

from kpis import views

app_name = "kpis"

urlpatterns = [
    path("", views.portfolio, name="dashboard"),
    path("systems/<slug:team>/<slug:slug>/", views.system_dashboard, name="system"),
    path("systems/<slug:team>/<slug:slug>/thresholds/", views.threshold_set, name="threshold-set"),
    path("systems/<slug:team>/<slug:slug>/gate-policy/", views.gate_policy_set, name="gate-policy-set"),
]
