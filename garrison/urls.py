"""Garrison's URL map."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

api_patterns = [
    path("", include("garrison.accounts.api.urls")),
    path("", include("garrison.audit.api.urls")),
    path("", include("threatmodel.api.urls")),
    path("", include("kpis.api.urls")),
    path("", include("incidents.api.urls")),
    path("", include("evaluations.api.urls")),
    path("", include("evaluations.ingestion.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]

urlpatterns = [
    path("", include("garrison.core.urls")),
    path("", include("threatmodel.urls")),
    path("", include("threatmodel.urls_interchange")),
    path("", include("garrison.accounts.urls")),
    path("audit/", include("garrison.audit.urls")),
    path("evaluations/", include("evaluations.urls")),
    path("ingestion/", include("evaluations.ingestion.urls")),
    path("", include("evaluations.serving.urls")),
    path("kpis/", include("kpis.urls")),
    path("incidents/", include("incidents.urls")),
    path("api/", include((api_patterns, "api"))),
    path("admin/", admin.site.urls),
]

handler400 = "garrison.core.views.bad_request"
handler403 = "garrison.core.views.permission_denied"
handler404 = "garrison.core.views.page_not_found"
handler500 = "garrison.core.views.server_error"
