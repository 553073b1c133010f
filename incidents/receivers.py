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

from evaluations.ingestion.signals import batch_poison_flagged
from evaluations.models import EvaluationRun, RunKind, RunStatus
from evaluations.serving.signals import deployment_alert_raised
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
    attach_flagged_samples(run, incident)
    return incident


FLAGGED_MESSAGES_IN_EVIDENCE = 25
"""How many flagged messages an incident quotes; the run's flagged-sample file keeps all of them."""


def attach_flagged_samples(run: EvaluationRun, incident: Any) -> Any:
    """Quote the run's flagged samples (with the detector's reasons, e.g. a named trigger) as evidence."""
    import json

    from evaluations.models import RunArtifactKind

    produced = run.artifacts.filter(kind=RunArtifactKind.FLAGGED_SAMPLES).select_related("blob").first()
    if produced is None:
        return None
    flagged = json.loads(produced.blob.path.read_bytes())
    names = flagged.get("class_names") or []
    rows = [row for row in (run.metrics or {}).get("classes", []) if row.get("flagged")]
    reasons = [f"{row['name']}: {row['reason']}" for row in rows]
    labels = sorted({names[label] if label < len(names) else str(label) for label in flagged.get("labels", [])})
    metrics: dict[str, Any] = {"flagged": len(flagged.get("flagged_ids", [])), "labelled": ", ".join(labels)}
    for row in rows:
        if row.get("trigger_phrases"):
            metrics["trigger_phrases"] = ", ".join(f"'{p}'" for p in row["trigger_phrases"])
    if flagged.get("texts"):
        metrics["messages"] = flagged["texts"][:FLAGGED_MESSAGES_IN_EVIDENCE]
    return services.evidence_add(
        actor=None,
        incident=incident,
        kind="flagged_samples",
        reference=f"evaluation run {run.pk}: {produced.name}",
        description=(f"Flagged training samples of run {run.pk}. " + " ".join(reasons))[:2000],
        metrics=metrics,
    )


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


@transaction.atomic
def open_extraction_incident(alert_id: int) -> Any:
    """Open an incident for a serving-monitor alert, once per alert."""
    from evaluations.serving.models import MonitorAlert

    alert = MonitorAlert.objects.select_related("deployment__system__team", "key").get(pk=alert_id)
    reference = f"serving alert {alert.pk}"
    if Evidence.objects.filter(kind="other", reference=reference).exists():
        return None
    deployment = alert.deployment
    incident = services.incident_open(
        actor=None,
        team=deployment.system.team,
        systems=[deployment.system],
        severity="high",
        title=f"Possible model extraction from {deployment}: key {alert.key.prefix}… flagged",
        detection_source="monitor_alert",
        detected_at=alert.created_at,
        summary=f"The extraction monitor flagged consumer key {alert.key.prefix}… ({alert.key.owner}) of deployment "
        f"{deployment} after {alert.queries} queries ({', '.join(alert.monitors) or 'no monitor named'}); the "
        f"deployment's action was '{alert.get_action_display()}'. Review the key's query logs and revoke it if needed.",
    )
    services.evidence_add(
        actor=None,
        incident=incident,
        kind="other",
        reference=reference,
        description=f"Extraction-monitor alert on {deployment} (monitoring page and query logs)",
        metrics={"queries": alert.queries, "monitors": ", ".join(alert.monitors), "action": alert.action},
    )
    return incident


@receiver(deployment_alert_raised, dispatch_uid="incidents.deployment_alert_raised")
def on_deployment_alert(
    sender: Any, alert_id: int, deployment_id: int, system_id: int, open_incident: bool, **kwargs: Any
) -> None:
    """Open an incident for a flagged client when the deployment asks for it."""
    if not open_incident:
        return
    try:
        open_extraction_incident(alert_id)
    except Exception:  # noqa: BLE001 - the alert is committed; a person can still act on it
        logger.exception("Could not open an incident for serving alert %s", alert_id)


@transaction.atomic
def open_ingestion_incident(batch_id: int) -> Any:
    """Open an incident for a quarantined batch whose poison scan flagged records, once per batch."""
    from evaluations.ingestion.models import IngestionBatch

    batch = IngestionBatch.objects.select_related("system__team", "policy", "base").get(pk=batch_id)
    reference = f"ingestion batch {batch.pk}"
    if Evidence.objects.filter(kind="flagged_samples", reference=reference).exists():
        return None
    poison = next((c for c in batch.report.get("checks", []) if c.get("name") == "poison_scan"), {})
    flagged = poison.get("flagged", [])
    incident = services.incident_open(
        actor=None,
        team=batch.system.team,
        systems=[batch.system],
        severity="high",
        title=f"Possible training-data poisoning pushed to {batch.policy.dataset_name}: "
        f"{len(flagged)} records flagged in batch #{batch.pk}",
        detection_source="ingestion_check",
        detected_at=batch.checked_at or timezone.now(),
        summary=f"The poison scan of batch #{batch.pk} (pushed by {batch.pushed_by_label}) flagged {len(flagged)} of "
        f"{batch.n_records} records against {batch.base}. The batch is held in quarantine; review its check report "
        "and reject it or accept it without the flagged records. Find out how the records reached the pipeline.",
    )
    services.evidence_add(
        actor=None,
        incident=incident,
        kind="flagged_samples",
        reference=reference,
        description=f"Check report of batch #{batch.pk}: {poison.get('detail', '')}"[:2000],
        metrics={"flagged": len(flagged), "records": batch.n_records, "batch_sha256": batch.raw_blob_id or "",
                 "flagged_positions": ", ".join(str(i) for i in flagged[:50])},
    )
    return incident


@receiver(batch_poison_flagged, dispatch_uid="incidents.batch_poison_flagged")
def on_batch_poison_flagged(
    sender: Any, batch_id: int, system_id: int, n_flagged: int, open_incident: bool, **kwargs: Any
) -> None:
    """Open an incident for a poisoned batch when the dataset's policy asks for it."""
    if not open_incident or n_flagged <= 0:
        return
    try:
        open_ingestion_incident(batch_id)
    except Exception:  # noqa: BLE001 - the batch is committed and held; a person can still act on it
        logger.exception("Could not open an incident for ingestion batch %s", batch_id)
