"""Statistical checks of a quarantined batch against the accepted data (numpy, scipy, scikit-learn; no Django).

:func:`run_checks` runs schema, duplicate and near-duplicate, label-conflict, label-shift, per-feature
(KS and PSI) or text (length, tokens, rare-token bursts) distribution, embedding-outlier checks and the
poison scan, each giving a statistic, a threshold and a verdict (:class:`CheckResult`).
"""

from __future__ import annotations

from evaluations.ingestion.checks.config import ChecksConfig, ChecksConfigError
from evaluations.ingestion.checks.report import FAIL, PASS, SKIP, CheckReport, CheckResult
from evaluations.ingestion.checks.runner import run_checks

__all__ = ["FAIL", "PASS", "SKIP", "CheckReport", "CheckResult", "ChecksConfig", "ChecksConfigError", "run_checks"]
