"""Writes to the model and dataset registry and to evaluation runs; each one audited in its transaction.

Run status changes all go through :func:`_transition`, which checks the transition table and changes
the row with a conditional update (so two workers, or a worker and the reaper, never both win).
"""

from __future__ import annotations

import struct
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from evaluations.configs import NEEDS_DATASET, validate_config
from evaluations.models import (
    Dataset,
    DatasetKind,
    DatasetStatus,
    EvaluationRun,
    EvaluationSchedule,
    ModelArtifact,
    ModelFormat,
    ReferenceDataset,
    RunArtifact,
    RunKind,
    RunStatus,
    ScanStatus,
)
from evaluations.signals import run_finished
from evaluations.storage import StagedFile, blob_store, removing_uncommitted_blobs, stage_bytes, stage_upload
from garrison.accounts.principals import TokenPrincipal
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import diff, record, snapshot
from threatmodel.models import System

_ZIP = b"PK\x03\x04"


class RunConflict(Exception):
    """The run's current status does not allow the operation (the API answers 409)."""


def _actor_user(actor: Any) -> tuple[Any, str]:
    """(user or None, label) for the ``*_by`` fields."""
    if actor is None:
        return None, "system"
    if isinstance(actor, TokenPrincipal):
        return None, actor.get_username()
    return (actor if getattr(actor, "pk", None) else None), actor.get_username()


# --- model registry ---------------------------------------------------------------------------------


def _check_model_bytes(fmt: str, staged: StagedFile) -> None:
    """Cheap magic-byte check so an obviously wrong file is refused at upload (the worker scans deeply)."""
    head = staged.head
    if fmt in (ModelFormat.TORCHSCRIPT, ModelFormat.SKOPS):
        if not head.startswith(_ZIP):
            what = "a raw pickle, which Garrison never loads" if head[:1] == b"\x80" else "not a ZIP archive"
            hint = (
                "Export with torch.jit.save(torch.jit.script(model), path)"
                if fmt == ModelFormat.TORCHSCRIPT
                else "Save it with skops.io.dump(estimator, path)"
            )
            raise ValidationError({"file": f"The file is {what}, so it is not a {fmt} file. {hint}."})
        return
    if fmt == ModelFormat.SAFETENSORS:
        if len(head) < 9 or head.startswith(_ZIP) or head[:1] == b"\x80":
            raise ValidationError(
                {
                    "file": "The file is not safetensors. Save weights with "
                    "safetensors.torch.save_file(model.state_dict(), 'model.safetensors')."
                }
            )
        (header_len,) = struct.unpack("<Q", head[:8])
        if header_len + 8 > staged.size or head[8:9] != b"{":
            raise ValidationError(
                {"file": "The safetensors header is truncated or malformed; re-export the file and upload it whole."}
            )


def model_artifact_upload(
    *,
    actor: Any,
    system: System,
    file: IO[bytes],
    format: str,  # noqa: A002 - the field's name
    input_shape: list[int],
    input_bounds: list[float],
    class_names: list[str],
    architecture: str = "",
    hyperparams: dict[str, Any] | None = None,
    name: str = "",
) -> ModelArtifact:
    """Register a new model version from an upload; it is scanned by a worker before any run may use it."""
    require_capability(user=actor, team_id=system.team_id, capability=Capability.SUBMIT_EVALUATIONS)
    if format not in ModelFormat.values:
        raise ValidationError({"format": f"Unknown format '{format}'; choose one of {', '.join(ModelFormat.values)}."})
    staged = stage_upload(file)
    with removing_uncommitted_blobs(staged):
        _check_model_bytes(format, staged)
        return _model_artifact_create(
            actor=actor,
            system=system,
            staged=staged,
            original_filename=getattr(file, "name", "") or "",
            fields={
                "format": format,
                "input_shape": input_shape,
                "input_bounds": input_bounds,
                "class_names": class_names,
                "architecture": architecture or "",
                "hyperparams": hyperparams or {},
                "name": name,
            },
        )


_MODEL_AUDITED = ("version", "name", "format", "architecture", "input_shape", "input_bounds", "class_names", "blob")


