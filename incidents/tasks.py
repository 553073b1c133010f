"""Background rendering of audit reports."""

from __future__ import annotations

import time

from celery import shared_task
from django.utils import timezone

from garrison.accounts.selectors import team_ids_for
from incidents.models import Report, ReportKind, ReportStatus
from threatmodel.models import System


@shared_task(
    name="incidents.tasks.render_report",
    bind=True,
    acks_late=True,
    max_retries=1,
    soft_time_limit=600,
    time_limit=660,
    ignore_result=True,
)
def render_report(self, report_id: int) -> None:
    """Render a queued report; claimed with a conditional update so a retry never renders twice."""
    claimed = Report.objects.filter(pk=report_id, status=ReportStatus.QUEUED).update(
        status=ReportStatus.RENDERING, stage="starting"
    )
    if not claimed:
        return
    from incidents import audit_reports

    report = Report.objects.select_related("system__team", "team").get(pk=report_id)
    last = [0.0]

    def progress(fraction: float, stage: str) -> None:
        # At most one database write per half second.
        now = time.monotonic()
        if now - last[0] >= 0.5 or fraction >= 1.0:
            last[0] = now
            Report.objects.filter(pk=report_id).update(progress=min(1.0, fraction), stage=stage[:120])

    try:
        if report.kind == ReportKind.SYSTEM_AUDIT:
            rendered = audit_reports.render_system_audit(report.system, progress=progress)
        else:
            # Exactly the systems the requester can see now.
            systems = list(
                System.objects.filter(team_id__in=team_ids_for(report.requested_by))
                .select_related("team")
                .order_by("team__name", "name")
            )
            rendered = audit_reports.render_portfolio_audit(
                systems, title=f"Portfolio audit for {report.requested_by}", progress=progress
            )
        path, size = audit_reports.store(rendered)
    except Exception as error:  # noqa: BLE001 - the report records why it failed
        Report.objects.filter(pk=report_id).update(
            status=ReportStatus.FAILED, error=f"{type(error).__name__}: {error}"[:2000], finished_at=timezone.now()
        )
        raise
    Report.objects.filter(pk=report_id).update(
        status=ReportStatus.READY,
        progress=1.0,
        stage="done",
        file_path=path,
        size=size,
        sha256=rendered.sha256,
        document_id=rendered.document_id,
        finished_at=timezone.now(),
    )


@shared_task(name="incidents.tasks.expire_reports", ignore_result=True)
def expire_reports() -> int:
    """Delete expired report files and rows (files shared by a hash stay while any row uses them)."""
    from pathlib import Path

    from django.conf import settings

    expired = list(Report.objects.filter(expires_at__lt=timezone.now()))
    for report in expired:
        report.delete()
        if report.file_path and not Report.objects.filter(file_path=report.file_path).exists():
            (Path(settings.MEDIA_ROOT) / report.file_path).unlink(missing_ok=True)
    return len(expired)
