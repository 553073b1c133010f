"""Writes of the ingestion pipeline: govern a dataset, push a batch, record its checks, decide it.

Every write is audited in its transaction. A batch never becomes training data by itself: only an
accepted batch creates a new dataset version (base records + batch records, minus any removed
flagged records) with a provenance record; nothing is overwritten, and refused or rejected batches
are kept with their bytes for forensics.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from evaluations.ingestion.models import (
    BatchStatus,
    DatasetVersionRecord,
    Decision,
    IngestionBatch,
    IngestionPolicy,
    PolicyMode,
    VersionSource,
)
from evaluations.ingestion.parsing import (
    BatchInputError,
    Records,
    csv_header,
    infer_schema,
    merge_records,
    parse_file,
    parse_json_records,
    serialize,
)
from evaluations.ingestion.signals import batch_poison_flagged
from evaluations.models import Blob, Dataset, DatasetKind, DatasetStatus
from evaluations.storage import StagedFile, blob_store, read_blob, removing_uncommitted_blobs, stage_bytes
from garrison.accounts.principals import TokenPrincipal
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import diff, record
from garrison.core.exceptions import StateConflict
from threatmodel.models import System

_EXTENSIONS = {"tsv": "tsv", "csv": "csv", "npz": "npz"}


class BatchRefused(ValidationError):
    """A pushed batch was refused (wrong schema, empty, unknown labels, bad encoding, too large).

    The refused batch is kept as an ``invalid`` row (``batch``) for forensics; ``code`` is the kind of problem.
    """

    def __init__(self, *, field: str, message: str, code: str, batch: IngestionBatch) -> None:
        super().__init__({field: [message]})
        self.code = code
        self.batch = batch


def _actor(actor: Any) -> tuple[Any, str, str]:
    """(user or None, label, token prefix) of a principal."""
    if actor is None:
        return None, "system", ""
    if isinstance(actor, TokenPrincipal):
        return None, actor.get_username(), actor.token.prefix
    return (actor if getattr(actor, "pk", None) else None), actor.get_username(), ""


def _file_entry(role: str, name: str, blob: Blob | None) -> dict[str, Any]:
    return {"role": role, "name": name, "sha256": blob.sha256 if blob else "", "size": blob.size if blob else 0}


def policy_head(policy: IngestionPolicy) -> Dataset:
    """The latest accepted version of a governed dataset."""
    head = Dataset.objects.filter(provenance__policy=policy).select_related("blob").order_by("-version").first()
    if head is None:  # a policy is always created with its base version
        raise StateConflict(f"The governed dataset {policy.dataset_name} has no accepted version.")
    return head


def read_records(dataset: Dataset, policy: IngestionPolicy) -> Records:
    """The records of an accepted version, read against the policy's schema."""
    return parse_file(
        read_blob(dataset.blob), format=policy.format, schema=policy.schema, what=f"{dataset} ({dataset.sha256[:12]})"
    )


# --- governing a dataset ----------------------------------------------------------------------------


