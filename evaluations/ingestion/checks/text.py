"""Checks of a text batch against accepted texts: duplicates, label conflicts, length and token distributions,
rare-token bursts and LSA-space outliers.

Texts are tokenized with the engine's tokenizer (``evaluations.engine.datasets.text.tokenize``), the one
the text models see.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import sparse, stats
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from evaluations.engine.datasets.text import tokenize
from evaluations.ingestion.checks.common import duplicate_checks, embedding_outlier_check, ks_check
from evaluations.ingestion.checks.config import ChecksConfig
from evaluations.ingestion.checks.report import FAIL, PASS, SKIP, CheckResult

__all__ = ["text_checks"]

_CHUNK = 512


def _normal(text: str) -> str:
    return " ".join(tokenize(text))


def _duplicates(
    query: sparse.csr_matrix,
    query_norm: list[str],
    query_labels: np.ndarray,
    ref: sparse.csr_matrix,
    ref_norm: list[str],
    ref_labels: np.ndarray,
    *,
    threshold: float,
    same: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Per query row: has an (near-)duplicate in ``ref``; has one with another label. ``same``: query is ref."""
    n = query.shape[0]
    dup = np.zeros(n, dtype=bool)
    conflict = np.zeros(n, dtype=bool)
    ref_t = ref.T.tocsr()
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        sims = (query[start:stop] @ ref_t).toarray()
        if same:
            sims[np.arange(stop - start), np.arange(start, stop)] = 0.0
        near = sims >= threshold - 1e-9
        dup[start:stop] = near.any(axis=1)
        conflict[start:stop] = (near & (ref_labels[None, :] != query_labels[start:stop, None])).any(axis=1)
    # Texts with no known token have zero vectors; compare them by their normalized form instead.
    labels_of: dict[str, list[int]] = {}
    for index, key in enumerate(ref_norm):
        labels_of.setdefault(key, []).append(index)
    for row, key in enumerate(query_norm):
        others = [i for i in labels_of.get(key, []) if not (same and i == row)]
        if others:
            dup[row] = True
            conflict[row] |= any(ref_labels[i] != query_labels[row] for i in others)
    return dup, conflict


