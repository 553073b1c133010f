"""The evaluations app reacting to its own finished runs: control evidence."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from evaluations.evidence import refresh_system
from evaluations.signals import run_finished

logger = logging.getLogger(__name__)


@receiver(run_finished, dispatch_uid="evaluations.evidence")
def on_run_finished(sender: Any, run_id: int, system_id: int, kind: str, status: str, **kwargs: Any) -> None:
    """A successful run may change what the evidence says about controls."""
    if status != "succeeded":
        return
    try:
        refresh_system(system_id, kind=kind)
    except Exception:  # noqa: BLE001 - the run is committed; the daily refresh catches up
        logger.exception("Could not refresh control evidence after run %s", run_id)