@transaction.atomic
def policy_create(
    *,
    actor: Any,
    dataset: Dataset,
    mode: str = PolicyMode.REQUIRE_APPROVAL,
    max_batch_records: int = 10_000,
    open_incident_on_poison: bool = True,
) -> IngestionPolicy:
    """Put a system's dataset under ingestion: this version becomes the accepted base; new data only via batches."""
    require_capability(user=actor, team_id=dataset.system.team_id, capability=Capability.APPROVE_DATA)
    if dataset.kind not in (DatasetKind.TSV, DatasetKind.CSV, DatasetKind.NPZ) or dataset.blob_id is None:
        raise ValidationError(
            {"dataset": "Only uploaded tsv, csv or npz datasets can be governed; reference datasets are built in."}
        )
    if dataset.status == DatasetStatus.REJECTED:
        raise ValidationError({"dataset": f"Dataset {dataset} was rejected ({dataset.status_message}); fix it first."})
    if IngestionPolicy.objects.filter(system_id=dataset.system_id, dataset_name=dataset.name).exists():
        raise ValidationError({"dataset": f"The dataset '{dataset.name}' is already under ingestion."})
    data = read_blob(dataset.blob)
    try:
        records = parse_file(data, format=dataset.kind, label_column=dataset.label_column, what=str(dataset))
    except BatchInputError as exc:
        raise ValidationError({"dataset": f"Cannot read {dataset} as its base: {exc.message}"}) from None
    columns = csv_header(data) if dataset.kind == DatasetKind.CSV else ()
    schema = infer_schema(records, format=dataset.kind, label_column=dataset.label_column, columns=columns)
    if len(schema["class_names"]) < 2:
        raise ValidationError(
            {"dataset": f"{dataset} has only the label {schema['class_names']}; it needs two classes."}
        )
    user, label, _ = _actor(actor)
    policy = IngestionPolicy(
        system=dataset.system,
        dataset_name=dataset.name,
        format=dataset.kind,
        schema=schema,
        mode=mode,
        max_batch_records=max_batch_records,
        open_incident_on_poison=open_incident_on_poison,
        created_by=user,
    )
    policy.full_clean()
    policy.save()
    source = VersionSource.IMPORT if dataset.source.startswith("import") else VersionSource.UPLOAD
    provenance = DatasetVersionRecord.objects.create(
        dataset=dataset,
        policy=policy,
        source=source,
        actor=dataset.uploaded_by,
        actor_label=dataset.uploaded_by_label,
        files=[_file_entry("file", dataset.original_filename or dataset.name, dataset.blob)],
        label_counts=records.label_counts(schema["class_names"]),
        n_records=len(records),
        transformation=f"Registered as the accepted base of ingestion by {label} (from {dataset.source or 'upload'}).",
    )
    record(
        actor=actor,
        verb="ingestion_policy.create",
        obj=policy,
        team_id=dataset.system.team_id,
        changes=diff(
            {},
            {
                "dataset": str(dataset),
                "sha256": dataset.sha256,
                "mode": mode,
                "schema": schema,
                "max_batch_records": max_batch_records,
                "open_incident_on_poison": open_incident_on_poison,
                "base_records": provenance.n_records,
            },
        ),
    )
    return policy


@transaction.atomic
def policy_update(
    *, actor: Any, policy: IngestionPolicy, mode: str, max_batch_records: int, open_incident_on_poison: bool
) -> IngestionPolicy:
    """Change what happens to passing batches, the batch size cap and the incident switch."""
    require_capability(user=actor, team_id=policy.system.team_id, capability=Capability.APPROVE_DATA)
    before = {
        "mode": policy.mode,
        "max_batch_records": policy.max_batch_records,
        "open_incident_on_poison": policy.open_incident_on_poison,
    }
    policy.mode, policy.max_batch_records = mode, max_batch_records
    policy.open_incident_on_poison = open_incident_on_poison
    policy.full_clean()
    policy.save(update_fields=["mode", "max_batch_records", "open_incident_on_poison"])
    after = {"mode": mode, "max_batch_records": max_batch_records, "open_incident_on_poison": open_incident_on_poison}
    record(
        actor=actor,
        verb="ingestion_policy.update",
        obj=policy,
        team_id=policy.system.team_id,
        changes=diff(before, after),
    )
    return policy


# --- pushing a batch --------------------------------------------------------------------------------


