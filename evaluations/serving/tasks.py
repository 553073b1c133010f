"""Serving guard background work: the daily telemetry retention prune."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="evaluations.serving.tasks.prune_query_logs", acks_late=True)
def prune_query_logs() -> int:
    """Delete query logs past their deployment's retention period."""
    from evaluations.serving.telemetry import prune

    return prune()
