"""Worker side of the checks: read the accepted base and the batch, run the checks, record the report."""

from __future__ import annotations

import logging
import time
import traceback

from django.conf import settings

from evaluations.ingestion import services
from evaluations.ingestion.models import BatchStatus
from evaluations.ingestion.parsing import BatchInputError, parse_file
from evaluations.storage import read_blob

logger = logging.getLogger(__name__)


def run_batch_checks(batch_id: int, *, seed: int = 0) -> str:
    """Run every check of a queued batch; returns the batch's new status (or why nothing ran)."""
    batch = services.batch_claim(batch_id=batch_id)
    if batch is None:
        return "not queued"
    from evaluations.ingestion.checks import run_checks  # the statistics stack loads only in the worker

    policy = batch.policy
    last = [0.0]

    def progress(fraction: float, stage: str) -> None:
        now = time.monotonic()
        if now - last[0] >= settings.GARRISON_PROGRESS_INTERVAL_SECONDS or fraction >= 1.0:
            last[0] = now
            services.batch_report_progress(batch_id=batch_id, progress=fraction, stage=stage)

    try:
        base = services.read_records(batch.base, policy)
        records = parse_file(
            read_blob(batch.records_blob), format=policy.format, schema=policy.schema, what=f"batch #{batch.pk}"
        )
        report = run_checks(base, records, schema=policy.schema, seed=seed, progress=progress)
    except BatchInputError as exc:
        services.batch_fail(batch_id=batch_id, message=f"The stored data no longer matches the schema: {exc.message}")
        return BatchStatus.FAILED
    except Exception as exc:  # noqa: BLE001 - any failure leaves the batch quarantined, with the reason
        logger.exception("checks of batch %s failed", batch_id)
        services.batch_fail(batch_id=batch_id, message=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
        return BatchStatus.FAILED
    updated = services.batch_record_checks(batch_id=batch_id, report=report.to_dict())
    return updated.status
