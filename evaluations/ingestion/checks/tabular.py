"""Checks of a tabular (CSV) or tensor (npz) batch: duplicates, label conflicts, per-feature KS and PSI,
and outliers in a standardized (PCA for tensors) feature space."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize

from evaluations.ingestion.checks.common import duplicate_checks, embedding_outlier_check
from evaluations.ingestion.checks.config import ChecksConfig
from evaluations.ingestion.checks.report import FAIL, PASS, SKIP, CheckResult

__all__ = ["psi", "tabular_checks"]


def psi(base: np.ndarray, batch: np.ndarray, bins: int = 10) -> float | None:
    """Population stability index of one feature over the base's quantile bins (None for a constant feature)."""
    edges = np.unique(np.quantile(base, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:
        return None
    inner = edges[1:-1]
    expected = np.bincount(np.searchsorted(inner, base, side="right"), minlength=inner.size + 1) / base.size
    actual = np.bincount(np.searchsorted(inner, batch, side="right"), minlength=inner.size + 1) / batch.size
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _duplicates(
    query: np.ndarray, query_labels: np.ndarray, ref: np.ndarray, ref_labels: np.ndarray, *, radius: float, same: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per query row: a reference row within ``radius`` (exact copies included); one with another label."""
    index = NearestNeighbors(radius=max(radius, 1e-12)).fit(ref)
    neighbours = index.radius_neighbors(query, return_distance=False)
    dup = np.zeros(query.shape[0], dtype=bool)
    conflict = np.zeros(query.shape[0], dtype=bool)
    for row, found in enumerate(neighbours):
        if same:
            found = found[found != row]
        if found.size:
            dup[row] = True
            conflict[row] = bool((ref_labels[found] != query_labels[row]).any())
    return dup, conflict


def tabular_checks(
    base_x: np.ndarray,
    base_y: np.ndarray,
    batch_x: np.ndarray,
    batch_y: np.ndarray,
    *,
    config: ChecksConfig,
    alpha: float,
    seed: int,
    tensor: bool = False,
    feature_names: Sequence[str] | None = None,
) -> list[CheckResult]:
    """Duplicates, label conflicts, per-feature KS and PSI, outliers. Tensors are compared on PCA components."""
    base = base_x.reshape(base_x.shape[0], -1).astype(np.float64)
    batch = batch_x.reshape(batch_x.shape[0], -1).astype(np.float64)
    mean, std = base.mean(axis=0), base.std(axis=0)
    std[std == 0] = 1.0
    base_z, batch_z = (base - mean) / std, (batch - mean) / std
    d = base_z.shape[1]
    radius = config.near_duplicate_distance * np.sqrt(d)
    base_dup, base_conflict = _duplicates(base_z, base_y, base_z, base_y, radius=radius, same=True)
    batch_dup, batch_conflict = _duplicates(batch_z, batch_y, base_z, base_y, radius=radius, same=False)
    results = duplicate_checks(
        batch_dup=batch_dup,
        batch_conflict=batch_conflict,
        base_dup_rate=float(base_dup.mean()),
        base_conflict_rate=float(base_conflict.mean()),
        alpha=alpha,
        config=config,
        how=f"standardized distance <= {config.near_duplicate_distance:g} x sqrt({d})",
    )
    components = min(config.embedding_dim, d, base_z.shape[0] - 1)
    if tensor or d > config.embedding_dim:
        pca = PCA(n_components=components, random_state=seed).fit(base_z)
        base_f, batch_f = pca.transform(base_z), pca.transform(batch_z)
        names = [f"PC{i + 1}" for i in range(components)]
        space = f"{components} principal components of the standardized inputs"
    else:
        base_f, batch_f = base_z, batch_z
        names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(d)]
        space = "standardized features"
    results += _feature_tests(base_f, batch_f, names, config=config, alpha=alpha, space=space)
    results.append(
        embedding_outlier_check(
            normalize(base_f), base_y, normalize(batch_f), batch_y, alpha=alpha, config=config, space=space
        )
    )
    return results


def _feature_tests(
    base: np.ndarray, batch: np.ndarray, names: list[str], *, config: ChecksConfig, alpha: float, space: str
) -> list[CheckResult]:
    """Per-feature KS (Bonferroni over features) and PSI (the customary fixed threshold)."""
    rows = []
    for j, name in enumerate(names):
        test = stats.ks_2samp(batch[:, j], base[:, j])
        rows.append(
            {"feature": name, "ks": float(test.statistic), "p": float(test.pvalue), "psi": psi(base[:, j], batch[:, j])}
        )
    cut = alpha / len(rows)
    ks_bad = [r for r in rows if r["p"] < cut and r["ks"] >= config.min_ks_distance]
    psi_values = [r["psi"] for r in rows if r["psi"] is not None]
    psi_bad = [r for r in rows if r["psi"] is not None and r["psi"] >= config.psi_threshold]
    worst_ks = min(rows, key=lambda r: r["p"])
    table = sorted(rows, key=lambda r: r["p"])[:20]
    ks = CheckResult(
        name="feature_ks",
        title="Per-feature distribution (KS)",
        verdict=FAIL if ks_bad else PASS,
        statistic=min(1.0, worst_ks["p"] * len(rows)),
        threshold=alpha,
        rule=f"fails when a feature's KS p < {alpha:.2g} / {len(rows)} features and its KS distance >= "
        f"{config.min_ks_distance:g}",
        detail=(
            f"{len(ks_bad)} of {len(rows)} features shifted ({space}): "
            + ", ".join(f"{r['feature']} (KS {r['ks']:.2f})" for r in ks_bad[:6])
        )
        if ks_bad
        else f"No feature shifted; the largest KS distance is {worst_ks['ks']:.3f} ({worst_ks['feature']}).",
        data={"features": table},
    )
    if not psi_values:
        psi_result = CheckResult(
            name="feature_psi",
            title="Population stability index",
            verdict=SKIP,
            statistic=None,
            threshold=config.psi_threshold,
            rule="needs a non-constant feature",
            detail="Every feature is constant in the accepted data.",
        )
    else:
        top = max(psi_values)
        psi_result = CheckResult(
            name="feature_psi",
            title="Population stability index",
            verdict=FAIL if psi_bad else PASS,
            statistic=top,
            threshold=config.psi_threshold,
            rule=f"fails when a feature's PSI >= {config.psi_threshold:g} (10 quantile bins of the accepted data)",
            detail=(
                f"{len(psi_bad)} feature(s) with PSI >= {config.psi_threshold:g}: "
                + ", ".join(f"{r['feature']} ({r['psi']:.2f})" for r in psi_bad[:6])
            )
            if psi_bad
            else f"Largest PSI {top:.3f}.",
            data={"features": sorted(rows, key=lambda r: -(r["psi"] or 0))[:20]},
        )
    return [ks, psi_result]