def batch_push(
    *,
    actor: Any,
    policy: IngestionPolicy,
    data: bytes | None = None,
    records: Any = None,
    filename: str = "",
    size: int | None = None,
    source: str = "api_push",
) -> IngestionBatch:
    """Quarantine a batch (a file's bytes, or JSON ``records``) for checks; refuse and keep it when it is invalid.

    ``size`` is the upload's size when its bytes were not read because it is over the limit.
    """
    require_capability(user=actor, team_id=policy.system.team_id, capability=Capability.PUSH_DATA)
    limit = settings.GARRISON_INGESTION_MAX_BATCH_BYTES
    is_json = data is None and size is None
    raw = json.dumps(records).encode() if is_json else data
    field = "records" if is_json else "file"
    what = filename or ("the batch" if is_json else "the file")
    try:
        total = size if raw is None else len(raw)
        if total > limit:
            raise BatchInputError(
                "too_large",
                f"The batch is {total:,} bytes; the limit is {limit:,} (GARRISON_INGESTION_MAX_BATCH_BYTES). "
                "Split it into smaller batches.",
            )
        parsed = (
            parse_json_records(records, schema=policy.schema)
            if is_json
            else parse_file(raw, format=policy.format, schema=policy.schema, what=what)
        )
        if len(parsed) > policy.max_batch_records:
            raise BatchInputError(
                "too_large",
                f"The batch has {len(parsed):,} records; this dataset takes at most {policy.max_batch_records:,} "
                "per batch. Split it into smaller batches.",
            )
    except BatchInputError as exc:
        kept = _batch_keep_invalid(
            actor=actor,
            policy=policy,
            raw=raw,
            size=total if raw is None else len(raw),
            error=exc,
            input_format="json" if is_json else policy.format,
            filename=filename,
            source=source,
        )
        raise BatchRefused(
            field=field, code=exc.code, batch=kept, message=f"{exc.message} (Refused; kept as batch #{kept.pk}.)"
        ) from None
    canonical = stage_bytes(serialize(parsed, policy.schema))
    staged_raw = stage_bytes(raw)
    with removing_uncommitted_blobs(canonical, staged_raw):
        return _batch_create(
            actor=actor,
            policy=policy,
            raw=staged_raw,
            canonical=canonical,
            records=parsed,
            input_format="json" if is_json else policy.format,
            filename=filename,
            source=source,
        )


@transaction.atomic
def _batch_keep_invalid(
    *,
    actor: Any,
    policy: IngestionPolicy,
    raw: bytes | None,
    size: int,
    error: BatchInputError,
    input_format: str,
    filename: str,
    source: str,
) -> IngestionBatch:
    user, label, prefix = _actor(actor)
    blob = None
    if raw:
        staged = stage_bytes(raw)
        blob = blob_store(staged)
    batch = IngestionBatch.objects.create(
        policy=policy,
        system=policy.system,
        source=source,
        input_format=input_format,
        original_filename=filename[:255],
        raw_blob=blob,
        size_bytes=size,
        status=BatchStatus.INVALID,
        status_message=error.message,
        error_code=error.code,
        pushed_by=user,
        pushed_by_label=label,
        token_prefix=prefix,
    )
    record(
        actor=actor,
        verb="ingestion_batch.refuse",
        obj=batch,
        team_id=policy.system.team_id,
        changes={
            "status": [None, BatchStatus.INVALID],
            "reason": [None, error.code],
            "message": [None, error.message],
            "sha256": [None, blob.sha256 if blob else None],
        },
    )
    return batch


@transaction.atomic
def _batch_create(
    *,
    actor: Any,
    policy: IngestionPolicy,
    raw: StagedFile,
    canonical: StagedFile,
    records: Records,
    input_format: str,
    filename: str,
    source: str,
) -> IngestionBatch:
    user, label, prefix = _actor(actor)
    base = policy_head(policy)
    batch = IngestionBatch.objects.create(
        policy=policy,
        system=policy.system,
        base=base,
        source=source,
        input_format=input_format,
        original_filename=filename[:255],
        raw_blob=blob_store(raw),
        records_blob=blob_store(canonical),
        size_bytes=raw.size,
        n_records=len(records),
        label_counts=records.label_counts(policy.schema["class_names"]),
        status=BatchStatus.QUEUED,
        stage="queued for checks",
        pushed_by=user,
        pushed_by_label=label,
        token_prefix=prefix,
    )
    record(
        actor=actor,
        verb="ingestion_batch.push",
        obj=batch,
        team_id=policy.system.team_id,
        changes=diff(
            {},
            {
                "status": BatchStatus.QUEUED,
                "records": len(records),
                "label_counts": batch.label_counts,
                "sha256": batch.raw_blob_id,
                "base": str(base),
            },
        ),
    )
    _enqueue(batch)
    return batch


