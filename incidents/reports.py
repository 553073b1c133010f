"""The incident-report PDF."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse

from garrison.pdf import render_pdf
from incidents import selectors
from threatmodel.diff import diff_versions


def incident_report_context(incident) -> dict:  # noqa: ANN001
    """Everything the incident report shows."""
    version = incident.threat_model_version
    diff = diff_versions(version.based_on, version) if version is not None and version.based_on else None
    return {
        "title": f"Incident report {incident}",
        "footer": f"{incident.team.slug} INC-{incident.number} incident report",
        "incident": incident,
        "diff": diff,
        "actions": list(incident.actions.all()),
        "timeline": list(incident.timeline.all()),
        "evidence": list(incident.evidence.all()),
    }


@login_required
def incident_report_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """Render the incident report as a PDF download."""
    incident = selectors.incident_get(user=request.user, id=pk)
    rendered = render_pdf("reports/incident.html", incident_report_context(incident))
    response = HttpResponse(rendered.content, content_type="application/pdf")
    filename = f"{incident.team.slug}-INC-{incident.number}-report.pdf"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Document-SHA256"] = rendered.sha256
    return response
