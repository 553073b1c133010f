"""Incidents reacting to finished evaluation runs.

- A successful run linked to a remediation action completes the action, with the run
  as its verification.
- A poisoning-detection run that flags records opens an incident with the evidence
  attached (unless its config says ``"open_incident": false``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from evaluations.models import EvaluationRun, RunKind, RunStatus
from evaluations.signals import run_finished
from incidents import services
from incidents.models import ActionStatus, Evidence, RemediationAction

logger = logging.getLogger(__name__)


def complete_actions(run: EvaluationRun) -> int:
    """Mark the open actions waiting on this run done."""
    done = 0
    for action in RemediationAction.objects.filter(run=run).exclude(status=ActionStatus.DONE):
        services.action_set_status(
            actor=None,
            action=action,
            status=ActionStatus.DONE,
            verification=f"{run.get_kind_display()} run {run.pk} succeeded.",
        )
        done += 1
    return done


def flagged_count(run: EvaluationRun) -> int:
    """How many training records a poisoning-detection run flagged."""
    value = (run.metrics or {}).get("flagged", 0)
    return int(value) if isinstance(value, (int, float)) else 0


@transaction.atomic
def open_poisoning_incident(run: EvaluationRun) -> Any:
    """Open an incident for a run that flagged poison, once per run."""
    reference = f"evaluation run {run.pk}"
    if Evidence.objects.filter(kind="evaluation_run", reference=reference).exists():
        return None
    flagged = flagged_count(run)
    incident = services.incident_open(
        actor=None,
        team=run.system.team,
        systems=[run.system],
        severity="high",
        title=f"Possible training-data poisoning in {run.system.name}: {flagged} records flagged",
        detection_source="evaluation_run",
        detected_at=run.finished_at or timezone.now(),
        summary=f"Poisoning-detection run {run.pk} on model v{run.model_artifact.version} flagged {flagged} "
        "training records. Review the flagged-sample list, quarantine the records and retrain.",
    )
    metrics = {key: value for key, value in (run.metrics or {}).items() if isinstance(value, (int, float, str))}
    services.evidence_add(
        actor=None,
        incident=incident,
        kind="evaluation_run",
        reference=reference,
        description=f"Poisoning detection on model v{run.model_artifact.version} "
        f"(flagged-sample list attached to the run)",
        metrics=metrics,
    )
    return incident


@receiver(run_finished, dispatch_uid="incidents.run_finished")
def on_run_finished(sender: Any, run_id: int, system_id: int, kind: str, status: str, **kwargs: Any) -> None:
    """Complete remediation actions and open poisoning incidents."""
    if status != RunStatus.SUCCEEDED:
        return
    run = EvaluationRun.objects.select_related("system__team", "model_artifact").get(pk=run_id)
    try:
        complete_actions(run)
        if kind == RunKind.POISONING_DETECTION and flagged_count(run) > 0 and run.config.get("open_incident", True):
            open_poisoning_incident(run)
    except Exception:  # noqa: BLE001 - the run is committed; a person can still act on it
        logger.exception("Could not update incidents after run %s", run_id)
