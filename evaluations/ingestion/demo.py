"""Demo data for ingestion: the spam filter's training set under quarantine, one accepted batch, one poisoned one.

``seed_ingestion`` uploads 80% of the SMS Spam Collection (a seeded stratified split) as the spam filter's
training dataset, puts it under ingestion (auto-accept), pushes a clean batch of 500 held-out messages
(checked and auto-accepted into v2) and a batch of 500 in which 50 spam messages carry the trigger phrase
"blue moon" and are relabelled ham (checked and held for review). Checks run synchronously, as a worker
would; no model is trained, so it is cheap enough for ``seed_demo --skip-models``. Running it again
changes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluations.ingestion.models import BatchStatus, IngestionBatch, IngestionPolicy, PolicyMode
from evaluations.ingestion.scenario import poisoned_batch, sms_split, to_tsv
from evaluations.models import Dataset
from garrison.accounts.models import Team
from threatmodel.models import System

SPAM_SYSTEM_SLUG = "sms-spam-filter"
DATASET_NAME = "sms-spam-train"


def seed_ingestion(*, actor: Any, approver: Any, team: Team) -> IngestionBatch | None:
    """Govern the spam filter's training set and leave one poisoned batch held for review (idempotent)."""
    from evaluations import services as evaluation_services
    from evaluations.ingestion import services
    from evaluations.ingestion.execution import run_batch_checks

    system = System.objects.filter(team=team, slug=SPAM_SYSTEM_SLUG).first()
    if system is None:
        return None
    base, pool = sms_split()
    policy = IngestionPolicy.objects.filter(system=system, dataset_name=DATASET_NAME).first()
    if policy is None:
        dataset = Dataset.objects.filter(system=system, name=DATASET_NAME).order_by("version").first()
        if dataset is None:
            dataset = evaluation_services.dataset_upload(
                actor=actor,
                system=system,
                file=SimpleUploadedFile("sms-spam-train.tsv", to_tsv(base)),
                name=DATASET_NAME,
                kind="tsv",
                source="upload: SMS Spam Collection v.1, 80% stratified split (seed 0)",
            )
        policy = services.policy_create(actor=approver, dataset=dataset, mode=PolicyMode.AUTO_ACCEPT)
    if not policy.batches.exists():
        clean = pool.subset(np.random.default_rng(1).choice(len(pool), 500, replace=False))
        batch = services.batch_push(actor=actor, policy=policy, data=to_tsv(clean), filename="nightly-2026-11-28.tsv")
        run_batch_checks(batch.pk)
    held = policy.batches.filter(status=BatchStatus.HELD).first()
    if held is None and not policy.batches.filter(original_filename="nightly-2026-11-29.tsv").exists():
        poisoned, _ = poisoned_batch(pool, n=500, k=50, seed=2)
        held = services.batch_push(actor=actor, policy=policy, data=to_tsv(poisoned), filename="nightly-2026-11-29.tsv")
        run_batch_checks(held.pk)
        held.refresh_from_db()
    return held
