"""Pages for audit reports: request, watch the rendering, download."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from incidents import selectors, services
from incidents.models import ReportKind, ReportStatus
from threatmodel.selectors import system_get_by_id


@login_required
@require_POST
def report_request(request: HttpRequest) -> HttpResponse:
    """Queue a system or portfolio audit report."""
    kind = request.POST.get("kind", "")
    if kind not in ReportKind.values:
        raise Http404("Unknown report kind.")
    system = None
    if kind == ReportKind.SYSTEM_AUDIT:
        system_id = request.POST.get("system", "")
        if not system_id.isdigit():
            raise Http404("No such system.")
        system = system_get_by_id(user=request.user, id=int(system_id))
    try:
        report = services.report_request(actor=request.user, kind=kind, system=system)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("incidents:report-list")
    return redirect(report)


@login_required
def report_list(request: HttpRequest) -> HttpResponse:
    """The user's teams' reports."""
    return render(request, "incidents/report_list.html", {"reports": selectors.report_list(user=request.user)[:50]})


@login_required
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A report's rendering progress, then its download link."""
    return render(request, "incidents/report_detail.html", {"report": selectors.report_get(user=request.user, id=pk)})


@login_required
def report_status(request: HttpRequest, pk: int) -> JsonResponse:
    """Progress as JSON, for the page's polling."""
    report = selectors.report_get(user=request.user, id=pk)
    return JsonResponse(
        {
            "status": report.status,
            "progress": report.progress,
            "stage": report.stage,
            "error": report.error,
            "sha256": report.sha256,
        }
    )


@login_required
def report_download(request: HttpRequest, pk: int) -> FileResponse:
    """The rendered PDF."""
    report = selectors.report_get(user=request.user, id=pk)
    if report.status != ReportStatus.READY:
        raise Http404("The report is not ready.")
    path = Path(settings.MEDIA_ROOT) / report.file_path
    if not path.is_file():
        raise Http404("The report file has expired.")
    subject = report.system.slug if report.system_id else "portfolio"
    response = FileResponse(
        path.open("rb"),
        content_type="application/pdf",
        as_attachment=True,
        filename=f"{subject}-{report.kind}-{report.created_at:%Y%m%d}.pdf",
    )
    response["X-Document-SHA256"] = report.sha256
    return response