@transaction.atomic
def _model_artifact_create(
    *,
    actor: Any,
    system: System,
    staged: StagedFile,
    original_filename: str,
    fields: dict[str, Any],
    parent: ModelArtifact | None = None,
    run: EvaluationRun | None = None,
    scan: tuple[str, dict, str] | None = None,
) -> ModelArtifact:
    # Lock the system row so concurrent uploads get consecutive version numbers.
    System.objects.select_for_update().filter(pk=system.pk).first()
    version = (ModelArtifact.objects.filter(system=system).aggregate(v=Max("version"))["v"] or 0) + 1
    user, label = _actor_user(actor)
    artifact = ModelArtifact(
        system=system,
        version=version,
        original_filename=original_filename[:255],
        uploaded_by=user,
        uploaded_by_label=label,
        parent=parent,
        produced_by_run=run,
        **fields,
    )
    artifact.blob_id = staged.sha256  # validated before the blob is stored
    artifact.full_clean(exclude=["blob"])
    artifact.blob = blob_store(staged)
    if scan is not None:
        artifact.scan_status, artifact.scan_report, artifact.scan_message = scan
        artifact.scanned_at = timezone.now()
    artifact.save()
    record(
        actor=actor,
        verb="model_artifact.create",
        obj=artifact,
        team_id=system.team_id,
        changes=diff({}, {**snapshot(artifact, [f for f in _MODEL_AUDITED if f != "blob"]), "sha256": staged.sha256}),
    )
    if scan is None:
        from evaluations.tasks import scan_model_artifact

        transaction.on_commit(lambda: scan_model_artifact.delay(artifact.pk))
    elif artifact.scan_status == ScanStatus.CLEAN:
        _on_new_clean_model(artifact)
    return artifact


def model_artifact_register_produced(
    *, run: EvaluationRun, data: bytes, architecture: str, hyperparams: dict[str, Any], scan_report: dict
) -> ModelArtifact:
    """Register a model a run produced (a hardened version) as the next version, linked to its parent."""
    parent = run.model_artifact
    verdict = scan_report.get("verdict")
    status = ScanStatus.CLEAN if verdict == "clean" else ScanStatus.UNSAFE
    staged = stage_bytes(data)
    with removing_uncommitted_blobs(staged):
        return _model_artifact_create(
            actor=None,
            system=run.system,
            staged=staged,
            original_filename=f"run-{run.pk}-hardened.safetensors",
            parent=parent,
            run=run,
            scan=(status, scan_report, ""),
            fields={
                "format": ModelFormat.SAFETENSORS,
                "input_shape": parent.input_shape,
                "input_bounds": parent.input_bounds,
                "class_names": parent.class_names,
                "architecture": architecture,
                "hyperparams": hyperparams,
                "name": f"{parent.name or 'model'} (adversarially trained, run #{run.pk})",
            },
        )


@transaction.atomic
def model_artifact_record_scan(*, artifact_id: int, status: str, report: dict, message: str = "") -> ModelArtifact:
    """Record the worker's scan verdict on a pending artifact (system actor)."""
    artifact = ModelArtifact.objects.select_for_update().select_related("system").get(pk=artifact_id)
    if status not in ScanStatus.values or status == ScanStatus.PENDING:
        raise ValueError(f"not a scan outcome: {status}")
    before = snapshot(artifact, ["scan_status"])
    artifact.scan_status = status
    artifact.scan_report = report
    artifact.scan_message = message
    artifact.scanned_at = timezone.now()
    artifact.save(update_fields=["scan_status", "scan_report", "scan_message", "scanned_at"])
    record(
        actor=None,
        verb="model_artifact.scan",
        obj=artifact,
        team_id=artifact.system.team_id,
        changes={**diff(before, snapshot(artifact, ["scan_status"])), "verdict": [None, report.get("verdict")]},
    )
    if status == ScanStatus.CLEAN:
        _on_new_clean_model(artifact)
    return artifact


def _on_new_clean_model(artifact: ModelArtifact) -> None:
    """Queue the system's 'run on new model version' schedules once the new version is usable."""
    if EvaluationSchedule.objects.filter(system_id=artifact.system_id, run_on_new_model=True, enabled=True).exists():
        from evaluations.tasks import run_new_model_schedules

        transaction.on_commit(lambda: run_new_model_schedules.apply_async((artifact.pk,), queue="default"))


