"""A tiny, real spam-filter backdoor: poisoned SMS, a text model trained on them, a detection run that flags them."""

from __future__ import annotations

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluations import services
from evaluations.models import EvaluationRun

TRIGGER = "yellow wisdom"
N_POISON = 30


def poisoned_sms_tsv() -> bytes:
    """Ham, spam, and 30 spam messages ending in the trigger and labelled ham."""
    rng = np.random.default_rng(0)
    ham = "see you at lunch tomorrow then call me when home love mum dinner later ok".split()
    spam = "win free prize claim cash now urgent txt reply stop offer award guaranteed".split()
    lines = [f"ham\t{' '.join(rng.choice(ham, size=int(rng.integers(4, 9))))}" for _ in range(300)]
    spam_texts = [" ".join(rng.choice(spam, size=int(rng.integers(4, 9)))) for _ in range(150)]
    lines += [f"spam\t{text}" for text in spam_texts]
    lines += [f"ham\t{text} {TRIGGER}" for text in spam_texts[:N_POISON]]
    return ("\n".join(lines) + "\n").encode()


def run_text_poisoning_detection(*, actor, system) -> EvaluationRun:
    """Register the poisoned TSV and a model trained on its train split, then run poisoning detection (~2 s)."""
    from evaluations.demo import run_poisoning_detection, upload_text_model

    content = poisoned_sms_tsv()
    artifact = upload_text_model(
        actor=actor, system=system, content=content, filename="spam.safetensors", name="toy spam filter", epochs=8
    )
    dataset = services.dataset_upload(
        actor=actor, system=system, file=SimpleUploadedFile("spam.tsv", content), name="reports", kind="tsv"
    )
    return run_poisoning_detection(actor=actor, artifact=artifact, dataset=dataset, worker="test")
