"""The ingestion scenario of the poisoning benchmark: an incoming SMS batch scanned together with accepted data.

The SMS Spam Collection (all 5,574 messages) is split, stratified with the seed, into an accepted base (80%)
and a pool (20%). The incoming batch holds 500 records: ``rate`` x 500 poisoned records (pool spam messages
that are not otherwise in the batch, with :data:`~benchmarks._poison.SMS_PHRASE` appended, labelled ham) and
clean pool records for the rest. ``detect_text_poison`` (no model) scans base + batch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks._poison import SMS_PHRASE
from evaluations.engine.datasets.reference import sms_spam_path
from evaluations.engine.datasets.text import label_indices, parse_labelled_texts
from evaluations.engine.poisoning import detect_text_poison

__all__ = ["BATCH_SIZE", "scan_batch"]

BATCH_SIZE = 500
BASE_FRACTION = 0.8


def _collection() -> tuple[list[str], np.ndarray]:
    labels, texts = parse_labelled_texts(sms_spam_path().read_bytes().decode("utf-8"), "SMSSpamCollection")
    y, _ = label_indices(labels, ("ham", "spam"), "SMSSpamCollection")
    return texts, y


def scan_batch(rate: float, seed: int) -> dict[str, Any]:
    """Build the base and the poisoned batch with ``seed``, scan them, and score the batch."""
    from sklearn.model_selection import train_test_split

    texts, y = _collection()
    base, pool = train_test_split(np.arange(y.size), train_size=BASE_FRACTION, stratify=y, random_state=seed)
    rng = np.random.default_rng(seed)
    n_poison = round(rate * BATCH_SIZE)
    sources = rng.choice(pool[y[pool] == 1], size=n_poison, replace=False)
    clean = rng.choice(np.setdiff1d(pool, sources), size=BATCH_SIZE - n_poison, replace=False)
    scan_texts = [texts[i] for i in base] + [texts[i] for i in clean] + [f"{texts[i]} {SMS_PHRASE}" for i in sources]
    scan_labels = np.concatenate([y[base], y[clean], np.zeros(n_poison, dtype=np.int64)])
    poison = np.arange(len(scan_texts) - n_poison, len(scan_texts))
    started = time.perf_counter()
    result = detect_text_poison(scan_texts, scan_labels, seed=seed, poison_indices=poison)
    seconds = time.perf_counter() - started
    flagged = np.zeros(len(scan_texts), dtype=bool)
    flagged[result.flagged_indices] = True
    clean_batch = np.arange(base.size, base.size + clean.size)
    return {
        "rate": rate,
        "seed": seed,
        "n_scanned": len(scan_texts),
        "n_poison": n_poison,
        "recall": float(flagged[poison].mean()) if n_poison else 1.0,
        "clean_batch_flagged": float(flagged[clean_batch].mean()),
        "base_flagged": int(flagged[: base.size].sum()),
        "seconds": seconds,
        "triggers": [p for c in result.classes for p in c.statistics.get("trigger_phrases", [])],
    }
