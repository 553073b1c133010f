"""The poison scan: the engine's detectors on accepted data + batch; which batch records they flag.

* Text: :func:`evaluations.engine.poisoning.detect_text_poison` (data-only token-trigger detector: candidate
  words and phrases whose removal flips a sample's label under a cross-fitted bag-of-words judge).
* Tabular and tensors: a small scikit-learn MLP is trained on accepted data + batch, and
  :func:`evaluations.engine.poisoning.detect_poison` (spectral signatures and activation clustering) runs on
  its hidden-layer activations.

Only batch records count toward the verdict; accepted records the detector flags are reported (they would
point at poison that got in earlier) but do not hold the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from evaluations.ingestion.checks.report import FAIL, PASS, CheckResult
from evaluations.ingestion.parsing import Records

__all__ = ["poison_scan"]


def _mlp_features(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Hidden activations of a one-hidden-layer MLP trained on ``x`` (standardized, PCA-reduced when wide)."""
    from sklearn.decomposition import PCA
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(x.reshape(x.shape[0], -1))
    if z.shape[1] > 64:
        z = PCA(n_components=64, random_state=seed).fit_transform(z)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=seed, early_stopping=False)
    mlp.fit(z, y)
    return np.maximum(z @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0).astype(np.float32)


def poison_scan(
    base: Records,
    base_y: np.ndarray,
    batch: Records,
    batch_y: np.ndarray,
    *,
    fmt: str,
    class_names: list[str],
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> CheckResult:
    """Run the detector on base + batch and report the flagged batch records."""
    labels = np.concatenate([base_y, batch_y])
    n_base = len(base)
    if fmt == "tsv":
        from evaluations.engine.poisoning import detect_text_poison

        result = detect_text_poison(
            list(base.texts) + list(batch.texts), labels, seed=seed, progress=progress, cancel=cancel
        )
        method = "token-trigger detector (leave-the-phrase-out reclassification, data-only)"
    else:
        from evaluations.engine.poisoning import detect_poison

        features = _mlp_features(np.concatenate([base.features, batch.features]), labels, seed)
        result = detect_poison(features, labels, seed=seed, progress=progress, should_cancel=cancel)
        method = "spectral signatures + activation clustering on the hidden layer of an MLP trained on base + batch"
    flagged = np.asarray(result.flagged_indices, dtype=np.int64)
    in_batch = sorted(int(i) - n_base for i in flagged if i >= n_base)
    in_base = int((flagged < n_base).sum())
    classes = []
    for decision in result.classes:
        row = decision.to_dict()
        row["name"] = class_names[decision.label] if 0 <= decision.label < len(class_names) else str(decision.label)
        row["statistics"] = {k: v for k, v in row["statistics"].items() if isinstance(v, (int, float, str, bool))}
        classes.append(row)
    reasons = "; ".join(f"{c['name']}: {c['reason']}" for c in classes if c["flagged"])
    return CheckResult(
        name="poison_scan",
        title="Poison scan",
        verdict=FAIL if in_batch else PASS,
        statistic=float(len(in_batch)),
        threshold=0.0,
        rule="fails when the detector flags any batch record",
        detail=(
            f"{len(in_batch)} batch record(s) flagged by the {method}. {reasons}"
            if in_batch
            else f"No batch record flagged by the {method}."
        )
        + (f" It also flagged {in_base} accepted record(s)." if in_base else ""),
        flagged=tuple(in_batch),
        data={
            "method": result.method,
            "classes": classes,
            "accepted_flagged": in_base,
            "seconds": float(result.seconds),
        },
    )
