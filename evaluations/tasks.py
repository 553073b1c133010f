"""Thin Celery tasks: ids in, the work is in ``execution`` and ``runners``; the engine is imported inside.

All of them are routed to the ``ml`` queue (``evaluations.tasks.*``) unless sent elsewhere: the light
bookkeeping ones (reaper, schedule triggers) are sent to ``default``.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

logger = logging.getLogger(__name__)

_LONG = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": 3,
    "autoretry_for": (OperationalError,),
    "retry_backoff": 5,
    "soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.CELERY_TASK_TIME_LIMIT,
    "ignore_result": True,
}


@shared_task(name="evaluations.tasks.execute_run", bind=True, **_LONG)
def execute_run(self, run_id: int) -> str:
    """Claim a queued run (QUEUED -> RUNNING for exactly one worker) and run it to a final status."""
    from evaluations.execution import execute, worker_name

    return execute(run_id, worker=worker_name(self.request))


@shared_task(name="evaluations.tasks.run_robustness_shard", **_LONG)
def run_robustness_shard(run_id: int, index: int, attempt: int) -> str:
    """Compute one shard (a range of sample units) of a sharded robustness run."""
    from evaluations.execution import execute_shard

    return execute_shard(run_id, index, attempt)


@shared_task(name="evaluations.tasks.merge_robustness_shards", **_LONG)
def merge_robustness_shards(run_id: int, attempt: int) -> str:
    """Merge a sharded robustness run's shard results and finish the run."""
    from evaluations.execution import merge_shards

    return merge_shards(run_id, attempt)


@shared_task(name="evaluations.tasks.scan_model_artifact", **_LONG)
def scan_model_artifact(artifact_id: int) -> str:
    """Statically scan an uploaded model, then check it loads with its declared input spec."""
    from evaluations import runners, services
    from evaluations.execution import set_torch_threads
    from evaluations.models import ModelArtifact, ScanStatus

    artifact = ModelArtifact.objects.select_related("blob").get(pk=artifact_id)
    if artifact.scan_status != ScanStatus.PENDING:
        return artifact.scan_status
    set_torch_threads()
    report = runners.scan_model_file(artifact.blob.path)
    verdict = report.get("verdict")
    status, message = ScanStatus.CLEAN, ""
    if verdict in ("malicious", "suspicious"):
        status, message = ScanStatus.UNSAFE, f"The safety scan found the file {verdict}; it will never be loaded."
    elif verdict != "clean":
        status, message = ScanStatus.REJECTED, "The scanner could not fully understand the file; it is refused."
    else:
        from evaluations.engine.common import EngineInputError

        spec = runners.ModelSpec(
            path=artifact.blob.path,
            format=artifact.format,
            architecture=artifact.architecture,
            hyperparams=dict(artifact.hyperparams),
            input_shape=list(artifact.input_shape),
            bounds=list(artifact.input_bounds),
            class_names=list(artifact.class_names),
            sha256=artifact.sha256,
        )
        try:
            runners.load_classifier(spec)
        except EngineInputError as exc:
            status, message = ScanStatus.REJECTED, f"The file is safe but does not load as declared: {exc}"
    services.model_artifact_record_scan(artifact_id=artifact_id, status=status, report=report, message=message)
    return status


@shared_task(name="evaluations.tasks.profile_dataset", **_LONG)
def profile_dataset(dataset_id: int) -> str:
    """Read a dataset with the engine loaders (which validate it) and record its schema and class balance."""
    from evaluations import runners, services
    from evaluations.engine.common import EngineInputError
    from evaluations.models import Dataset, DatasetStatus

    dataset = Dataset.objects.select_related("blob").get(pk=dataset_id)
    if dataset.status != DatasetStatus.PENDING:
        return dataset.status
    spec = runners.DataSpec(
        kind=dataset.kind,
        reference_name=dataset.reference_name,
        path=dataset.blob.path if dataset.blob_id else None,
        label_column=dataset.label_column,
        sha256=dataset.sha256,
    )
    try:
        profile = runners.profile_dataset(spec)
    except EngineInputError as exc:
        services.dataset_record_profile(
            dataset_id=dataset_id, status=DatasetStatus.REJECTED, schema={}, class_balance={}, message=str(exc)
        )
        return DatasetStatus.REJECTED
    services.dataset_record_profile(dataset_id=dataset_id, status=DatasetStatus.READY, **profile)
    return DatasetStatus.READY


@shared_task(name="evaluations.tasks.reap_stale_runs", ignore_result=True)
def reap_stale_runs() -> dict[str, list[int]]:
    """Requeue or fail running runs whose worker stopped sending heartbeats (beat runs this every minute)."""
    from evaluations.services import evaluation_run_reap

    outcome = evaluation_run_reap()
    if outcome["requeued"] or outcome["failed"]:
        logger.warning("reaper: requeued %s, failed %s", outcome["requeued"], outcome["failed"])
    return outcome


@shared_task(name="evaluations.tasks.run_schedule", ignore_result=True)
def run_schedule(schedule_id: int) -> int | None:
    """Queue a scheduled evaluation on the system's latest clean model (beat calls this per schedule)."""
    from evaluations.schedules import schedule_fire

    return schedule_fire(schedule_id=schedule_id)


@shared_task(name="evaluations.tasks.run_new_model_schedules", ignore_result=True)
def run_new_model_schedules(artifact_id: int) -> list[int]:
    """Queue the 'run on new model version' schedules of a system for its newly clean model."""
    from evaluations.schedules import schedules_fire_for_new_model

    return schedules_fire_for_new_model(artifact_id=artifact_id)


@shared_task(name="evaluations.tasks.refresh_control_evidence", ignore_result=True)
def refresh_control_evidence() -> int:
    """Daily: re-check every evidence requirement, so evidence that ages past its limit turns stale."""
    from evaluations.evidence import refresh_system
    from evaluations.models import EvidenceRequirement

    system_ids = set(EvidenceRequirement.objects.values_list("system_id", flat=True))
    return sum(refresh_system(system_id) for system_id in system_ids)
