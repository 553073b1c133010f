"""The incident-report PDF."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from garrison.pdf import render_pdf
from incidents import selectors
from incidents.models import Evidence
from threatmodel.diff import diff_versions

RUN_REFERENCE = re.compile(r"^evaluation run (\d+)\b")


def _readable(value: Any) -> Any:
    """Floats to four significant digits; everything else as it is."""
    return f"{value:.4g}" if isinstance(value, float) else value


def duration_label(elapsed: Any) -> str:
    """A duration for people: days and hours, or minutes under an hour."""
    if elapsed is None:
        return ""
    minutes = int(elapsed.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, _ = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if days else f"{hours} h"


def evidence_rows(evidence: list[Evidence]) -> list[dict[str, Any]]:
    """Evidence for a page or report: scalar metrics, quoted messages apart, and the run it points at (if any)."""
    rows = []
    for item in evidence:
        metrics = item.metrics or {}
        match = RUN_REFERENCE.match(item.reference or "")
        rows.append(
            {
                "evidence": item,
                "metrics": [(k, _readable(v)) for k, v in metrics.items() if not isinstance(v, (list, dict))],
                "messages": [m for m in metrics.get("messages", []) if isinstance(m, str)],
                "run_id": int(match.group(1)) if match else None,
                "run_url": reverse("evaluations:run-detail", kwargs={"pk": int(match.group(1))}) if match else "",
            }
        )
    return rows


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
        "evidence": evidence_rows(list(incident.evidence.all())),
        "time_to_remediate": duration_label(incident.time_to_remediate),
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
