"""Thin Celery task of the ingestion pipeline: ids in; the work is in ``ingestion.execution``."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError


@shared_task(
    name="evaluations.ingestion.tasks.check_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
    autoretry_for=(OperationalError,),
    retry_backoff=5,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    ignore_result=True,
)
def check_batch(batch_id: int) -> str:
    """Claim a queued batch (QUEUED -> CHECKING for exactly one worker), run its checks and record the report."""
    from evaluations.ingestion.execution import run_batch_checks

    return run_batch_checks(batch_id)
