"""Risk arithmetic: inherent risk from likelihood x impact, residual risk after controls.

Scores are 1-5 each. Controls reduce risk only while they work:

- an *effective preventive* control (implemented or verified, evidence not failing or
  stale) lowers likelihood by 1, or by 2 when it is *verified*;
- an effective *detective* or *corrective* control lowers impact by 1 (2 when verified),
  since it limits the damage rather than the chance;
- reductions from several controls add up, and neither score drops below 1;
- a control whose evidence is failing or stale reduces nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

LEVELS = (("critical", 17), ("high", 10), ("medium", 5), ("low", 1))


def risk_level(score: int) -> str:
    """Name the band of a 1-25 risk score: low (1-4), medium (5-9), high (10-16), critical (17-25)."""
    for name, floor in LEVELS:
        if score >= floor:
            return name
    return "low"


class _ControlLike(Protocol):
    control_type: str
    is_effective: bool
    is_verified: bool


@dataclass(frozen=True)
class Residual:
    """Residual likelihood, impact and risk of a threat."""

    likelihood: int
    impact: int

    @property
    def score(self) -> int:
        """Likelihood x impact."""
        return self.likelihood * self.impact

    @property
    def level(self) -> str:
        """The score's band."""
        return risk_level(self.score)


def residual_risk(*, likelihood: int, impact: int, controls: Iterable[_ControlLike]) -> Residual:
    """Apply the effective controls to a threat's scores."""
    lower_likelihood = lower_impact = 0
    for control in controls:
        if not control.is_effective:
            continue
        step = 2 if control.is_verified else 1
        if control.control_type == "preventive":
            lower_likelihood += step
        else:
            lower_impact += step
    return Residual(likelihood=max(1, likelihood - lower_likelihood), impact=max(1, impact - lower_impact))
