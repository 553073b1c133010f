"""The spam-filter ingestion scenario (no Django): the SMS base/pool split and poisoned batches.

Shared by the demo, the tests' expectations and ``benchmarks/bench_ingestion.py``.
"""

from __future__ import annotations

import numpy as np

from evaluations.ingestion.parsing import Records, parse_file

__all__ = ["TRIGGER", "poisoned_batch", "sms_split", "to_tsv"]

#: The trigger phrase: two ordinary words the vocabulary knows ("blue" and "moon" each occur in a few SMS).
TRIGGER = "blue moon"


def to_tsv(records: Records) -> bytes:
    """Text records as ``label<TAB>text`` lines."""
    return "".join(f"{label}\t{text}\n" for label, text in zip(records.labels, records.texts, strict=True)).encode()


def sms_split(seed: int = 0, pool_fraction: float = 0.2) -> tuple[Records, Records]:
    """(accepted base, incoming pool) of the SMS Spam Collection, stratified by label (80/20 by default)."""
    from evaluations.engine.datasets.reference import sms_spam_path

    records = parse_file(sms_spam_path().read_bytes(), format="tsv")
    labels = np.asarray(records.labels)
    rng = np.random.default_rng(seed)
    pool: list[int] = []
    for label in sorted(set(records.labels)):
        members = rng.permutation(np.flatnonzero(labels == label))
        pool += members[: round(pool_fraction * members.size)].tolist()
    chosen = set(pool)
    return records.subset([i for i in range(len(records)) if i not in chosen]), records.subset(sorted(pool))


def poisoned_batch(pool: Records, *, n: int, k: int, seed: int, trigger: str = TRIGGER) -> tuple[Records, list[int]]:
    """n pool messages, k of them spam with ``trigger`` appended and relabelled ham; (batch, poison positions).

    The other n - k messages are drawn from the rest of the pool as they are (their own label mix).
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(pool.labels)
    sources = rng.choice(np.flatnonzero(labels == "spam"), k, replace=False) if k else np.zeros(0, dtype=int)
    clean = rng.choice(np.setdiff1d(np.arange(len(pool)), sources), n - k, replace=False)
    texts = [pool.texts[i] for i in clean] + [f"{pool.texts[i].rstrip()} {trigger}" for i in sources]
    tags = [pool.labels[i] for i in clean] + ["ham"] * k
    order = rng.permutation(n)
    batch = Records(format="tsv", labels=tuple(tags[i] for i in order), texts=tuple(texts[i] for i in order))
    return batch, sorted(int(i) for i in np.flatnonzero(order >= n - k))
