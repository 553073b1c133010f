"""Control evidence: a run metric that must hold, checked when runs finish and as evidence ages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from evaluations.evidence import refresh_system
from evaluations.evidence_services import evidence_requirement_create
from evaluations.models import EvaluationRun, RunKind
from tests.factories import robustness_metrics
from threatmodel import services as tm
from threatmodel.models import EvidenceState
from threatmodel.selectors import version_content

pytestmark = pytest.mark.django_db


@pytest.fixture
def verified_control(owner, system):
    version = tm.threat_model_create(actor=owner, system=system).versions.get()
    api = tm.component_create(actor=owner, version=version, name="API", component_type="serving_api")
    evasion = api.threats.get(catalog_key="evasion-adversarial-examples")
    tm.threat_decide(actor=owner, threat=evasion, status="accepted")
    return tm.control_create(
        actor=owner, version=version, name="Adversarial training", status="verified", threats=[evasion]
    )


def require(owner, control, threshold=0.6, max_age_days=30):
    return evidence_requirement_create(
        actor=owner,
        control=control,
        kind=RunKind.ROBUSTNESS,
        metric="robust_accuracy",
        comparator=">=",
        threshold=threshold,
        epsilon=0.1,
        max_age_days=max_age_days,
    )


def state(control):
    control.refresh_from_db()
    return control.evidence_state


def test_evidence_passes_fails_and_goes_stale(
    owner, system, verified_control, make_model, make_run, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        require(owner, verified_control)
    assert state(verified_control) == EvidenceState.STALE  # no run yet
    model = make_model()
    run = make_run(model, metrics=robustness_metrics(0.72))
    refresh_system(system.pk)
    assert state(verified_control) == EvidenceState.PASSING
    assert "0.72" in verified_control.evidence_detail
    make_run(model, metrics=robustness_metrics(0.41))
    refresh_system(system.pk)
    assert state(verified_control) == EvidenceState.FAILING
    EvaluationRun.objects.filter(system=system).update(finished_at=timezone.now() - timedelta(days=45))
    refresh_system(system.pk)
    assert state(verified_control) == EvidenceState.STALE
    assert run.pk


def test_failing_evidence_raises_residual_risk_and_lowers_coverage(
    owner, system, verified_control, make_model, make_run
):
    require(owner, verified_control)
    make_run(make_model(), metrics=robustness_metrics(0.72))
    refresh_system(system.pk)
    content = version_content(user=owner, version=verified_control.version)
    assert content.coverage == (1, 1)
    make_run(verified_control.version.threat_model.system.model_artifacts.first(), metrics=robustness_metrics(0.2))
    refresh_system(system.pk)
    content = version_content(user=owner, version=verified_control.version)
    assert content.coverage == (0, 1)


def test_an_unreliable_run_is_failing_evidence(owner, system, verified_control, make_model, make_run):
    require(owner, verified_control)
    make_run(make_model(), metrics=robustness_metrics(0.9), reliable=False)
    refresh_system(system.pk)
    assert state(verified_control) == EvidenceState.FAILING
    assert "unreliable" in verified_control.evidence_detail


def test_requirements_are_validated(owner, verified_control):
    with pytest.raises(ValidationError, match="not a metric"):
        evidence_requirement_create(
            actor=owner,
            control=verified_control,
            kind=RunKind.ROBUSTNESS,
            metric="fidelity_at_reference_budget",
            comparator=">=",
            threshold=0.5,
        )
    with pytest.raises(ValidationError, match="which epsilon"):
        evidence_requirement_create(
            actor=owner,
            control=verified_control,
            kind=RunKind.ROBUSTNESS,
            metric="robust_accuracy",
            comparator=">=",
            threshold=0.5,
        )


def test_evidence_follows_the_control_into_a_new_draft(
    owner, teammate, approver, system, verified_control, make_model, make_run
):
    version = verified_control.version
    require(owner, verified_control)
    tm.version_submit(actor=teammate, version=version)
    tm.version_approve(actor=approver, version=version)
    draft = tm.version_start_draft(actor=teammate, threat_model=version.threat_model)
    make_run(make_model(), metrics=robustness_metrics(0.3))
    refresh_system(system.pk)
    assert draft.controls.get(uid=verified_control.uid).evidence_state == EvidenceState.FAILING
    assert state(verified_control) == EvidenceState.FAILING


def test_evidence_page_adds_requirements_and_outsiders_get_404(client, owner, outsider, verified_control):
    client.force_login(owner)
    response = client.post(
        f"/evaluations/controls/{verified_control.pk}/evidence/",
        {
            "kind": "robustness",
            "metric": "robust_accuracy",
            "comparator": ">=",
            "threshold": "0.6",
            "epsilon": "0.1",
            "max_age_days": "30",
        },
    )
    assert response.status_code == 302
    assert "robust_accuracy at eps 0.1 at least 0.6" in client.get(response["Location"]).content.decode()
    client.force_login(outsider)
    assert client.get(f"/evaluations/controls/{verified_control.pk}/evidence/").status_code == 404
