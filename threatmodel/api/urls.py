"""API routes for the threatmodel app."""

from __future__ import annotations

from django.urls import path

from threatmodel.api import views

urlpatterns = [
    path("systems/", views.SystemListView.as_view(), name="system-list"),
    path("systems/<int:id>/", views.SystemDetailView.as_view(), name="system-detail"),
]
