"""Candidate words and phrases of the token-trigger detector: enumeration, naming, the poison-only test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluations.engine.datasets.text import PAD_ID

__all__ = ["Units", "enumerate_units", "exclusive", "name_flagged", "phrase"]


@dataclass(frozen=True)
class Units:
    """Every (candidate, carrier) pair: n-gram token ids ``(M, max_ngram)`` (0-padded), lengths, samples."""

    grams: np.ndarray
    lengths: np.ndarray
    unit_of_pair: np.ndarray
    sample_of_pair: np.ndarray


def enumerate_units(x: np.ndarray, max_ngram: int) -> Units:
    """The distinct n-grams (n = 1..max_ngram, no padding inside) of each row of ``x`` and who carries them."""
    n_rows, length = x.shape
    rows_list, samples = [], []
    for n in range(1, min(max_ngram, length) + 1):
        windows = np.lib.stride_tricks.sliding_window_view(x, n, axis=1).reshape(-1, n)
        owner = np.repeat(np.arange(n_rows), length - n + 1)
        valid = np.all(windows != PAD_ID, axis=1)
        padded = np.zeros((int(valid.sum()), max_ngram), dtype=np.int64)
        padded[:, :n] = windows[valid]
        rows_list.append(padded)
        samples.append(owner[valid])
    if not rows_list or not sum(r.shape[0] for r in rows_list):
        empty = np.zeros(0, dtype=np.int64)
        return Units(np.zeros((0, max_ngram), dtype=np.int64), empty, empty, empty)
    # Padding (0) never occurs inside an n-gram, so the zero-padded row identifies the n-gram and its length.
    pairs = np.unique(np.column_stack([np.concatenate(rows_list), np.concatenate(samples)]), axis=0)
    grams, unit_of_pair = np.unique(pairs[:, :max_ngram], axis=0, return_inverse=True)
    return Units(grams, (grams != PAD_ID).sum(axis=1), unit_of_pair.reshape(-1), pairs[:, max_ngram])


def phrase(gram: np.ndarray, length: int, words: Sequence[str] | None) -> str:
    """The words of an n-gram (``#id`` for ids without a word)."""
    ids = gram[:length].tolist()
    if words is None:
        return " ".join(f"#{i}" for i in ids)
    return " ".join(words[i] if i < len(words) else f"#{i}" for i in ids)


def name_flagged(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flagged candidates to name: longest first, dropping a sub-phrase of a named phrase that flips no more."""
    named: list[dict[str, Any]] = []
    for cand in sorted(candidates, key=lambda c: (-c["length"], -c["flips"], c["phrase"])):
        inside = any(
            f" {cand['phrase']} " in f" {kept['phrase']} " and cand["flips"] <= 1.1 * kept["flips"] for kept in named
        )
        if not inside:
            named.append(cand)
    return sorted(named, key=lambda c: (-c["flips"], -c["length"], c["phrase"]))


def exclusive(
    index: np.ndarray, lost: np.ndarray, destination: np.ndarray, carriers: np.ndarray, recall: np.ndarray, alpha: float
) -> np.ndarray:
    """Per candidate: could every carrier be poison? Poison made from class ``d`` is left outside the label
    without the trigger about as often as the judge recognises class ``d`` (its recall); the hypothesis is
    kept unless the carriers left outside are fewer than that at one-sided binomial level ``alpha``."""
    from scipy.stats import binom

    lost_counts = np.bincount(index, weights=lost, minlength=carriers.size)
    n_dest = recall.size
    votes = np.zeros((carriers.size, n_dest))
    np.add.at(votes, (index[lost], destination[lost]), 1.0)
    rate = recall[votes.argmax(axis=1)]
    return (lost_counts > 0) & (binom.cdf(lost_counts, carriers, rate) >= alpha)