def _enqueue(batch: IngestionBatch) -> None:
    from evaluations.ingestion.tasks import check_batch

    batch_id = batch.pk
    transaction.on_commit(lambda: check_batch.apply_async((batch_id,), queue="ml"))


# --- checks (worker side) ---------------------------------------------------------------------------


@transaction.atomic
def batch_claim(*, batch_id: int) -> IngestionBatch | None:
    """QUEUED -> CHECKING for exactly one worker; None when another got it (or it is not queued)."""
    rows = IngestionBatch.objects.filter(pk=batch_id, status=BatchStatus.QUEUED)
    if rows.update(status=BatchStatus.CHECKING, stage="starting", progress=0.0, attempts=F("attempts") + 1) != 1:
        return None
    batch = IngestionBatch.objects.select_related("policy", "system", "base__blob", "records_blob").get(pk=batch_id)
    record(
        actor=None,
        verb="ingestion_batch.check_start",
        obj=batch,
        team_id=batch.system.team_id,
        changes={"status": [BatchStatus.QUEUED, BatchStatus.CHECKING]},
    )
    return batch


def batch_report_progress(*, batch_id: int, progress: float, stage: str) -> None:
    """Progress of the checks (not a status change, so not audited)."""
    IngestionBatch.objects.filter(pk=batch_id, status=BatchStatus.CHECKING).update(
        progress=max(0.0, min(1.0, progress)), stage=stage[:120]
    )


def batch_record_checks(*, batch_id: int, report: dict[str, Any]) -> IngestionBatch:
    """CHECKING -> HELD (or ACCEPTED when every check passed and the policy auto-accepts); audited.

    A failed poison scan sends ``batch_poison_flagged`` after commit (incidents may open one).
    """
    batch = IngestionBatch.objects.select_related("policy", "system", "base__blob", "records_blob").get(pk=batch_id)
    passed = report.get("verdict") == "pass"
    merge = None
    if passed and batch.policy.mode == PolicyMode.AUTO_ACCEPT and batch.status == BatchStatus.CHECKING:
        merge = _prepare_merge(batch, drop=set())
    with removing_uncommitted_blobs(*([merge[0]] if merge else [])):
        return _record_checks(batch_id=batch_id, report=report, merge=merge)


@transaction.atomic
def _record_checks(
    *, batch_id: int, report: dict[str, Any], merge: tuple[StagedFile, Records, str] | None
) -> IngestionBatch:
    batch = (
        IngestionBatch.objects.select_for_update(of=("self",))
        .select_related("policy", "system", "base")
        .get(pk=batch_id)
    )
    if batch.status != BatchStatus.CHECKING:
        raise StateConflict(f"Batch #{batch.pk} is {batch.status}, not checking; its report was not recorded.")
    passed = report.get("verdict") == "pass"
    batch.report = report
    batch.checks_passed = passed
    batch.checked_at = timezone.now()
    batch.status = BatchStatus.HELD
    batch.progress, batch.stage = 1.0, "checks finished"
    batch.save(update_fields=["report", "checks_passed", "checked_at", "status", "progress", "stage"])
    failed = [c["name"] for c in report.get("checks", []) if c.get("verdict") == "fail"]
    record(
        actor=None,
        verb="ingestion_batch.checks",
        obj=batch,
        team_id=batch.system.team_id,
        changes={
            "status": [BatchStatus.CHECKING, BatchStatus.HELD],
            "verdict": [None, report.get("verdict")],
            "failed_checks": [None, failed],
            "flagged_records": [None, len(report.get("flagged", {}))],
        },
    )
    poison = next((c for c in report.get("checks", []) if c.get("name") == "poison_scan"), None)
    if poison is not None and poison.get("verdict") == "fail":
        system_id, n_flagged, wish = (
            batch.system_id,
            len(poison.get("flagged", [])),
            batch.policy.open_incident_on_poison,
        )
        transaction.on_commit(
            lambda: batch_poison_flagged.send(
                sender=IngestionBatch, batch_id=batch_id, system_id=system_id, n_flagged=n_flagged, open_incident=wish
            )
        )
    if merge is not None:
        _accept(
            actor=None,
            batch=batch,
            decision=Decision.AUTO_ACCEPT,
            note="Every check passed; the policy auto-accepts passing batches.",
            merge=merge,
            dropped=set(),
        )
    return batch


