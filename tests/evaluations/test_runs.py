"""Evaluation runs without a worker: config validation, permissions, transitions, cancel, reaper, results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from evaluations import services
from evaluations.execution import execute
from evaluations.models import EvaluationRun, RunStatus
from garrison.accounts.roles import TokenRole
from garrison.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

TINY = {"attack": "fgsm", "epsilons": [0.0, 0.1, 0.3], "max_samples": 24, "batch_size": 8, "sanity": "off"}


@pytest.fixture
def model(upload_model, teammate, system):
    return upload_model(teammate, system)


def submit(client, system, model, **overrides):
    body = {"system": system.pk, "kind": "robustness", "model": model.pk, "reference_dataset": "digits", "config": TINY}
    body.update(overrides)
    return client.post("/api/runs/", body, format="json")


def test_a_submitted_run_is_queued_validated_and_audited_once(api, teammate, system, model):
    response = submit(api(teammate), system, model, config={"attack": "pgd"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued"
    assert body["config"]["epsilons"] == [0.0, 0.05, 0.1, 0.2] and body["config"]["steps"] == 10
    assert AuditEvent.objects.filter(verb="evaluation_run.queue", object_id=str(body["id"])).count() == 1


def test_config_with_unknown_fields_is_rejected_with_field_errors(api, teammate, system, model):
    response = submit(api(teammate), system, model, config={"attack": "pgd", "epsilon": 0.1})
    assert response.status_code == 400
    assert "Unknown field" in response.json()["error"]["fields"]["config.epsilon"][0]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"epsilons": [-0.1]}, "config.epsilons"),
        ({"steps": 0}, "config.steps"),
        ({"attack": "carlini"}, "config.attack"),
        ({"max_samples": 10**9}, "config.max_samples"),
        ({"epsilons": [0.2, 0.1]}, "config.epsilons"),
        ({"device": "cuda"}, "config.device"),
    ],
)
def test_out_of_range_config_values_are_rejected_with_field_errors(api, teammate, system, model, config, field):
    response = submit(api(teammate), system, model, config=config)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"], response.json()


def test_kinds_without_an_engine_are_refused_as_not_available_yet(api, teammate, system, model):
    from evaluations.configs import available_kinds

    missing = [k for k in ("extraction", "poisoning_detection", "backdoor_simulation") if k not in available_kinds()]
    for kind in missing:
        response = submit(api(teammate), system, model, kind=kind, config={})
        assert response.status_code == 400
        assert "not available yet" in response.json()["error"]["fields"]["kind"][0]


@pytest.mark.parametrize(
    ("persona", "expected"), [("owner", 201), ("teammate", 201), ("viewer", 403), ("outsider", 404)]
)
def test_who_may_submit_runs(request, api, system, model, persona, expected):
    assert submit(api(request.getfixturevalue(persona)), system, model).status_code == expected


def test_ci_token_submits_and_polls_and_viewer_token_only_reads(make_token, token_api, system, model):
    _, ci = make_token(TokenRole.CI)
    _, read_only = make_token(TokenRole.VIEWER)
    run_id = submit(token_api(ci), system, model).json()["id"]
    status = token_api(ci).get(f"/api/runs/{run_id}/status/")
    assert status.status_code == 200 and status.json()["status"] == "queued"
    assert submit(token_api(read_only), system, model).status_code == 403
    assert token_api(read_only).get(f"/api/runs/{run_id}/").status_code == 200
    assert token_api(read_only).post(f"/api/runs/{run_id}/cancel/").status_code == 403


def test_outsider_cannot_see_or_cancel_a_run(api, teammate, outsider, system, model):
    run_id = submit(api(teammate), system, model).json()["id"]
    assert api(outsider).get(f"/api/runs/{run_id}/").status_code == 404
    assert api(outsider).post(f"/api/runs/{run_id}/cancel/").status_code == 404
    assert api(outsider).get("/api/runs/").json()["count"] == 0


def test_cancelling_a_queued_run_cancels_it_and_a_finished_one_answers_409(api, teammate, system, model):
    client = api(teammate)
    run_id = submit(client, system, model).json()["id"]
    response = client.post(f"/api/runs/{run_id}/cancel/")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    again = client.post(f"/api/runs/{run_id}/cancel/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert execute(run_id, worker="test") == "not claimed"


def test_only_one_worker_claims_a_queued_run(teammate, system, model):
    run = services.evaluation_run_queue(
        actor=teammate, system=system, kind="model_scan", model_artifact=model, config={}
    )
    first = services.evaluation_run_claim(run_id=run.pk, worker="a")
    assert first is not None and first.attempts == 1
    assert services.evaluation_run_claim(run_id=run.pk, worker="b") is None
    # A finished run cannot be moved again, and a stale attempt cannot finish it.
    assert services.evaluation_run_fail(run_id=run.pk, attempt=2, message="stale") is None
    assert services.evaluation_run_fail(run_id=run.pk, attempt=1, message="boom") is not None
    assert services.evaluation_run_requeue(run_id=run.pk, attempt=1, reason="x") is None


def test_a_run_executed_in_process_records_metrics_files_and_provenance(api, teammate, system, model):
    run_id = submit(api(teammate), system, model).json()["id"]
    assert execute(run_id, worker="test") == "succeeded"
    body = api(teammate).get(f"/api/runs/{run_id}/").json()
    assert body["status"] == "succeeded" and body["progress"] == 1.0
    metrics = body["metrics"]
    assert metrics["epsilons"] == [0.0, 0.1, 0.3]
    assert metrics["robust_accuracy"][0] == metrics["clean_accuracy"]
    assert metrics["robust_accuracy"][2] <= metrics["robust_accuracy"][0]
    assert body["reproducibility"]["model_sha256"] == model.sha256
    assert {a["name"] for a in body["artifacts"]} == {
        "adversarial-samples.json",
        "robustness-report.json",
        "robustness-curve.svg",
    }
    verbs = list(
        AuditEvent.objects.filter(object_type="evaluations.evaluationrun", object_id=str(run_id))
        .values_list("verb", flat=True)
        .order_by("id")
    )
    assert verbs == ["evaluation_run.queue", "evaluation_run.start", "evaluation_run.succeed"]


def test_a_model_scan_run_reports_the_verdict(api, teammate, system, model):
    response = api(teammate).post(
        "/api/runs/", {"system": system.pk, "kind": "model_scan", "model": model.pk}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert execute(response.json()["id"], worker="test") == "succeeded"
    assert EvaluationRun.objects.get().metrics["verdict"] == "clean"


def test_the_reaper_requeues_a_stale_run_with_attempts_left_and_fails_it_after(teammate, system, model):
    run = services.evaluation_run_queue(actor=teammate, system=system, kind="model_scan", model_artifact=model)
    services.evaluation_run_claim(run_id=run.pk, worker="w")
    stale = timezone.now() - timedelta(hours=1)
    EvaluationRun.objects.filter(pk=run.pk).update(heartbeat_at=stale)
    assert services.evaluation_run_reap() == {"requeued": [run.pk], "failed": []}
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and "no heartbeat" in run.stage
    services.evaluation_run_claim(run_id=run.pk, worker="w2")
    EvaluationRun.objects.filter(pk=run.pk).update(heartbeat_at=stale)
    assert services.evaluation_run_reap() == {"requeued": [], "failed": [run.pk]}
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "heartbeat" in run.error_message and run.attempts == 2


def test_a_fresh_heartbeat_keeps_a_run_running(teammate, system, model):
    run = services.evaluation_run_queue(actor=teammate, system=system, kind="model_scan", model_artifact=model)
    services.evaluation_run_claim(run_id=run.pk, worker="w")
    assert services.evaluation_run_reap() == {"requeued": [], "failed": []}


def test_an_engine_error_fails_the_run_with_a_clear_message(api, teammate, system, model):
    run_id = submit(api(teammate), system, model, config={**TINY, "epsilons": [0.0, 5.0]}).json()["id"]
    assert execute(run_id, worker="test") == "failed"
    run = EvaluationRun.objects.get(pk=run_id)
    assert run.status == RunStatus.FAILED and run.error_message and run.finished_at


def test_sharding_splits_units_without_changing_the_merged_result(teammate, system, model):
    from evaluations import runners
    from evaluations.execution import build_context

    config = {**TINY, "max_samples": 30, "shard_size": 7, "attack": "pgd", "steps": 3}
    run = services.evaluation_run_queue(
        actor=teammate,
        system=system,
        kind="robustness",
        model_artifact=model,
        dataset=services.dataset_register_reference(actor=teammate, system=system, reference_name="digits"),
        config=config,
    )
    ctx = build_context(run, None)
    inputs = runners.robustness_inputs(ctx)
    whole = runners.robustness_merge(runners.robustness_units(ctx, inputs, list(range(5))))
    groups = runners.shard_units(5, 3)
    assert groups == [[0, 1], [2, 3], [4]]
    parts = [unit for group in reversed(groups) for unit in runners.robustness_units(ctx, inputs, group)]
    merged = runners.robustness_merge(parts)
    for key in ("clean_accuracy", "per_class_clean_accuracy", "unit_seeds", "unit_data_sha256"):
        assert merged[key] == whole[key]
    strip = ("seconds", "samples_per_second")
    assert [{k: v for k, v in p.items() if k not in strip} for p in merged["points"]] == [
        {k: v for k, v in p.items() if k not in strip} for p in whole["points"]
    ]
