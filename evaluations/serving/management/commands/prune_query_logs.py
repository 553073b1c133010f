"""``manage.py prune_query_logs``: delete serving query logs past their deployment's retention period."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from evaluations.serving.telemetry import prune


class Command(BaseCommand):
    """Apply each deployment's telemetry retention."""

    help = "Delete serving query logs older than their deployment's retention period."

    def handle(self, *args: Any, **options: Any) -> None:
        """Prune and report how many rows went."""
        deleted = prune()
        self.stdout.write(f"Deleted {deleted} query log(s) past retention.")
