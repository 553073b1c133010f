"""Checks shared by every kind of data: label shift, duplicate and conflict rates, KS, embedding outliers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from evaluations.ingestion.checks.config import ChecksConfig
from evaluations.ingestion.checks.report import FAIL, PASS, SKIP, CheckResult

__all__ = [
    "duplicate_checks",
    "embedding_outlier_check",
    "knn_outlier_scores",
    "label_shift_check",
    "rate_test",
]


def label_shift_check(
    base_labels: np.ndarray, batch_labels: np.ndarray, class_names: Sequence[str], *, alpha: float, config: ChecksConfig
) -> CheckResult:
    """Chi-square goodness of fit of the batch's label counts to the accepted data's label proportions."""
    k = len(class_names)
    base_counts = np.bincount(base_labels, minlength=k).astype(float)
    batch_counts = np.bincount(batch_labels, minlength=k).astype(float)
    n = batch_counts.sum()
    # Add-half smoothing keeps a class absent from the base from giving an infinite statistic.
    expected_p = (base_counts + 0.5) / (base_counts.sum() + 0.5 * k)
    statistic, p_value = stats.chisquare(batch_counts, n * expected_p)
    shift = 0.5 * float(np.abs(batch_counts / n - base_counts / base_counts.sum()).sum())
    failed = p_value < alpha and shift >= config.min_shift
    return CheckResult(
        name="label_shift",
        title="Label distribution shift",
        verdict=FAIL if failed else PASS,
        statistic=float(p_value),
        threshold=alpha,
        rule=f"fails when the chi-square p < {alpha:.2g} and the total-variation distance >= {config.min_shift:g}",
        detail=f"chi-square {statistic:.2f} on {k - 1} df, p = {p_value:.3g}; total-variation distance {shift:.3f}.",
        data={
            "class_names": list(class_names),
            "base_fraction": (base_counts / base_counts.sum()).round(4).tolist(),
            "batch_fraction": (batch_counts / n).round(4).tolist(),
            "batch_counts": batch_counts.astype(int).tolist(),
            "chi_square": float(statistic),
            "tv_distance": shift,
        },
    )


def rate_test(hits: int, n: int, p0: float, *, alpha: float, floor: float, min_hits: int = 1) -> tuple[float, bool]:
    """One-sided binomial test of ``hits`` of ``n`` against the rate ``p0``; (p-value, fails)."""
    p0 = min(max(p0, 1.0 / (10 * max(n, 1))), 1.0)
    p_value = float(stats.binom.sf(hits - 1, n, p0)) if hits else 1.0
    return p_value, bool(p_value < alpha and hits / n - p0 >= floor and hits >= min_hits)


def duplicate_checks(
    *,
    batch_dup: np.ndarray,
    batch_conflict: np.ndarray,
    base_dup_rate: float,
    base_conflict_rate: float,
    alpha: float,
    config: ChecksConfig,
    how: str,
) -> list[CheckResult]:
    """Duplicates of accepted records, and duplicates that carry another label, tested against the base's own rates.

    ``batch_dup``/``batch_conflict`` are per-record booleans; the base rates are leave-one-out rates of the
    accepted data against itself, so a batch from the same distribution has the same expected rate.
    """
    n = batch_dup.size
    results = []
    for name, title, hits_mask, p0, floor, min_hits in (
        (
            "duplicates",
            "Duplicates and near-duplicates of accepted data",
            batch_dup,
            base_dup_rate,
            config.min_duplicate_excess,
            1,
        ),
        (
            "label_conflicts",
            "Near-copies of accepted records with another label",
            batch_conflict,
            base_conflict_rate,
            config.min_conflict_rate,
            3,
        ),
    ):
        hits = int(hits_mask.sum())
        p_value, failed = rate_test(hits, n, p0, alpha=alpha, floor=floor, min_hits=min_hits)
        results.append(
            CheckResult(
                name=name,
                title=title,
                verdict=FAIL if failed else PASS,
                statistic=p_value,
                threshold=alpha,
                rule=f"fails when the binomial p < {alpha:.2g} against the accepted data's own rate and the "
                f"excess rate >= {floor:g}",
                detail=f"{hits} of {n} records ({hits / n:.1%}) vs {p0:.1%} expected from the accepted data "
                f"({how}); p = {p_value:.3g}.",
                flagged=tuple(int(i) for i in np.flatnonzero(hits_mask)),
                data={"hits": hits, "rate": hits / n, "expected_rate": p0},
            )
        )
    return results


def ks_check(
    name: str, title: str, base: np.ndarray, batch: np.ndarray, *, alpha: float, config: ChecksConfig, what: str
) -> CheckResult:
    """Two-sample Kolmogorov-Smirnov test of one numeric distribution."""
    result = stats.ks_2samp(batch, base)
    failed = result.pvalue < alpha and result.statistic >= config.min_ks_distance
    return CheckResult(
        name=name,
        title=title,
        verdict=FAIL if failed else PASS,
        statistic=float(result.pvalue),
        threshold=alpha,
        rule=f"fails when the KS p < {alpha:.2g} and the KS distance >= {config.min_ks_distance:g}",
        detail=f"{what}: KS distance {result.statistic:.3f}, p = {result.pvalue:.3g}; median batch "
        f"{np.median(batch):.1f} vs accepted {np.median(base):.1f}.",
        data={
            "ks": float(result.statistic),
            "batch_median": float(np.median(batch)),
            "base_median": float(np.median(base)),
        },
    )


def knn_outlier_scores(
    query: np.ndarray,
    query_labels: np.ndarray,
    reference: np.ndarray,
    reference_labels: np.ndarray,
    *,
    k: int,
    leave_one_out: bool = False,
) -> np.ndarray:
    """1 - mean cosine similarity to the k nearest reference rows of the same label (rows are unit vectors).

    With ``leave_one_out`` the query is the reference itself and each row's own similarity is skipped.
    """
    scores = np.zeros(query.shape[0])
    for label in np.unique(query_labels):
        rows = np.flatnonzero(query_labels == label)
        ref = reference[reference_labels == label]
        if ref.shape[0] == 0:
            scores[rows] = 1.0
            continue
        sims = query[rows] @ ref.T
        if leave_one_out:
            sims[np.arange(rows.size), np.arange(rows.size)] = -np.inf
        kk = min(k, ref.shape[0] - (1 if leave_one_out else 0))
        if kk < 1:
            scores[rows] = 1.0
            continue
        top = -np.partition(-sims, kk - 1, axis=1)[:, :kk]
        scores[rows] = 1.0 - top.mean(axis=1)
    return scores


def embedding_outlier_check(
    base: np.ndarray,
    base_labels: np.ndarray,
    batch: np.ndarray,
    batch_labels: np.ndarray,
    *,
    alpha: float,
    config: ChecksConfig,
    space: str,
) -> CheckResult:
    """Records far from accepted records of their own label, against the accepted data's own score quantile.

    Each class's threshold is the ``outlier_quantile`` of its leave-one-out scores in the accepted data, so
    a batch from the same distribution has about ``1 - outlier_quantile`` of its records above it.
    """
    if base.shape[0] < 2 * config.neighbours:
        return CheckResult(
            name="embedding_outliers",
            title="Embedding-space outliers",
            verdict=SKIP,
            statistic=None,
            threshold=None,
            rule="needs at least 2k accepted records",
            detail=f"Only {base.shape[0]} accepted records; too few for a k-nearest-neighbour score.",
        )
    base_scores = knn_outlier_scores(base, base_labels, base, base_labels, k=config.neighbours, leave_one_out=True)
    batch_scores = knn_outlier_scores(batch, batch_labels, base, base_labels, k=config.neighbours)
    above = np.zeros(batch.shape[0], dtype=bool)
    thresholds = {}
    for label in np.unique(batch_labels):
        own = base_scores[base_labels == label]
        cut = float(np.quantile(own, config.outlier_quantile)) if own.size else 0.0
        thresholds[int(label)] = cut
        rows = batch_labels == label
        above[rows] = batch_scores[rows] > cut
    p0 = 1.0 - config.outlier_quantile
    hits = int(above.sum())
    p_value, failed = rate_test(hits, batch.shape[0], p0, alpha=alpha, floor=config.min_excess_rate)
    return CheckResult(
        name="embedding_outliers",
        title="Embedding-space outliers",
        verdict=FAIL if failed else PASS,
        statistic=p_value,
        threshold=alpha,
        rule=f"fails when the binomial p < {alpha:.2g} against {p0:.0%} and the excess rate >= "
        f"{config.min_excess_rate:g}",
        detail=f"{hits} of {batch.shape[0]} records ({hits / batch.shape[0]:.1%}) lie beyond the accepted data's "
        f"{config.outlier_quantile:.0%} quantile of {config.neighbours}-NN distance within their class ({space}); "
        f"p = {p_value:.3g}.",
        flagged=tuple(int(i) for i in np.flatnonzero(above)),
        data={
            "hits": hits,
            "rate": hits / batch.shape[0],
            "expected_rate": p0,
            "thresholds": thresholds,
            "scores": [round(float(s), 4) for s in batch_scores],
        },
    )
