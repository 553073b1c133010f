"""The project's URLs plus the interchange pages (until the lead includes them)."""

from __future__ import annotations

from django.urls import include, path

from garrison.urls import handler400, handler403, handler404, handler500  # noqa: F401
from garrison.urls import urlpatterns as project_patterns

urlpatterns = [path("", include("threatmodel.urls_interchange")), *project_patterns]
