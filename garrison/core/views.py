"""Health endpoint and error pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from garrison.core.api.errors import error_response
from garrison.core.health import run_checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, broker and worker status; 503 when the database or broker is down."""
    checks = run_checks()
    healthy = checks["database"].ok and checks["broker"].ok
    body = {"status": "ok" if healthy else "unavailable", "checks": {k: v.as_dict() for k, v in checks.items()}}
    return JsonResponse(body, status=200 if healthy else 503)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def _error(request: HttpRequest, status: int, code: str, message: str, template: str) -> HttpResponse:
    if _wants_json(request):
        return error_response(status_code=status, code=code, message=message)
    return render(request, template, {"message": message}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400 page."""
    return _error(request, 400, "bad_request", "The request could not be understood.", "400.html")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403 page, with the reason when there is one."""
    message = str(exception) if exception and str(exception) else "You do not have permission to do this."
    return _error(request, 403, "permission_denied", message, "403.html")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 page; the same for missing objects and objects of other teams."""
    return _error(
        request, 404, "not_found", "Not found: the page does not exist or you have no access to it.", "404.html"
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """500 page; quotes the request id so an operator can find the log lines."""
    request_id = getattr(request, "request_id", "")
    message = f"Something went wrong on our side. Quote request id {request_id} when reporting it."
    if _wants_json(request):
        return error_response(status_code=500, code="server_error", message=message)
    # No request context: the failure may be in the database the context processors read.
    return HttpResponse(loader.render_to_string("500.html", {"message": message}), status=500)
