"""Routes for the systems pages."""

from __future__ import annotations

from django.urls import path

from threatmodel import views

app_name = "threatmodel"

urlpatterns = [
    path("", views.home, name="home"),
    path("systems/", views.system_list, name="system-list"),
    path("systems/new/", views.system_create, name="system-create"),
    path("systems/<slug:team>/<slug:slug>/", views.system_detail, name="system-detail"),
    path("systems/<slug:team>/<slug:slug>/edit/", views.system_edit, name="system-edit"),
]