# --- dataset registry -------------------------------------------------------------------------------

_DATASET_AUDITED = ("name", "version", "kind", "reference_name", "label_column", "source")


def _next_dataset_version(system: System, name: str) -> int:
    System.objects.select_for_update().filter(pk=system.pk).first()
    return (Dataset.objects.filter(system=system, name=name).aggregate(v=Max("version"))["v"] or 0) + 1


def dataset_upload(
    *,
    actor: Any,
    system: System,
    file: IO[bytes],
    name: str,
    kind: str,
    label_column: str = "",
    source: str = "",
) -> Dataset:
    """Register a new dataset version from an upload; a worker reads and profiles it."""
    require_capability(user=actor, team_id=system.team_id, capability=Capability.SUBMIT_EVALUATIONS)
    if kind not in (DatasetKind.NPZ, DatasetKind.CSV, DatasetKind.TSV):
        raise ValidationError({"kind": "Upload an npz, csv or tsv file; pick reference datasets without uploading."})
    staged = stage_upload(file)
    with removing_uncommitted_blobs(staged):
        if kind == DatasetKind.NPZ and not staged.head.startswith(_ZIP):
            raise ValidationError(
                {"file": "An .npz file is a ZIP archive; save it with numpy.savez(path, x=..., y=...)."}
            )
        return _dataset_create(
            actor=actor,
            system=system,
            staged=staged,
            fields={
                "name": name.strip(),
                "kind": kind,
                "label_column": label_column,
                "source": source or f"upload: {getattr(file, 'name', '')}",
                "original_filename": (getattr(file, "name", "") or "")[:255],
            },
        )


@transaction.atomic
def _dataset_create(*, actor: Any, system: System, staged: StagedFile | None, fields: dict[str, Any]) -> Dataset:
    user, label = _actor_user(actor)
    dataset = Dataset(
        system=system,
        version=_next_dataset_version(system, fields["name"]),
        uploaded_by=user,
        uploaded_by_label=label,
        **fields,
    )
    if staged is not None:
        dataset.blob_id = staged.sha256
    dataset.full_clean(exclude=["blob"])
    if staged is not None:
        dataset.blob = blob_store(staged)
    dataset.save()
    record(
        actor=actor,
        verb="dataset.create",
        obj=dataset,
        team_id=system.team_id,
        changes=diff({}, {**snapshot(dataset, _DATASET_AUDITED), "sha256": dataset.sha256}),
    )
    from evaluations.tasks import profile_dataset

    transaction.on_commit(lambda: profile_dataset.delay(dataset.pk))
    return dataset


def dataset_register_reference(*, actor: Any, system: System, reference_name: str) -> Dataset:
    """The system's entry for a built-in reference dataset, created on first use."""
    require_capability(user=actor, team_id=system.team_id, capability=Capability.SUBMIT_EVALUATIONS)
    if reference_name not in ReferenceDataset.values:
        raise ValidationError(
            {
                "reference_dataset": f"Unknown reference dataset '{reference_name}'; choose one of "
                f"{', '.join(ReferenceDataset.values)}."
            }
        )
    existing = Dataset.objects.filter(system=system, kind=DatasetKind.REFERENCE, reference_name=reference_name).first()
    if existing is not None:
        return existing
    return _dataset_create(
        actor=actor,
        system=system,
        staged=None,
        fields={
            "name": f"reference:{reference_name}",
            "kind": DatasetKind.REFERENCE,
            "reference_name": reference_name,
            "source": f"built-in reference dataset '{reference_name}'",
        },
    )


@transaction.atomic
def dataset_record_profile(
    *, dataset_id: int, status: str, schema: dict, class_balance: dict, message: str = ""
) -> Dataset:
    """Record the worker's reading of a dataset (system actor)."""
    dataset = Dataset.objects.select_for_update().select_related("system").get(pk=dataset_id)
    before = snapshot(dataset, ["status"])
    dataset.status = status
    dataset.schema = schema
    dataset.class_balance = class_balance
    dataset.status_message = message
    dataset.save(update_fields=["status", "schema", "class_balance", "status_message"])
    record(
        actor=None,
        verb="dataset.profile",
        obj=dataset,
        team_id=dataset.system.team_id,
        changes=diff(before, snapshot(dataset, ["status"])),
    )
    return dataset


