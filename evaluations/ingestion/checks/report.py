"""What the ingestion checks return: one result per check (statistic, threshold, verdict) and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAIL", "PASS", "SKIP", "CheckReport", "CheckResult"]

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome.

    ``statistic`` is the number the verdict rests on (a p-value, a rate, a PSI), ``threshold`` the value
    it is compared with and ``rule`` says how, in words (e.g. "fails when p < 0.0014 and the excess rate
    is at least 0.05"). ``flagged`` are batch record positions the check points at (acted on only when
    the check fails); ``data`` holds the figures for the report page (per-label counts, per-feature
    tests, burst tokens, ...).
    """

    name: str
    title: str
    verdict: str
    statistic: float | None
    threshold: float | None
    rule: str
    detail: str
    flagged: tuple[int, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "title": self.title,
            "verdict": self.verdict,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "rule": self.rule,
            "detail": self.detail,
            "flagged": list(self.flagged),
            "data": self.data,
        }


@dataclass(frozen=True)
class CheckReport:
    """All checks of one batch against the accepted base, the union of flagged records and the verdict."""

    checks: list[CheckResult]
    n_base: int
    n_batch: int
    config: dict[str, Any]
    seed: int
    seconds: float
    library_versions: dict[str, str]

    @property
    def passed(self) -> bool:
        """True when no check failed (skipped checks do not block)."""
        return all(check.verdict != FAIL for check in self.checks)

    @property
    def flagged(self) -> dict[int, list[str]]:
        """Batch record position -> names of the failed checks that point at it."""
        out: dict[int, list[str]] = {}
        for check in self.checks:
            if check.verdict == FAIL:
                for index in check.flagged:
                    out.setdefault(int(index), []).append(check.name)
        return dict(sorted(out.items()))

    def check(self, name: str) -> CheckResult | None:
        """The result of one check by name."""
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored on the batch."""
        return {
            "verdict": PASS if self.passed else FAIL,
            "checks": [check.to_dict() for check in self.checks],
            "flagged": {str(k): v for k, v in self.flagged.items()},
            "n_base": self.n_base,
            "n_batch": self.n_batch,
            "config": self.config,
            "seed": self.seed,
            "seconds": self.seconds,
            "library_versions": self.library_versions,
        }