@transaction.atomic
def batch_fail(*, batch_id: int, message: str) -> IngestionBatch | None:
    """CHECKING -> FAILED when the check job itself broke (the batch stays quarantined; it can be rechecked)."""
    rows = IngestionBatch.objects.filter(pk=batch_id, status=BatchStatus.CHECKING)
    if rows.update(status=BatchStatus.FAILED, status_message=message[:4000], stage="failed") != 1:
        return None
    batch = IngestionBatch.objects.select_related("system").get(pk=batch_id)
    record(
        actor=None,
        verb="ingestion_batch.fail",
        obj=batch,
        team_id=batch.system.team_id,
        changes={"status": [BatchStatus.CHECKING, BatchStatus.FAILED], "note": [None, message[:500]]},
    )
    return batch


@transaction.atomic
def batch_recheck(*, actor: Any, batch: IngestionBatch) -> IngestionBatch:
    """Check a held or failed batch again, against the dataset's current accepted version."""
    require_capability(user=actor, team_id=batch.system.team_id, capability=Capability.PUSH_DATA)
    batch = IngestionBatch.objects.select_for_update(of=("self",)).select_related("policy", "system").get(pk=batch.pk)
    if batch.status not in (BatchStatus.HELD, BatchStatus.FAILED):
        raise StateConflict(
            f"Batch #{batch.pk} is {batch.get_status_display().lower()}; only held or failed "
            "batches can be checked again."
        )
    before = batch.status
    batch.base = policy_head(batch.policy)
    batch.status, batch.stage, batch.progress, batch.status_message = BatchStatus.QUEUED, "queued for checks", 0.0, ""
    batch.save(update_fields=["base", "status", "stage", "progress", "status_message"])
    record(
        actor=actor,
        verb="ingestion_batch.recheck",
        obj=batch,
        team_id=batch.system.team_id,
        changes={"status": [before, BatchStatus.QUEUED], "base": [None, str(batch.base)]},
    )
    _enqueue(batch)
    return batch


# --- decisions --------------------------------------------------------------------------------------


def batch_decide(*, actor: Any, batch: IngestionBatch, decision: str, note: str = "") -> IngestionBatch:
    """An approver accepts, rejects, or accepts without the flagged records a held batch; audited.

    Accepting creates the next dataset version (base + batch records); a batch checked against an older
    version than the current one must be checked again first (409).
    """
    require_capability(user=actor, team_id=batch.system.team_id, capability=Capability.APPROVE_DATA)
    if decision not in (Decision.ACCEPT, Decision.ACCEPT_WITHOUT_FLAGGED, Decision.REJECT):
        raise ValidationError({"decision": "Choose accept, accept_without_flagged or reject."})
    _check_decidable(batch)
    merge = None
    dropped: set[int] = set()
    if decision != Decision.REJECT:
        if decision == Decision.ACCEPT_WITHOUT_FLAGGED:
            dropped = {int(i) for i in batch.flagged}
            if len(dropped) >= batch.n_records:
                raise ValidationError(
                    {
                        "decision": "Every record of the batch is flagged; nothing would be left to "
                        "accept. Reject the batch instead."
                    }
                )
        merge = _prepare_merge(batch, drop=dropped)
    with removing_uncommitted_blobs(*([merge[0]] if merge else [])):
        return _decide(actor=actor, batch_id=batch.pk, decision=decision, note=note, merge=merge, dropped=dropped)


