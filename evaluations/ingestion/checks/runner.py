"""Run every check of a quarantined batch against the accepted base and collect the report."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from evaluations.ingestion.checks.common import label_shift_check
from evaluations.ingestion.checks.config import ChecksConfig
from evaluations.ingestion.checks.report import PASS, CheckReport, CheckResult
from evaluations.ingestion.parsing import Records

__all__ = ["run_checks"]

#: The statistical checks each kind runs; the family-wise alpha is split evenly over them.
STATISTICAL = {
    "tsv": (
        "duplicates",
        "label_conflicts",
        "label_shift",
        "text_length",
        "token_distribution",
        "rare_token_bursts",
        "embedding_outliers",
    ),
    "csv": ("duplicates", "label_conflicts", "label_shift", "feature_ks", "embedding_outliers"),
    "npz": ("duplicates", "label_conflicts", "label_shift", "feature_ks", "embedding_outliers"),
}


def _versions() -> dict[str, str]:
    import scipy
    import sklearn

    return {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}


def run_checks(
    base: Records,
    batch: Records,
    *,
    schema: Mapping[str, Any],
    config: ChecksConfig | None = None,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> CheckReport:
    """Every check of ``batch`` against ``base`` (both already validated against ``schema``).

    Distribution checks share the family-wise ``config.alpha`` (Bonferroni); the poison scan runs on
    base + batch and flags batch records; ``progress(fraction, stage)`` is called between checks.
    """
    config = config or ChecksConfig()
    started = time.perf_counter()
    report = progress or (lambda fraction, stage: None)
    fmt = schema["format"]
    class_names = list(schema["class_names"])
    index = {name: i for i, name in enumerate(class_names)}
    base_y = np.asarray([index[label] for label in base.labels], dtype=np.int64)
    batch_y = np.asarray([index[label] for label in batch.labels], dtype=np.int64)
    alpha = config.alpha / len(STATISTICAL[fmt])
    checks: list[CheckResult] = [
        CheckResult(
            name="schema",
            title="Schema and types",
            verdict=PASS,
            statistic=0.0,
            threshold=0.0,
            rule="fails on any record that does not match the dataset's schema (refused at push time)",
            detail=f"{len(batch)} records; every field, type and label matches the schema "
            f"({', '.join(f'{k}: {v}' for k, v in schema.items() if k != 'class_names')}; classes {class_names}).",
        ),
        label_shift_check(base_y, batch_y, class_names, alpha=alpha, config=config),
    ]
    report(0.1, "distribution checks")
    if fmt == "tsv":
        from evaluations.ingestion.checks.text import text_checks

        checks += text_checks(
            list(base.texts), base_y, list(batch.texts), batch_y, config=config, alpha=alpha, seed=seed
        )
    else:
        from evaluations.ingestion.checks.tabular import tabular_checks

        names = [c for c in schema.get("columns", []) if c != schema.get("label_column")] or None
        checks += tabular_checks(
            base.features,
            base_y,
            batch.features,
            batch_y,
            config=config,
            alpha=alpha,
            seed=seed,
            tensor=fmt == "npz",
            feature_names=names,
        )
    report(0.5, "poison scan")
    if config.poison_scan:
        from evaluations.ingestion.checks.poison import poison_scan

        checks.append(
            poison_scan(
                base,
                base_y,
                batch,
                batch_y,
                fmt=fmt,
                class_names=class_names,
                seed=seed,
                cancel=cancel,
                progress=lambda f: report(0.5 + 0.45 * f, "poison scan"),
            )
        )
    report(1.0, "done")
    return CheckReport(
        checks=checks,
        n_base=len(base),
        n_batch=len(batch),
        config={**config.to_dict(), "alpha_per_check": alpha, "statistical_checks": list(STATISTICAL[fmt])},
        seed=seed,
        seconds=time.perf_counter() - started,
        library_versions=_versions(),
    )