# --- evaluation runs --------------------------------------------------------------------------------

TRANSITIONS: dict[str, set[str]] = {
    RunStatus.QUEUED: {RunStatus.RUNNING, RunStatus.CANCELLED},
    RunStatus.RUNNING: {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.QUEUED},
    RunStatus.SUCCEEDED: set(),
    RunStatus.FAILED: set(),
    RunStatus.CANCELLED: set(),
}


def _transition(
    *,
    run_id: int,
    to: str,
    actor: Any = None,
    verb: str,
    attempt: int | None = None,
    note: str = "",
    **fields: Any,
) -> EvaluationRun | None:
    """Move a run to ``to`` if the table allows it from its current status (and attempt); audit it.

    Returns the updated run, or None when the run was not in a state that allows the move (another
    worker or the reaper got there first). Must run inside the calling service's transaction.
    """
    sources = [status for status, targets in TRANSITIONS.items() if to in targets]
    rows = EvaluationRun.objects.filter(pk=run_id, status__in=sources)
    if attempt is not None:
        rows = rows.filter(attempts=attempt)
    before = rows.values_list("status", flat=True).first()
    if before is None or rows.filter(status=before).update(status=to, **fields) != 1:
        return None
    run = EvaluationRun.objects.select_related("system").get(pk=run_id)
    if to in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
        system_id, kind = run.system_id, run.kind
        transaction.on_commit(
            lambda: run_finished.send(sender=EvaluationRun, run_id=run_id, system_id=system_id, kind=kind, status=to)
        )
    changes: dict[str, Any] = {"status": [before, to]}
    if note:
        changes["note"] = [None, note]
    record(actor=actor, verb=verb, obj=run, team_id=run.system.team_id, changes=changes)
    return run


def _ingestion_refusal(dataset: Dataset) -> str | None:
    """Runs use only accepted versions of a dataset under ingestion (the sub-app decides which those are)."""
    from evaluations.ingestion.services import dataset_refusal

    return dataset_refusal(dataset)


def _queue_for(run: EvaluationRun) -> str:
    if run.config.get("device") == "cuda" and settings.GARRISON_GPU_QUEUE:
        return settings.GARRISON_GPU_QUEUE
    return "ml"


def enqueue_run(run: EvaluationRun) -> None:
    """Send the run's task to its queue once the transaction commits."""
    from evaluations.tasks import execute_run

    queue = _queue_for(run)
    transaction.on_commit(lambda: execute_run.apply_async((run.pk,), queue=queue))


@transaction.atomic
def evaluation_run_queue(
    *,
    actor: Any,
    system: System,
    kind: str,
    model_artifact: ModelArtifact,
    dataset: Dataset | None = None,
    config: dict[str, Any] | None = None,
    schedule: EvaluationSchedule | None = None,
) -> EvaluationRun:
    """Validate and queue an evaluation run; a worker picks it up after commit."""
    require_capability(user=actor, team_id=system.team_id, capability=Capability.SUBMIT_EVALUATIONS)
    validated = validate_config(kind, config, class_names=model_artifact.class_names or None)
    errors: dict[str, list[str]] = {}
    if model_artifact.system_id != system.pk:
        errors["model"] = ["That model version belongs to another system."]
    elif kind != RunKind.MODEL_SCAN and model_artifact.scan_status != ScanStatus.CLEAN:
        errors["model"] = [
            f"Model v{model_artifact.version} is {model_artifact.get_scan_status_display().lower()}; only models "
            "whose safety scan came back clean can be evaluated."
        ]
    if kind == RunKind.ADVERSARIAL_TRAINING and model_artifact.format != ModelFormat.SAFETENSORS:
        errors["model"] = ["Adversarial training needs a safetensors model with a built-in architecture."]
    if kind in NEEDS_DATASET:
        if dataset is None:
            errors["dataset"] = ["This kind of run needs a dataset (or a reference dataset)."]
        elif dataset.system_id != system.pk:
            errors["dataset"] = ["That dataset belongs to another system."]
        elif dataset.status == DatasetStatus.REJECTED:
            errors["dataset"] = [f"Dataset {dataset} was rejected: {dataset.status_message}"]
        elif refusal := _ingestion_refusal(dataset):
            errors["dataset"] = [refusal]
    elif dataset is not None:
        errors["dataset"] = [f"A {kind} run takes no dataset."]
    if errors:
        raise ValidationError(errors)
    shards = int(validated.get("shards", 1))
    user, label = _actor_user(actor)
    run = EvaluationRun(
        system=system,
        kind=kind,
        model_artifact=model_artifact,
        dataset=dataset,
        config=validated,
        shards=shards,
        max_attempts=settings.GARRISON_RUN_MAX_ATTEMPTS,
        stage="queued",
        schedule=schedule,
        created_by=user,
        created_by_label=label,
    )
    run.full_clean()
    run.save()
    record(
        actor=actor,
        verb="evaluation_run.queue",
        obj=run,
        team_id=system.team_id,
        changes=diff(
            {},
            {
                "kind": kind,
                "model": f"v{model_artifact.version} ({model_artifact.sha256[:12]})",
                "dataset": str(dataset) if dataset else None,
                "config": validated,
            },
        ),
    )
    enqueue_run(run)
    return run


