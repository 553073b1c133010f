"""System and portfolio audit reports: what an auditor needs, gathered and rendered to PDF.

Rendering runs in a Celery task (``incidents.tasks.render_report``) with progress, and
the PDF is stored under ``MEDIA_ROOT/reports/`` with its SHA-256 until it expires.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from evaluations.models import EvaluationRun
from garrison.audit.models import AuditEvent
from garrison.charts import trend_chart
from garrison.pdf import RenderedPdf, render_pdf
from incidents.models import Incident
from kpis.catalog import HIGHER
from kpis.models import Measurement
from kpis.selectors import build_system_cells
from threatmodel.dfd import DiagramUnavailable, diagram_svg
from threatmodel.models import System, ThreatModelVersion, ThreatStatus
from threatmodel.selectors import build_version_content

Progress = Callable[[float, str], None]


def _approved(system: System) -> list[ThreatModelVersion]:
    return list(
        ThreatModelVersion.objects.filter(threat_model__system=system, status="approved").select_related(
            "threat_model", "author", "reviewed_by"
        )
    )


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run_result(run: EvaluationRun) -> str:
    """One line with a finished run's headline result, for the evaluation history."""
    m = run.metrics or {}
    if not m:
        return ""
    if run.kind == "poisoning_detection":
        reasons = "; ".join(f"{row['name']}: {row['reason']}" for row in m.get("classes", []) if row.get("flagged"))
        return f"{m.get('flagged', 0)} of {m.get('n_samples', '?')} training samples flagged ({m.get('method')})" + (
            f"; {reasons}" if reasons else ""
        )
    if run.kind == "backdoor_simulation":
        return (
            f"attack success {_number(m.get('attack_success_rate'))} → {_number(m.get('backdoor_success_after'))} "
            f"after dropping {m.get('flagged', 0)} flagged samples"
        )
    if run.kind == "robustness" and m.get("points"):
        worst = m["points"][-1]
        return (
            f"clean accuracy {_number(m.get('clean_accuracy'))}; robust accuracy "
            f"{_number(worst.get('robust_accuracy'))} at epsilon {worst.get('epsilon')} ({m.get('attack', '')})"
        )
    if run.kind == "adversarial_training":
        return (
            f"robust accuracy {_number(m.get('robust_accuracy_before'))} → {_number(m.get('robust_accuracy_after'))}"
            f" (eps {m.get('eps')})"
        )
    if run.kind == "extraction" and m.get("fidelity_at_reference_budget") is not None:
        return f"fidelity {_number(m['fidelity_at_reference_budget'])} at {m.get('reference_budget')} queries"
    if run.kind == "model_scan":
        return f"verdict {m.get('verdict')}, {m.get('findings', 0)} finding(s)"
    return ""


def system_section(system: System, *, charts: bool = True) -> dict[str, Any]:
    """Everything about one system that the audit shows."""
    models = []
    for version in _approved(system):
        content = build_version_content(version)
        try:
            diagram = diagram_svg(boundaries=content.boundaries, components=content.components, flows=content.flows)
        except DiagramUnavailable as error:
            diagram = f"<p>{error}</p>"
        register = sorted(
            (r for r in content.register if r.threat.status == ThreatStatus.ACCEPTED),
            key=lambda r: (-r.residual.score, r.threat.title),
        )
        acceptances = [r.threat for r in content.register if r.threat.risk_accepted_by_id]
        models.append(
            {
                "version": version,
                "content": content,
                "diagram": diagram,
                "register": register,
                "acceptances": acceptances,
                "heat": content.heat_map(),
                "heat_residual": content.heat_map(residual=True),
            }
        )
    cells = build_system_cells(system)
    series: dict[str, list[Measurement]] = {}
    for measurement in Measurement.objects.filter(system=system).order_by("measured_at"):
        series.setdefault(measurement.kpi, []).append(measurement)
    trend_charts = []
    if charts:
        trend_charts = [
            trend_chart(
                [(m.measured_at, m.value) for m in series[c.definition.key]],
                title=c.definition.name,
                unit=c.definition.unit,
                bands=c.bounds,
                higher_is_better=c.definition.direction == HIGHER,
                width=460,
                height=170,
            )
            for c in cells
            if series.get(c.definition.key)
        ]
    runs = list(
        EvaluationRun.objects.filter(system=system).select_related("model_artifact").order_by("-queued_at")[:30]
    )
    incidents = list(Incident.objects.filter(systems=system).select_related("owner").order_by("-detected_at"))
    run_rows = [{"run": run, "result": run_result(run)} for run in runs]
    return {
        "system": system,
        "threat_models": models,
        "cells": cells,
        "trend_charts": trend_charts,
        "runs": runs,
        "run_rows": run_rows,
        "incidents": incidents,
        "today": timezone.localdate(),
    }


def render_system_audit(system: System, *, progress: Progress) -> RenderedPdf:
    """The audit PDF of one system."""
    progress(0.1, "gathering the threat model, KPIs and evaluations")
    section = system_section(system)
    progress(0.5, "reading the audit log")
    events = list(AuditEvent.objects.filter(team=system.team).order_by("-created_at")[:25])
    progress(0.6, "rendering the PDF")
    rendered = render_pdf(
        "reports/system_audit.html",
        {
            "title": f"Audit report: {system.name}",
            "footer": f"{system.team.slug}/{system.slug} audit report",
            "section": section,
            "events": events,
        },
    )
    progress(1.0, "done")
    return rendered


def render_portfolio_audit(systems: list[System], *, title: str, progress: Progress) -> RenderedPdf:
    """One summary page per system across a portfolio."""
    sections = []
    for index, system in enumerate(systems):
        sections.append(system_section(system, charts=False))
        progress(0.8 * (index + 1) / max(1, len(systems)), f"gathered {index + 1} of {len(systems)} systems")
    progress(0.85, "rendering the PDF")
    rendered = render_pdf("reports/portfolio_audit.html", {"title": title, "footer": title, "sections": sections})
    progress(1.0, "done")
    return rendered


def store(rendered: RenderedPdf) -> tuple[str, int]:
    """Write the PDF under MEDIA_ROOT/reports, named by its hash; returns (relative path, size)."""
    relative = Path("reports") / f"{rendered.sha256}.pdf"
    path = Path(settings.MEDIA_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(rendered.content)
        temporary.replace(path)
    return str(relative), len(rendered.content)