def _token_test(
    base_counts: sparse.csr_matrix,
    batch_counts: sparse.csr_matrix,
    *,
    config: ChecksConfig,
    alpha: float,
    vocabulary: np.ndarray,
    rng: np.random.Generator,
) -> CheckResult:
    """Chi-square homogeneity of frequent-token counts, its dispersion calibrated on resamples of the base."""
    totals = np.asarray(base_counts.sum(axis=0)).ravel()
    top = np.argsort(-totals, kind="stable")[: config.top_tokens]

    def table(a: sparse.csr_matrix, b: sparse.csr_matrix) -> np.ndarray:
        rows = []
        for m in (a, b):
            sums = np.asarray(m.sum(axis=0)).ravel()
            rows.append(np.append(sums[top], sums.sum() - sums[top].sum()))
        return np.asarray(rows, dtype=float) + 0.5

    def chi(a: sparse.csr_matrix, b: sparse.csr_matrix) -> float:
        return float(stats.chi2_contingency(table(a, b), correction=False)[0])

    n_base, n_batch = base_counts.shape[0], batch_counts.shape[0]
    size = min(n_batch, n_base // 3)
    null = []
    for _ in range(config.null_draws):
        pick = rng.permutation(n_base)
        null.append(chi(base_counts[pick[:size]], base_counts[pick[size:]]))
    df = len(top)
    # Words cluster within messages, so counts are over-dispersed; the resamples measure by how much.
    dispersion = max(1.0, float(np.mean(null)) / df)
    observed = chi(batch_counts, base_counts)
    p_value = float(stats.chi2.sf(observed / dispersion, df))
    excess = observed / (dispersion * df)
    tab = table(batch_counts, base_counts)
    expected = tab.sum(axis=0) * tab[0].sum() / tab.sum()
    residual = (tab[0] - expected) / np.sqrt(expected)
    order = np.argsort(-np.abs(residual[:-1]))[:8]
    movers = [{"token": str(vocabulary[top[i]]), "residual": round(float(residual[i]), 2)} for i in order]
    return CheckResult(
        name="token_distribution",
        title="Token distribution",
        verdict=FAIL if p_value < alpha and excess >= config.min_token_excess else PASS,
        statistic=p_value,
        threshold=alpha,
        rule=f"fails when p < {alpha:.2g} and the chi-square is >= {config.min_token_excess:g}x its clean-batch "
        f"expectation ({df} most frequent tokens; dispersion calibrated on {config.null_draws} resamples of the "
        "accepted data)",
        detail=f"chi-square {observed:.0f} on {df} df, dispersion {dispersion:.2f} ({excess:.2f}x the clean-batch "
        f"expectation), p = {p_value:.3g}; biggest "
        f"movers: {', '.join(m['token'] for m in movers[:5])}.",
        data={"chi_square": observed, "dispersion": dispersion, "excess": excess, "movers": movers},
    )


def _burst_test(
    base_docs: sparse.csr_matrix,
    batch_docs: sparse.csr_matrix,
    vocabulary: np.ndarray,
    *,
    config: ChecksConfig,
    alpha: float,
) -> CheckResult:
    """Tokens in far more batch records than their frequency in accepted data predicts (Poisson tail)."""
    n_base, n_batch = base_docs.shape[0], batch_docs.shape[0]
    base_df = np.asarray(base_docs.sum(axis=0)).ravel()
    batch_df = np.asarray(batch_docs.sum(axis=0)).ravel()
    tested = np.flatnonzero(batch_df >= config.burst_min_count)
    if tested.size == 0:
        return CheckResult(
            name="rare_token_bursts",
            title="Rare-token bursts",
            verdict=PASS,
            statistic=1.0,
            threshold=alpha,
            rule=f"fails when a token's Poisson p < {alpha:.2g} / tokens tested",
            detail=f"No token occurs in {config.burst_min_count} or more batch records.",
        )
    expected = n_batch * (base_df[tested] + 0.5) / (n_base + 1)
    p_values = stats.poisson.sf(batch_df[tested] - 1, expected)
    cut = alpha / tested.size
    bursting = tested[p_values < cut]
    order = np.argsort(p_values)[:10]
    worst = [
        {
            "token": str(vocabulary[tested[i]]),
            "batch_records": int(batch_df[tested[i]]),
            "expected": round(float(expected[i]), 2),
            "accepted_records": int(base_df[tested[i]]),
            "p": float(p_values[i]),
        }
        for i in order
    ]
    flagged = np.flatnonzero(np.asarray(batch_docs[:, bursting].sum(axis=1)).ravel() > 0) if bursting.size else []
    min_p = float(p_values.min())
    return CheckResult(
        name="rare_token_bursts",
        title="Rare-token bursts",
        verdict=FAIL if bursting.size else PASS,
        statistic=min_p,
        threshold=cut,
        rule=f"fails when a token in >= {config.burst_min_count} batch records has Poisson p < {alpha:.2g} / "
        f"{tested.size} tokens tested",
        detail=(
            f"{bursting.size} token(s) burst: "
            + ", ".join(
                f"'{w['token']}' in {w['batch_records']} records (expected {w['expected']})"
                for w in worst[: bursting.size][:5]
            )
            if bursting.size
            else f"No burst; the least likely token is '{worst[0]['token']}' (p = {min_p:.3g})."
        ),
        flagged=tuple(int(i) for i in flagged),
        data={"tokens": worst, "bursting": [str(vocabulary[i]) for i in bursting]},
    )


def text_checks(
    base_texts: list[str],
    base_labels: np.ndarray,
    batch_texts: list[str],
    batch_labels: np.ndarray,
    *,
    config: ChecksConfig,
    alpha: float,
    seed: int,
) -> list[CheckResult]:
    """The text-specific checks (duplicates, conflicts, lengths, tokens, bursts, LSA outliers)."""
    rng = np.random.default_rng(seed)
    tfidf = TfidfVectorizer(
        tokenizer=tokenize, lowercase=False, token_pattern=None, ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32
    )
    base_vec = tfidf.fit_transform(base_texts).tocsr()
    batch_vec = tfidf.transform(batch_texts).tocsr()
    base_norm = [_normal(t) for t in base_texts]
    batch_norm = [_normal(t) for t in batch_texts]
    threshold = config.near_duplicate_similarity
    base_dup, base_conflict = _duplicates(
        base_vec, base_norm, base_labels, base_vec, base_norm, base_labels, threshold=threshold, same=True
    )
    batch_dup, batch_conflict = _duplicates(
        batch_vec, batch_norm, batch_labels, base_vec, base_norm, base_labels, threshold=threshold, same=False
    )
    results = duplicate_checks(
        batch_dup=batch_dup,
        batch_conflict=batch_conflict,
        base_dup_rate=float(base_dup.mean()),
        base_conflict_rate=float(base_conflict.mean()),
        alpha=alpha,
        config=config,
        how=f"same tokens, or TF-IDF cosine >= {threshold:g}",
    )
    base_len = np.asarray([len(t.split()) for t in base_norm]) if base_norm else np.zeros(0)
    batch_len = np.asarray([len(t.split()) for t in batch_norm])
    results.append(
        ks_check(
            "text_length",
            "Text length (tokens)",
            base_len,
            batch_len,
            alpha=alpha,
            config=config,
            what="tokens per record",
        )
    )
    counter = CountVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, dtype=np.int32)
    base_counts = counter.fit_transform(base_texts).tocsr()
    batch_counts = counter.transform(batch_texts).tocsr()
    vocabulary = counter.get_feature_names_out()
    results.append(_token_test(base_counts, batch_counts, config=config, alpha=alpha, vocabulary=vocabulary, rng=rng))
    # Bursts need words the accepted data never saw as well: count them on the union vocabulary.
    union = CountVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, binary=True, dtype=np.int32)
    union.fit(list(base_texts) + list(batch_texts))
    results.append(
        _burst_test(
            union.transform(base_texts).tocsr(),
            union.transform(batch_texts).tocsr(),
            union.get_feature_names_out(),
            config=config,
            alpha=alpha,
        )
    )
    dim = min(config.embedding_dim, base_vec.shape[1] - 1, base_vec.shape[0] - 1)
    if dim < 2:
        results.append(
            CheckResult(
                name="embedding_outliers",
                title="Embedding-space outliers",
                verdict=SKIP,
                statistic=None,
                threshold=None,
                rule="needs a vocabulary of at least 3 terms",
                detail="Too little text for an embedding.",
            )
        )
    else:
        svd = TruncatedSVD(n_components=dim, random_state=seed)
        base_emb = normalize(svd.fit_transform(base_vec))
        batch_emb = normalize(svd.transform(batch_vec))
        results.append(
            embedding_outlier_check(
                base_emb,
                base_labels,
                batch_emb,
                batch_labels,
                alpha=alpha,
                config=config,
                space=f"{dim}-d LSA of TF-IDF",
            )
        )
    return results


def top_tokens(texts: list[str], k: int = 10) -> list[tuple[str, int]]:
    """The k most frequent tokens of ``texts`` (for the report page)."""
    return Counter(token for text in texts for token in tokenize(text)).most_common(k)