def _check_decidable(batch: IngestionBatch) -> None:
    if batch.status != BatchStatus.HELD:
        raise StateConflict(
            f"Batch #{batch.pk} is {batch.get_status_display().lower()}; only batches held for review can be decided."
        )
    head = policy_head(batch.policy)
    if batch.base_id != head.pk:
        raise StateConflict(
            f"Batch #{batch.pk} was checked against {batch.base} but the dataset is now at {head}; check it again "
            "against the current version before deciding."
        )


@transaction.atomic
def _decide(
    *,
    actor: Any,
    batch_id: int,
    decision: str,
    note: str,
    merge: tuple[StagedFile, Records, str] | None,
    dropped: set[int],
) -> IngestionBatch:
    batch = (
        IngestionBatch.objects.select_for_update(of=("self",))
        .select_related("policy", "system", "base")
        .get(pk=batch_id)
    )
    IngestionPolicy.objects.select_for_update().filter(pk=batch.policy_id).first()
    _check_decidable(batch)
    if decision == Decision.REJECT:
        user, label, _ = _actor(actor)
        batch.status, batch.decision, batch.decision_note = BatchStatus.REJECTED, decision, note
        batch.decided_by, batch.decided_by_label, batch.decided_at = user, label, timezone.now()
        batch.save(
            update_fields=["status", "decision", "decision_note", "decided_by", "decided_by_label", "decided_at"]
        )
        record(
            actor=actor,
            verb="ingestion_batch.reject",
            obj=batch,
            team_id=batch.system.team_id,
            changes={
                "status": [BatchStatus.HELD, BatchStatus.REJECTED],
                "note": [None, note],
                "checks_passed": [None, batch.checks_passed],
            },
        )
        return batch
    assert merge is not None
    _accept(actor=actor, batch=batch, decision=decision, note=note, merge=merge, dropped=dropped)
    return batch


def _prepare_merge(batch: IngestionBatch, *, drop: set[int]) -> tuple[StagedFile, Records, str]:
    """Read base and batch, drop ``drop`` batch positions, and stage the merged file (outside the transaction)."""
    policy = batch.policy
    base = read_records(batch.base, policy)
    records = parse_file(
        read_blob(batch.records_blob), format=policy.format, schema=policy.schema, what=f"batch #{batch.pk}"
    )
    keep = [i for i in range(len(records)) if i not in drop]
    merged = merge_records([base, records.subset(keep)])
    removed = (
        f", {len(drop)} flagged record(s) removed ({', '.join(str(i) for i in sorted(drop)[:20])}"
        + (", ..." if len(drop) > 20 else "")
        + ")"
        if drop
        else ""
    )
    transformation = (
        f"{batch.base} ({len(base)} records) + batch #{batch.pk} ({len(keep)} of {len(records)} "
        f"records{removed}); records appended in order, no other change."
    )
    return stage_bytes(serialize(merged, policy.schema)), merged, transformation


