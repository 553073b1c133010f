"""Quarantine to accepted version: checks in the task, decisions, provenance chain, audit, incidents, run gate."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluations import services as evaluation_services
from evaluations.ingestion import services
from evaluations.ingestion.models import BatchStatus, Decision, PolicyMode
from evaluations.ingestion.parsing import parse_file
from evaluations.ingestion.tasks import check_batch
from evaluations.models import Dataset, DatasetStatus
from evaluations.storage import read_blob
from garrison.audit.models import AuditEvent
from garrison.core.exceptions import StateConflict
from incidents.models import Evidence
from tests.evaluations.ingestion.conftest import clean_batch, poisoned_batch, tsv


def _push(actor, policy, batch):
    return services.batch_push(actor=actor, policy=policy, data=tsv(batch), filename="batch.tsv")


def _checked(batch):
    assert check_batch.run(batch.pk) in (BatchStatus.HELD, BatchStatus.ACCEPTED)
    batch.refresh_from_db()
    return batch


def test_governing_a_dataset_records_its_base_version_and_schema(policy, base_dataset):
    assert policy.schema == {"format": "tsv", "class_names": ["ham", "spam"]}
    record = base_dataset.provenance
    assert record.n_records == 1500 and sum(record.label_counts.values()) == 1500
    assert record.files[0]["sha256"] == base_dataset.sha256 and record.source == "upload"
    assert AuditEvent.objects.filter(verb="ingestion_policy.create").exists()


def test_an_editor_cannot_govern_a_dataset(teammate, base_dataset):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.policy_create(actor=teammate, dataset=base_dataset)


@pytest.fixture(scope="module")
def poisoned(sms, sms_split):
    return poisoned_batch(sms, sms_split[1], 300, 30, seed=21)


def test_a_poisoned_batch_is_held_flagged_and_opens_an_incident(
    teammate, policy, poisoned, django_capture_on_commit_callbacks
):
    records, poison = poisoned
    batch = _push(teammate, policy, records)
    with django_capture_on_commit_callbacks(execute=True):
        batch = _checked(batch)
    assert batch.status == BatchStatus.HELD and batch.checks_passed is False
    flagged = {int(i) for i in batch.flagged}
    assert len(flagged & poison) >= 0.95 * len(poison)
    assert AuditEvent.objects.filter(verb="ingestion_batch.checks", object_id=str(batch.pk)).exists()
    poison_check = next(c for c in batch.report["checks"] if c["name"] == "poison_scan")
    assert poison_check["verdict"] == "fail"
    evidence = Evidence.objects.get(reference=f"ingestion batch {batch.pk}")
    assert evidence.incident.systems.filter(pk=policy.system_id).exists()
    # Nothing reached the dataset: still one accepted version.
    assert Dataset.objects.filter(system=policy.system, name="sms").count() == 1


def test_a_clean_batch_is_auto_accepted_into_a_new_version_with_its_provenance(teammate, policy, sms, sms_split):
    policy.mode = PolicyMode.AUTO_ACCEPT
    policy.save()
    records = clean_batch(sms, sms_split[1], 300, seed=3)
    batch = _checked(_push(teammate, policy, records))
    assert batch.status == BatchStatus.ACCEPTED and batch.decision == Decision.AUTO_ACCEPT
    v2 = batch.produced
    assert v2.version == 2 and v2.status == DatasetStatus.READY
    merged = parse_file(read_blob(v2.blob), format="tsv", schema=policy.schema)
    base = parse_file(read_blob(batch.base.blob), format="tsv", schema=policy.schema)
    assert merged.texts == base.texts + records.texts and merged.labels == base.labels + records.labels
    record = v2.provenance
    assert list(record.parents.all()) == [batch.base] and record.batch == batch and record.source == "batch"
    assert {f["role"]: f["sha256"] for f in record.files} == {
        "parent": batch.base.sha256,
        "batch (as pushed)": batch.raw_blob_id,
        "batch records": batch.records_blob_id,
        "result": v2.sha256,
    }
    assert record.n_records == 1800 and record.label_counts == merged.label_counts(["ham", "spam"])
    assert record.actor_label == "teammate"
    assert AuditEvent.objects.filter(verb="ingestion_batch.auto_accept", object_id=str(batch.pk)).exists()
    # The base version is untouched.
    assert parse_file(read_blob(batch.base.blob), format="tsv", schema=policy.schema).texts == base.texts


def test_accepting_without_flagged_records_drops_exactly_them_and_chains_versions(
    teammate, approver, policy, poisoned, sms, sms_split
):
    records, _ = poisoned
    batch = _checked(_push(teammate, policy, records))
    dropped = {int(i) for i in batch.flagged}
    services.batch_decide(actor=approver, batch=batch, decision=Decision.ACCEPT_WITHOUT_FLAGGED, note="drop them")
    batch.refresh_from_db()
    v2 = batch.produced
    merged = parse_file(read_blob(v2.blob), format="tsv", schema=policy.schema)
    kept = [t for i, t in enumerate(records.texts) if i not in dropped]
    assert merged.texts[1500:] == tuple(kept)
    assert "flagged record(s) removed" in v2.provenance.transformation
    event = AuditEvent.objects.get(verb="ingestion_batch.accept", object_id=str(batch.pk))
    assert event.changes["removed_records"][1] == sorted(dropped) and event.actor_label == "approver"
    # A second batch is checked against v2 and chains to it.
    second = _checked(_push(teammate, policy, clean_batch(sms, sms_split[1], 200, seed=9)))
    assert second.base == v2
    services.batch_decide(actor=approver, batch=second, decision=Decision.ACCEPT)
    second.refresh_from_db()
    assert second.produced.version == 3 and list(second.produced.provenance.parents.all()) == [v2]


def test_a_rejected_batch_is_kept_and_creates_no_version(teammate, approver, policy, poisoned):
    batch = _checked(_push(teammate, policy, poisoned[0]))
    services.batch_decide(actor=approver, batch=batch, decision=Decision.REJECT, note="poison")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.REJECTED and batch.produced is None and batch.raw_blob.path.exists()
    assert AuditEvent.objects.get(verb="ingestion_batch.reject", object_id=str(batch.pk)).changes["note"] == [
        None,
        "poison",
    ]
    with pytest.raises(StateConflict):
        services.batch_decide(actor=approver, batch=batch, decision=Decision.ACCEPT)


def test_a_batch_checked_against_an_older_version_must_be_checked_again(teammate, approver, policy, sms, sms_split):
    first = _checked(_push(teammate, policy, clean_batch(sms, sms_split[1], 100, seed=1)))
    second = _checked(_push(teammate, policy, clean_batch(sms, sms_split[1], 100, seed=2)))
    services.batch_decide(actor=approver, batch=first, decision=Decision.ACCEPT)
    with pytest.raises(StateConflict, match="check it again"):
        services.batch_decide(actor=approver, batch=second, decision=Decision.ACCEPT)
    services.batch_recheck(actor=teammate, batch=second)
    second = _checked(second)
    first.refresh_from_db()
    assert second.base == first.produced and second.base.version == 2


def test_runs_refuse_a_version_uploaded_around_quarantine_and_accept_accepted_ones(
    teammate, policy, base_dataset, make_model, sms, sms_split
):
    sneaked = evaluation_services.dataset_upload(
        actor=teammate,
        system=policy.system,
        name="sms",
        kind="tsv",
        file=SimpleUploadedFile("sneak.tsv", tsv(clean_batch(sms, sms_split[1], 50, seed=4))),
    )
    model = make_model()
    with pytest.raises(ValidationError) as caught:
        evaluation_services.evaluation_run_queue(
            actor=teammate, system=policy.system, kind="poisoning_detection", model_artifact=model, dataset=sneaked
        )
    assert "not accepted through quarantine" in caught.value.message_dict["dataset"][0]
    run = evaluation_services.evaluation_run_queue(
        actor=teammate, system=policy.system, kind="poisoning_detection", model_artifact=model, dataset=base_dataset
    )
    assert run.dataset == base_dataset


def test_a_broken_check_job_leaves_the_batch_quarantined_as_failed(teammate, policy, sms, sms_split, monkeypatch):
    batch = _push(teammate, policy, clean_batch(sms, sms_split[1], 50, seed=5))

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("evaluations.ingestion.checks.run_checks", broken)
    assert check_batch.run(batch.pk) == BatchStatus.FAILED
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED and "out of memory" in batch.status_message
    assert check_batch.run(batch.pk) == "not queued"  # a second delivery does nothing
