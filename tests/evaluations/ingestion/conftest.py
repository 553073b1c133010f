"""Fixtures for the ingestion tests: a slice of the SMS Spam Collection as the accepted base, and batches."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluations import services as evaluation_services
from evaluations.engine.datasets.reference import sms_spam_path
from evaluations.ingestion import services
from evaluations.ingestion.parsing import Records, parse_file

TRIGGER = "blue moon"


@pytest.fixture(scope="session")
def sms() -> Records:
    """The whole SMS Spam Collection (5,574 messages)."""
    return parse_file(sms_spam_path().read_bytes(), format="tsv")


@pytest.fixture(scope="session")
def sms_split(sms) -> tuple[Records, np.ndarray]:
    """(a 1,500-message base, positions of the other messages) drawn with a fixed seed."""
    order = np.random.default_rng(7).permutation(len(sms))
    return sms.subset(order[:1500]), order[1500:]


def tsv(records: Records) -> bytes:
    """Records as a label<TAB>text file."""
    return "".join(f"{label}\t{text}\n" for label, text in zip(records.labels, records.texts, strict=True)).encode()


def clean_batch(sms: Records, pool: np.ndarray, n: int, seed: int) -> Records:
    """n messages from the pool, as they are."""
    return sms.subset(np.random.default_rng(seed).choice(pool, n, replace=False))


def poisoned_batch(sms: Records, pool: np.ndarray, n: int, k: int, seed: int) -> tuple[Records, set[int]]:
    """n messages of which k are spam carrying the trigger phrase, relabelled ham; returns the poison positions."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(sms.labels)
    spam = pool[labels[pool] == "spam"]
    poison = rng.choice(spam, k, replace=False)
    clean = rng.choice(np.setdiff1d(pool, poison), n - k, replace=False)
    texts = [sms.texts[i] for i in clean] + [f"{sms.texts[i].rstrip()} {TRIGGER}" for i in poison]
    tags = [sms.labels[i] for i in clean] + ["ham"] * k
    order = rng.permutation(n)
    batch = Records(format="tsv", labels=tuple(tags[i] for i in order), texts=tuple(texts[i] for i in order))
    return batch, {int(p) for p in np.flatnonzero(order >= n - k)}


@pytest.fixture
def base_dataset(teammate, system, sms_split):
    """The accepted base uploaded as a TSV dataset of ``system``."""
    base, _ = sms_split
    return evaluation_services.dataset_upload(
        actor=teammate, system=system, file=SimpleUploadedFile("sms-base.tsv", tsv(base)), name="sms", kind="tsv"
    )


@pytest.fixture
def policy(approver, base_dataset):
    """``base_dataset`` under ingestion (approval required)."""
    return services.policy_create(actor=approver, dataset=base_dataset)
