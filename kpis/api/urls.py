"""API routes for KPIs and the gate."""

from __future__ import annotations

from django.urls import path

from kpis.api import views

urlpatterns = [
    path("gate/", views.GateView.as_view(), name="gate"),
    path("systems/<int:id>/kpis/", views.SystemKpiView.as_view(), name="system-kpis"),
    path(
        "systems/<int:id>/kpis/<str:kpi>/measurements/",
        views.SystemMeasurementView.as_view(),
        name="system-kpi-measurements",
    ),
    path("teams/<slug:team>/kpi-thresholds/", views.ThresholdListView.as_view(), name="kpi-threshold-list"),
]