@transaction.atomic
def evaluation_run_cancel(*, actor: Any, run: EvaluationRun) -> EvaluationRun:
    """Cancel a queued run at once, or ask a running one to stop at its next batch."""
    require_capability(user=actor, team_id=run.system.team_id, capability=Capability.SUBMIT_EVALUATIONS)
    run = EvaluationRun.objects.select_for_update().select_related("system").get(pk=run.pk)
    if run.finished:
        raise RunConflict(f"Run #{run.pk} already {run.status}; only queued or running runs can be cancelled.")
    if run.status == RunStatus.QUEUED:
        cancelled = _transition(
            run_id=run.pk,
            to=RunStatus.CANCELLED,
            actor=actor,
            verb="evaluation_run.cancel",
            cancel_requested=True,
            finished_at=timezone.now(),
            stage="cancelled before it started",
        )
        assert cancelled is not None  # the row is locked
        return cancelled
    if not run.cancel_requested:
        EvaluationRun.objects.filter(pk=run.pk).update(cancel_requested=True)
        run.cancel_requested = True
        record(
            actor=actor,
            verb="evaluation_run.cancel_request",
            obj=run,
            team_id=run.system.team_id,
            changes={"cancel_requested": [False, True]},
        )
    return run


@transaction.atomic
def evaluation_run_claim(*, run_id: int, worker: str) -> EvaluationRun | None:
    """QUEUED -> RUNNING for exactly one worker; returns the run (with its attempt number) or None."""
    now = timezone.now()
    return _transition(
        run_id=run_id,
        to=RunStatus.RUNNING,
        verb="evaluation_run.start",
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        worker=worker[:200],
        progress=0.0,
        stage="starting",
        eta_seconds=None,
    )


def evaluation_run_report_progress(
    *, run_id: int, attempt: int, progress: float, stage: str, eta_seconds: float | None
) -> bool:
    """Write progress and heartbeat of the current attempt; returns whether cancellation was requested.

    Not a status change, so not audited; the conditional update keeps a stale attempt from writing.
    """
    now = timezone.now()
    rows = EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, attempts=attempt)
    rows.update(progress=max(0.0, min(1.0, progress)), stage=stage[:120], eta_seconds=eta_seconds, heartbeat_at=now)
    return bool(EvaluationRun.objects.filter(pk=run_id).values_list("cancel_requested", flat=True).first())


def evaluation_run_heartbeat(*, run_id: int, attempt: int) -> bool:
    """Refresh the heartbeat of the current attempt; returns False when the attempt no longer owns the run."""
    return bool(
        EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, attempts=attempt).update(
            heartbeat_at=timezone.now()
        )
    )


