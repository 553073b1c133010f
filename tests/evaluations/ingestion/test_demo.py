"""The demo: the spam filter's training set under ingestion, one accepted batch and one poisoned batch held."""

from __future__ import annotations

from evaluations.ingestion.demo import seed_ingestion
from evaluations.ingestion.models import BatchStatus, IngestionBatch
from tests.factories import SystemFactory


def test_seed_ingestion_leaves_a_poisoned_batch_held_after_an_accepted_one_and_is_idempotent(owner, approver, team):
    SystemFactory(team=team, name="SMS spam filter", slug="sms-spam-filter")
    held = seed_ingestion(actor=owner, approver=approver, team=team)
    assert held is not None and held.status == BatchStatus.HELD and held.checks_passed is False
    accepted = IngestionBatch.objects.get(status=BatchStatus.ACCEPTED)
    assert accepted.produced.version == 2 and held.base == accepted.produced
    assert len(held.flagged) >= 50
    assert seed_ingestion(actor=owner, approver=approver, team=team) == held
    assert IngestionBatch.objects.count() == 2
