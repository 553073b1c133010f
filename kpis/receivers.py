"""Record KPI measurements when a lower app reports a change."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from evaluations.models import RunStatus
from evaluations.signals import run_finished
from garrison.accounts.models import Team
from kpis.services import system_measure
from kpis.status import bump_generation, statuses_refresh
from threatmodel.models import System
from threatmodel.signals import threat_model_changed

logger = logging.getLogger(__name__)


def measure(system_id: int, trigger: str) -> None:
    """Measure one system; a failure is logged, never raised into the sender's request."""
    system = System.objects.filter(pk=system_id).first()
    if system is None:
        return
    try:
        system_measure(system=system, trigger=trigger)
    except Exception:  # noqa: BLE001 - the sender's change is committed; KPIs catch up on the daily run
        logger.exception("Could not record KPI measurements for system %s after %s", system_id, trigger)


@receiver(threat_model_changed, dispatch_uid="kpis.threat_model_changed")
def on_threat_model_changed(sender: Any, system_id: int, reason: str, **kwargs: Any) -> None:
    """The approved threat model or its evidence changed."""
    measure(system_id, f"threat model: {reason}"[:40])


@receiver(run_finished, dispatch_uid="kpis.run_finished")
def on_run_finished(sender: Any, run_id: int, system_id: int, kind: str, status: str, **kwargs: Any) -> None:
    """A successful run is new evidence."""
    if status == RunStatus.SUCCEEDED:
        measure(system_id, f"{kind} run {run_id} succeeded"[:40])


@receiver(post_save, sender=System, dispatch_uid="kpis.system_saved")
def on_system_saved(sender: Any, instance: System, raw: bool = False, **kwargs: Any) -> None:
    """A new system gets its (unmeasured) status row; a changed tier or team changes which thresholds apply."""
    if not raw:  # fixtures load rows as they are
        statuses_refresh([instance.pk])


@receiver(post_delete, sender=System, dispatch_uid="kpis.system_deleted")
def on_system_deleted(sender: Any, instance: System, **kwargs: Any) -> None:
    """A deleted system leaves the portfolio (its status row went with it)."""
    bump_generation()


@receiver(post_save, sender=Team, dispatch_uid="kpis.team_saved")
def on_team_saved(sender: Any, instance: Team, raw: bool = False, **kwargs: Any) -> None:
    """Portfolio pages show team names."""
    if not raw:
        bump_generation()
