"""Extraction over real HTTP against a live server: attacker scripts, benign clients, and extraction runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluations.execution import execute
from evaluations.models import EvaluationRun, RunStatus
from evaluations.serving.models import ConsumerKey, MonitorAction, MonitorAlert, OutputPolicy
from evaluations.serving.services import deployment_update

pytestmark = pytest.mark.django_db(transaction=True)

RUN_CONFIG = {
    "target": "deployment",
    "strategy": "random",
    "budgets": [60, 200],
    "surrogate_epochs": 2,
    "surrogate_min_steps": 20,
    "transfer_attack": False,
    "max_eval_samples": 100,
    "max_pool_samples": 200,
    "http_batch_size": 20,
}


def http_victim(live_server, deployment, secret, **kwargs):
    from evaluations.engine.extraction import HttpVictim

    return HttpVictim(
        live_server.url + deployment.predict_path,
        input_shape=(1, 8, 8),
        num_classes=10,
        bounds=(0.0, 1.0),
        api_key=secret,
        **kwargs,
    )


@pytest.mark.parametrize("strategy", ["random", "jacobian"])
def test_an_attacker_script_over_http_is_flagged_within_200_queries(live_server, deploy, issue, digits_test, strategy):
    from evaluations.engine.extraction import ExtractionConfig, JacobianAugmentation, RandomQueries, extract

    deployment = deploy(monitor_action=MonitorAction.LOG)
    key, secret = issue(deployment, owner="attacker script")
    victim = http_victim(live_server, deployment, secret, batch_size=20)
    x, y = digits_test
    strategy_obj = RandomQueries() if strategy == "random" else JacobianAugmentation(step=0.1, seed_size=20)
    extract(
        victim,
        strategy_obj,
        torch.tensor(x[:60], dtype=torch.float32),
        torch.tensor(y[:60]),
        ExtractionConfig(budgets=(200,), surrogate="mlp", epochs=1, min_steps=5, transfer_attack=None),
        pool=torch.tensor(x[60:200], dtype=torch.float32),
        evaluation_victim=http_victim(live_server, deployment, issue(deployment, owner="evaluation")[1]),
        seed=0,
    )
    alert = MonitorAlert.objects.get(key=key)
    assert alert.queries <= 200, alert.state


def test_a_benign_client_replaying_test_data_over_http_is_not_flagged(live_server, deploy, issue, digits_test):
    deployment = deploy(monitor_action=MonitorAction.BLOCK)
    key, secret = issue(deployment, owner="benign app")
    victim = http_victim(live_server, deployment, secret, batch_size=10)
    order = np.random.default_rng(3).permutation(len(digits_test[0]))[:300]
    answer = victim.query(torch.tensor(digits_test[0][order], dtype=torch.float32))
    assert (answer.labels == digits_test[1][order]).mean() > 0.9
    assert not MonitorAlert.objects.filter(key=key).exists()


@pytest.fixture
def run_extraction(api, teammate, system, model, settings, live_server):
    """``run_extraction(deployment, **config)`` submits an extraction run targeting it and runs it here."""
    settings.GARRISON_SERVING_BASE_URL = live_server.url

    def run(deployment, **overrides) -> EvaluationRun:
        config = {**RUN_CONFIG, "deployment": deployment.pk, **overrides}
        body = {"system": system.pk, "kind": "extraction", "model": model.pk, "reference_dataset": "digits"}
        response = api(teammate).post("/api/runs/", {**body, "config": config}, format="json")
        assert response.status_code == 201, response.json()
        run_id = response.json()["id"]
        assert execute(run_id, worker="test") == "succeeded", EvaluationRun.objects.get(pk=run_id).error_message
        return EvaluationRun.objects.get(pk=run_id)

    return run


def test_an_extraction_run_attacks_the_deployment_with_its_own_key_and_reports_the_guard(run_extraction, deploy):
    deployment = deploy(monitor_action=MonitorAction.LOG)
    run = run_extraction(deployment)
    m = run.metrics
    assert m["target"] == "deployment" and m["deployment_policy"] == "full"
    assert m["budgets"] == [60, 200] and len(m["fidelity"]) == 2 and m["queries_used"] == 200
    assert m["flagged"] is True and 1 <= m["queries_to_detection"] <= 200 and m["detected_by"]
    assert m["rate_limited_responses"] == 0
    key = ConsumerKey.objects.get(issued_for_run=run)
    assert key.revoked_at is not None and MonitorAlert.objects.filter(key=key).exists()
    assert run.reproducibility["victim"]["endpoint"].endswith(deployment.predict_path)


def test_rate_limits_cost_the_attacker_429s_and_waiting(run_extraction, deploy):
    deployment = deploy(monitor_enabled=False, burst=40, rate_per_minute=10_000, max_batch=20)
    run = run_extraction(deployment, budgets=[120])
    m = run.metrics
    assert m["queries_used"] == 120 and m["complete"]
    assert m["rate_limited_responses"] >= 1 and m["seconds_waited"] >= 1.0


def test_a_blocking_deployment_stops_the_run_and_says_so(run_extraction, deploy):
    deployment = deploy(monitor_action=MonitorAction.BLOCK)
    run = run_extraction(deployment)
    m = run.metrics
    assert m["blocked_after"] is not None and m["blocked_after"] < 200 and not m["complete"]
    assert any(flag["code"] == "stopped_by_guard" for flag in run.flags)


def test_runs_under_two_output_policies_are_compared_on_the_results_page(run_extraction, deploy, teammate, client):
    deployment = deploy(monitor_enabled=False)
    first = run_extraction(deployment)
    deployment_update(actor=teammate, deployment=deployment, output_policy=OutputPolicy.LABEL_ONLY)
    second = run_extraction(deployment)
    assert second.metrics["deployment_policy"] == "label_only" and second.metrics["soft_labels_used"] is False
    client.force_login(teammate)
    page = client.get(second.get_absolute_url()).content.decode()
    assert 'id="defenses-chart"' in page
    assert f"#{first.pk} full" in page and f"#{second.pk} label_only" in page


def test_a_run_cannot_target_a_deployment_serving_another_model(
    run_extraction, deploy, upload_model, teammate, system, api
):
    other = upload_model(teammate, system)
    deployment = deploy()
    body = {"system": system.pk, "kind": "extraction", "model": other.pk, "reference_dataset": "digits"}
    response = api(teammate).post(
        "/api/runs/", {**body, "config": {**RUN_CONFIG, "deployment": deployment.pk}}, format="json"
    )
    run_id = response.json()["id"]
    assert execute(run_id, worker="test") == "failed"
    run = EvaluationRun.objects.get(pk=run_id)
    assert run.status == RunStatus.FAILED and "not the run's model" in run.error_message
    assert not ConsumerKey.objects.filter(deployment=deployment).exists()


def test_a_deployment_target_needs_a_deployment(api, teammate, system, model):
    body = {"system": system.pk, "kind": "extraction", "model": model.pk, "reference_dataset": "digits"}
    response = api(teammate).post("/api/runs/", {**body, "config": {"target": "deployment"}}, format="json")
    assert response.status_code == 400
    assert "deployment" in str(response.json()["error"]["fields"])
