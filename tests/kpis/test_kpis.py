"""KPIs computed from runs and threat models, thresholds and overrides, trends and dashboards."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from evaluations.models import RunKind
from kpis import compute, selectors, services
from kpis.catalog import BY_KEY, KPIS, classify
from kpis.models import CurrentValue, Measurement
from tests.factories import SystemFactory, robustness_metrics
from threatmodel import services as tm

pytestmark = pytest.mark.django_db


def cell(user, system, key):
    return next(c for c in selectors.system_cells(user=user, system=system) if c.definition.key == key)


def test_the_catalog_defines_every_kpi_the_issue_names():
    for key in (
        "robust_accuracy",
        "robust_accuracy_drop",
        "attack_success_rate",
        "adversarial_training_gain",
        "extraction_fidelity",
        "extraction_queries_to_detection",
        "extraction_benign_fpr",
        "poison_detection_precision",
        "poison_detection_recall",
        "backdoor_success_after_remediation",
        "scan_critical_findings",
        "control_coverage",
        "open_high_residual_risks",
        "overdue_controls",
        "expired_risk_acceptances",
        "freshness_robustness",
        "open_incidents",
        "mean_time_to_remediate",
    ):
        assert key in BY_KEY
    for kpi in KPIS:
        assert kpi.definition and kpi.formula and kpi.unit and kpi.direction in ("higher", "lower")
        for tier in (1, 2, 3, 4):
            green, amber = kpi.bounds(tier)
            assert (amber <= green) if kpi.direction == "higher" else (amber >= green), kpi.key


def test_robustness_kpis_come_from_the_reference_epsilon(owner, system, make_model, make_run):
    model = make_model()
    run = make_run(model, metrics=robustness_metrics(0.62))
    values = {v.kpi: v for v in compute.evaluation_values(system)}
    assert values["robust_accuracy"].value == pytest.approx(0.62)
    assert values["robust_accuracy_drop"].value == pytest.approx(0.33)
    assert values["robust_accuracy"].details["epsilon"] == 0.1
    assert values["robust_accuracy"].run_id == run.pk
    assert values["freshness_robustness"].value < 0.01


def test_reference_point_falls_back_to_the_nearest_lower_epsilon():
    assert compute.reference_point({"epsilons": [0, 0.03, 0.08, 0.3]}) == 2
    assert compute.reference_point({"epsilons": [0, 0.3]}) == 1
    assert compute.reference_point({"epsilons": [0]}) is None


def test_scan_and_adversarial_training_kpis(system, make_model, make_run):
    model = make_model()
    make_run(
        model,
        RunKind.MODEL_SCAN,
        metrics={"verdict": "malicious"},
        reliable=None,
        flags=[
            {"code": "dangerous-global", "details": {"severity": "CRITICAL"}},
            {"code": "x", "details": {"severity": "HIGH"}},
            {"code": "y", "details": {"severity": "HIGH"}},
        ],
    )
    make_run(
        model, RunKind.ADVERSARIAL_TRAINING, metrics={"robust_accuracy_before": 0.1, "robust_accuracy_after": 0.55}
    )
    values = {v.kpi: v.value for v in compute.evaluation_values(system)}
    assert values["scan_critical_findings"] == 1 and values["scan_high_findings"] == 2
    assert values["adversarial_training_gain"] == pytest.approx(0.45)


def test_governance_kpis_come_from_the_approved_threat_model(owner, teammate, approver, system):
    version = tm.threat_model_create(actor=owner, system=system).versions.get()
    api = tm.component_create(actor=owner, version=version, name="API", component_type="serving_api")
    evasion = api.threats.get(catalog_key="evasion-adversarial-examples")
    tm.threat_decide(actor=owner, threat=evasion, status="accepted")
    assert compute.governance_values(system) == []  # nothing approved yet
    tm.version_submit(actor=teammate, version=version)
    tm.version_approve(actor=approver, version=version)
    values = {v.kpi: v.value for v in compute.governance_values(system)}
    assert values["control_coverage"] == 0.0
    assert values["open_high_residual_risks"] == 1
    assert values["overdue_controls"] == 0 and values["expired_risk_acceptances"] == 0


def test_statuses_follow_default_tier_thresholds_team_thresholds_and_overrides(owner, approver, system, team):
    definition = BY_KEY["robust_accuracy"]
    assert classify(definition, 0.65, definition.bounds(3)) == "green"
    services.measurements_record(
        system=system, values=[compute.KpiValue("robust_accuracy", 0.45, True)], trigger="test"
    )
    assert cell(owner, system, "robust_accuracy").status == "amber"
    services.threshold_set(actor=approver, team=team, kpi="robust_accuracy", tier=3, green=0.4, amber=0.2)
    assert cell(owner, system, "robust_accuracy").status == "green"
    services.threshold_set(actor=approver, team=team, kpi="robust_accuracy", system=system, green=0.9, amber=0.5)
    shown = cell(owner, system, "robust_accuracy")
    assert shown.status == "red" and shown.bounds_source == "system override"


def test_thresholds_in_the_wrong_order_or_for_unknown_kpis_are_refused(approver, team):
    with pytest.raises(ValidationError, match="green bound must be at least"):
        services.threshold_set(actor=approver, team=team, kpi="robust_accuracy", tier=1, green=0.2, amber=0.5)
    with pytest.raises(ValidationError, match="Unknown KPI"):
        services.threshold_set(actor=approver, team=team, kpi="vibes", tier=1, green=1, amber=0)


def test_editors_cannot_change_thresholds(teammate, team):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.threshold_set(actor=teammate, team=team, kpi="robust_accuracy", tier=1, green=0.9, amber=0.5)


def test_an_unreliable_result_never_turns_a_kpi_green(owner, system):
    services.measurements_record(
        system=system, values=[compute.KpiValue("robust_accuracy", 0.99, False)], trigger="test"
    )
    shown = cell(owner, system, "robust_accuracy")
    assert shown.status == "amber" and "unreliable" in shown.note


def test_measurements_form_a_series_and_skip_repeats(system):
    services.measurements_record(system=system, values=[compute.KpiValue("open_incidents", 1)], trigger="a")
    services.measurements_record(system=system, values=[compute.KpiValue("open_incidents", 1)], trigger="b")
    services.measurements_record(system=system, values=[compute.KpiValue("open_incidents", 0)], trigger="c")
    assert list(Measurement.objects.filter(system=system).values_list("value", flat=True)) == [1, 0]
    assert CurrentValue.objects.get(system=system, kpi="open_incidents").value == 0


def test_approving_a_threat_model_records_measurements(
    owner, teammate, approver, system, django_capture_on_commit_callbacks
):
    version = tm.threat_model_create(actor=owner, system=system).versions.get()
    tm.component_create(actor=owner, version=version, name="API", component_type="serving_api")
    tm.version_submit(actor=teammate, version=version)
    with django_capture_on_commit_callbacks(execute=True):
        tm.version_approve(actor=approver, version=version)
    assert CurrentValue.objects.filter(system=system, kpi="open_high_residual_risks").exists()


def test_portfolio_is_worst_first_and_scoped(owner, outsider, system, other_system, team):
    calm = SystemFactory(team=team, name="Calm", slug="calm")
    services.measurements_record(system=system, values=[compute.KpiValue("scan_critical_findings", 3)], trigger="t")
    services.measurements_record(system=calm, values=[compute.KpiValue("scan_critical_findings", 0)], trigger="t")
    rows = selectors.portfolio(user=owner)
    assert [r.system.name for r in rows] == ["Fraud scorer", "Calm"]
    assert [r.system.name for r in selectors.portfolio(user=outsider)] == ["Other scorer"]


def test_dashboard_query_counts_do_not_grow_with_data(
    client, owner, team, django_assert_num_queries, django_capture_on_commit_callbacks
):
    client.force_login(owner)

    def fill(n):
        # As if committed: a commit is what moves the portfolio's cached table to a new generation.
        with django_capture_on_commit_callbacks(execute=True):
            _fill(n)

    def _fill(n):
        for i in range(n):
            s = SystemFactory(team=team, name=f"S{n}-{i}", slug=f"s{n}-{i}")
            for value in (1, 2, 3):
                services.measurements_record(
                    system=s, values=[compute.KpiValue("open_incidents", value)], trigger=str(value)
                )

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fill(2)
    with CaptureQueriesContext(connection) as small:
        client.get("/kpis/")
    fill(10)
    with CaptureQueriesContext(connection) as large:
        assert client.get("/kpis/").status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)


def test_system_dashboard_shows_values_trends_and_events(client, owner, system):
    for value in (0.4, 0.5, 0.7):
        services.measurements_record(
            system=system, values=[compute.KpiValue("robust_accuracy", value, True)], trigger=f"run {value}"
        )
    client.force_login(owner)
    page = client.get(f"/kpis/systems/{system.team.slug}/{system.slug}/").content.decode()
    assert 'data-kpi="robust_accuracy"' in page and "<svg" in page and "run 0.5" in page


def test_outsider_gets_404_for_a_system_dashboard_and_its_api(client, api, outsider, system):
    client.force_login(outsider)
    assert client.get(f"/kpis/systems/{system.team.slug}/{system.slug}/").status_code == 404
    assert api(outsider).get(f"/api/systems/{system.id}/kpis/").status_code == 404


def test_poisoning_kpis_come_from_the_latest_red_team_or_detection_run(system, make_model, make_run):
    model = make_model()
    make_run(model, RunKind.POISONING_DETECTION, metrics={"flagged": 3}, reliable=None, days_ago=2)
    make_run(
        model,
        RunKind.BACKDOOR_SIMULATION,
        reliable=None,
        days_ago=1,
        metrics={"precision": 0.9, "recall": 1.0, "backdoor_success_after": 0.02},
    )
    values = {v.kpi: v.value for v in compute.evaluation_values(system)}
    assert values["poison_detection_precision"] == 0.9 and values["poison_detection_recall"] == 1.0
    assert values["backdoor_success_after_remediation"] == 0.02
