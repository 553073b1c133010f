"""``manage.py kpi_status_rebuild``: recompute every system's precomputed KPI status row."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from kpis.status import statuses_rebuild_all


class Command(BaseCommand):
    """Recompute the portfolio's status rows, after a deploy changed the KPI catalog or data was loaded in bulk."""

    help = __doc__

    def handle(self, *args: object, **options: object) -> None:
        """Rebuild all rows and say how many."""
        done = statuses_rebuild_all()
        self.stdout.write(f"Recomputed the KPI status rows of {done} system(s).")