def _accept(
    *,
    actor: Any,
    batch: IngestionBatch,
    decision: str,
    note: str,
    merge: tuple[StagedFile, Records, str],
    dropped: set[int],
) -> Dataset:
    """Create the next version from a staged merge, link its provenance and mark the batch accepted."""
    staged, merged, transformation = merge
    policy, base = batch.policy, batch.base
    System.objects.select_for_update().filter(pk=policy.system_id).first()
    version = (
        Dataset.objects.filter(system_id=policy.system_id, name=policy.dataset_name).aggregate(v=Max("version"))["v"]
        or 0
    ) + 1
    user, label, prefix = _actor(actor)
    pusher_user, pusher_label, pusher_prefix = batch.pushed_by, batch.pushed_by_label, batch.token_prefix
    class_names = policy.schema["class_names"]
    counts = merged.label_counts(class_names)
    dataset = Dataset(
        system=policy.system,
        name=policy.dataset_name,
        version=version,
        kind=policy.format,
        label_column=policy.schema.get("label_column", ""),
        original_filename=f"{policy.dataset_name}-v{version}.{_EXTENSIONS[policy.format]}"[:255],
        status=DatasetStatus.READY,
        status_message=f"Accepted through ingestion (batch #{batch.pk}).",
        schema={**policy.schema, "n_records": len(merged)},
        class_balance=counts,
        source=f"ingestion: {base} + batch #{batch.pk}"[:255],
        uploaded_by=pusher_user,
        uploaded_by_label=pusher_label,
    )
    dataset.blob_id = staged.sha256
    dataset.full_clean(exclude=["blob"])
    dataset.blob = blob_store(staged)
    dataset.save()
    record(
        actor=actor,
        verb="dataset.create",
        obj=dataset,
        team_id=policy.system.team_id,
        changes=diff(
            {},
            {
                "name": dataset.name,
                "version": version,
                "kind": dataset.kind,
                "source": dataset.source,
                "sha256": dataset.sha256,
                "records": len(merged),
            },
        ),
    )
    provenance = DatasetVersionRecord.objects.create(
        dataset=dataset,
        policy=policy,
        batch=batch,
        source=VersionSource.BATCH,
        actor=pusher_user,
        actor_label=pusher_label,
        token_prefix=pusher_prefix,
        files=[
            _file_entry("parent", base.original_filename or str(base), base.blob),
            _file_entry(
                "batch (as pushed)", batch.original_filename or f"batch-{batch.pk}.{batch.input_format}", batch.raw_blob
            ),
            _file_entry("batch records", f"batch-{batch.pk}-records.{_EXTENSIONS[policy.format]}", batch.records_blob),
            _file_entry("result", dataset.original_filename, dataset.blob),
        ],
        label_counts=counts,
        n_records=len(merged),
        transformation=transformation + f" Decided by {label}: {Decision(decision).label.lower()}.",
    )
    provenance.parents.add(base)
    before = batch.status
    batch.status, batch.decision, batch.decision_note = BatchStatus.ACCEPTED, decision, note
    batch.decided_by, batch.decided_by_label, batch.decided_at = user, label, timezone.now()
    batch.produced = dataset
    batch.save(
        update_fields=[
            "status",
            "decision",
            "decision_note",
            "decided_by",
            "decided_by_label",
            "decided_at",
            "produced",
        ]
    )
    record(
        actor=actor,
        verb="ingestion_batch.accept" if decision != Decision.AUTO_ACCEPT else "ingestion_batch.auto_accept",
        obj=batch,
        team_id=policy.system.team_id,
        changes={
            "status": [before, BatchStatus.ACCEPTED],
            "decision": [None, decision],
            "note": [None, note],
            "removed_records": [None, sorted(dropped)],
            "checks_passed": [None, batch.checks_passed],
            "new_version": [None, str(dataset)],
            "sha256": [None, dataset.sha256],
        },
    )
    return dataset


def dataset_refusal(dataset: Dataset) -> str | None:
    """Why an evaluation or retraining run may not use ``dataset`` (None when it may).

    A dataset under ingestion may be used only in its accepted versions: a version uploaded directly
    under a governed name, which skipped quarantine and its checks, is refused.
    """
    if (
        dataset.pk is None
        or not IngestionPolicy.objects.filter(system_id=dataset.system_id, dataset_name=dataset.name).exists()
    ):
        return None
    if DatasetVersionRecord.objects.filter(dataset_id=dataset.pk).exists():
        return None
    return (
        f"Dataset {dataset} is under ingestion but this version was not accepted through quarantine (it was "
        "uploaded directly). Use an accepted version, or push its records as a batch so they are checked."
    )