def evaluation_run_succeed(
    *,
    run_id: int,
    attempt: int,
    metrics: dict[str, Any],
    flags: list[dict[str, Any]],
    reliable: bool | None,
    reproducibility: dict[str, Any],
    engine_seconds: float,
    files: list[tuple[str, str, str, bytes]],
) -> EvaluationRun | None:
    """RUNNING -> SUCCEEDED with the results and produced files; None if this attempt lost the run."""
    staged = [(kind, name, ctype, stage_bytes(data)) for kind, name, ctype, data in files]
    with removing_uncommitted_blobs(*[item[3] for item in staged]):
        return _succeed(
            run_id=run_id,
            attempt=attempt,
            staged=staged,
            fields={
                "metrics": metrics,
                "flags": flags,
                "reliable": reliable,
                "reproducibility": reproducibility,
                "engine_seconds": engine_seconds,
            },
        )


@transaction.atomic
def _succeed(
    *, run_id: int, attempt: int, staged: list[tuple[str, str, str, StagedFile]], fields: dict[str, Any]
) -> EvaluationRun | None:
    run = _transition(
        run_id=run_id,
        to=RunStatus.SUCCEEDED,
        verb="evaluation_run.succeed",
        attempt=attempt,
        finished_at=timezone.now(),
        progress=1.0,
        stage="done",
        eta_seconds=0.0,
        error_message="",
        error_traceback="",
        **fields,
    )
    if run is None:
        return None
    for kind, name, content_type, item in staged:
        RunArtifact.objects.create(run=run, kind=kind, name=name, content_type=content_type, blob=blob_store(item))
    return run


@transaction.atomic
def evaluation_run_fail(
    *, run_id: int, attempt: int | None, message: str, traceback: str = "", actor: Any = None
) -> EvaluationRun | None:
    """RUNNING -> FAILED with what went wrong (``attempt`` None: whatever attempt holds it)."""
    return _transition(
        run_id=run_id,
        to=RunStatus.FAILED,
        actor=actor,
        verb="evaluation_run.fail",
        attempt=attempt,
        note=message[:500],
        finished_at=timezone.now(),
        stage="failed",
        eta_seconds=None,
        error_message=message[:4000],
        error_traceback=traceback[-8000:],
    )


@transaction.atomic
def evaluation_run_mark_cancelled(*, run_id: int, attempt: int) -> EvaluationRun | None:
    """RUNNING -> CANCELLED once the worker stopped on a cancellation request."""
    return _transition(
        run_id=run_id,
        to=RunStatus.CANCELLED,
        verb="evaluation_run.cancelled",
        attempt=attempt,
        finished_at=timezone.now(),
        stage="cancelled",
        eta_seconds=None,
    )


@transaction.atomic
def evaluation_run_requeue(*, run_id: int, attempt: int, reason: str) -> EvaluationRun | None:
    """RUNNING -> QUEUED for another attempt (the reaper, after a worker died); enqueues it again."""
    run = _transition(
        run_id=run_id,
        to=RunStatus.QUEUED,
        verb="evaluation_run.requeue",
        attempt=attempt,
        note=reason,
        stage=f"requeued: {reason}"[:120],
        progress=0.0,
        eta_seconds=None,
        worker="",
    )
    if run is not None:
        run.shard_rows.all().delete()
        enqueue_run(run)
    return run


def evaluation_run_reap(*, now: Any = None) -> dict[str, list[int]]:
    """Requeue (attempts left) or fail (none left) every running run whose heartbeat went stale."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.GARRISON_RUN_STALE_SECONDS)
    outcome: dict[str, list[int]] = {"requeued": [], "failed": []}
    stale = EvaluationRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff)
    for run_id, attempts, max_attempts, cancel, beat in stale.values_list(
        "pk", "attempts", "max_attempts", "cancel_requested", "heartbeat_at"
    ):
        silent = int((now - beat).total_seconds())
        if attempts < max_attempts and not cancel:
            if evaluation_run_requeue(run_id=run_id, attempt=attempts, reason=f"no heartbeat for {silent} s"):
                outcome["requeued"].append(run_id)
        elif evaluation_run_fail(
            run_id=run_id,
            attempt=attempts,
            message=(
                f"The worker stopped reporting (no heartbeat for {silent} s) on attempt {attempts} of "
                f"{max_attempts}; it was probably killed or ran out of memory. Check the worker logs, then "
                "submit the run again (with fewer samples or a smaller batch size if memory was short)."
            ),
        ):
            outcome["failed"].append(run_id)
    return outcome
