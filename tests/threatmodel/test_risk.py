"""Residual risk responds to control status and evidence; coverage counts verified controls."""

from __future__ import annotations

import pytest

from threatmodel import services
from threatmodel.models import ControlStatus, EvidenceState, ThreatStatus
from threatmodel.risk import residual_risk, risk_level
from threatmodel.selectors import version_content

pytestmark = pytest.mark.django_db


def test_risk_bands():
    assert [risk_level(s) for s in (1, 4, 5, 9, 10, 16, 17, 25)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]


def _register_row(owner, version, threat):
    content = version_content(user=owner, version=version)
    return next(r for r in content.register if r.threat.pk == threat.pk)


@pytest.fixture
def evasion(modelled, owner):
    threat = modelled.threats.get(component__name="Prediction API", catalog_key="evasion-adversarial-examples")
    services.threat_decide(actor=owner, threat=threat, status=ThreatStatus.ACCEPTED)
    return threat


@pytest.mark.parametrize(
    ("status", "evidence", "expected"),
    [
        (ControlStatus.PLANNED, EvidenceState.NONE, (4, 4)),
        (ControlStatus.IN_PROGRESS, EvidenceState.NONE, (4, 4)),
        (ControlStatus.IMPLEMENTED, EvidenceState.NONE, (3, 4)),
        (ControlStatus.VERIFIED, EvidenceState.NONE, (2, 4)),
        (ControlStatus.VERIFIED, EvidenceState.PASSING, (2, 4)),
        (ControlStatus.VERIFIED, EvidenceState.FAILING, (4, 4)),
        (ControlStatus.VERIFIED, EvidenceState.STALE, (4, 4)),
        (ControlStatus.IMPLEMENTED, EvidenceState.FAILING, (4, 4)),
    ],
)
def test_residual_risk_follows_control_status_and_evidence(modelled, owner, evasion, status, evidence, expected):
    control = services.control_create(
        actor=owner,
        version=modelled,
        name="Adversarial training",
        control_type="preventive",
        status=status,
        threats=[evasion],
        atlas_mitigations=["AML.M0002"],
    )
    services.control_set_evidence_state(control=control, state=evidence, detail="robust acc >= 0.6 at eps 0.1")
    row = _register_row(owner, modelled, evasion)
    assert (row.residual.likelihood, row.residual.impact) == expected


def test_detective_controls_lower_impact_and_reductions_add_up(modelled, owner, evasion):
    services.control_create(
        actor=owner, version=modelled, name="Hardening", control_type="preventive", status="verified", threats=[evasion]
    )
    services.control_create(
        actor=owner,
        version=modelled,
        name="Input monitoring",
        control_type="detective",
        status="implemented",
        threats=[evasion],
    )
    row = _register_row(owner, modelled, evasion)
    assert (row.residual.likelihood, row.residual.impact) == (2, 3)
    assert row.residual.score == 6 and row.residual.level == "medium"


def test_scores_never_drop_below_one():
    class Control:
        control_type, is_effective, is_verified = "preventive", True, True

    assert residual_risk(likelihood=2, impact=1, controls=[Control(), Control()]).score == 1


def test_coverage_counts_high_threats_with_a_verified_control(modelled, owner, evasion):
    content = version_content(user=owner, version=modelled)
    assert content.coverage == (0, 1)
    control = services.control_create(
        actor=owner, version=modelled, name="Adv training", status="verified", threats=[evasion]
    )
    assert version_content(user=owner, version=modelled).coverage == (1, 1)
    services.control_set_evidence_state(control=control, state=EvidenceState.FAILING, detail="robust acc 0.31")
    assert version_content(user=owner, version=modelled).coverage == (0, 1)


def test_heat_map_counts_live_threats(modelled, owner, evasion):
    content = version_content(user=owner, version=modelled)
    total = sum(cell["count"] for row in content.heat_map() for cell in row["cells"])
    assert total == len([t for t in content.threats if t.status != ThreatStatus.NOT_APPLICABLE])
    impact_4 = next(row for row in content.heat_map() if row["impact"] == 4)
    assert impact_4["cells"][3]["count"] >= 1 and impact_4["cells"][3]["level"] == "high"
