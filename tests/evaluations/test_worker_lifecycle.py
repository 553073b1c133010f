"""Evaluation runs against a REAL Celery worker process: progress, success, cancel, SIGKILL + reaper, shards.

The filesystem broker always; the broker in ``CELERY_BROKER_URL`` (Redis) too when it is set.
"""

from __future__ import annotations

import pytest

from evaluations.models import EvaluationRun, RunStatus
from evaluations.tasks import reap_stale_runs
from tests.evaluations.conftest import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

QUICK = {"attack": "pgd", "steps": 3, "epsilons": [0.0, 0.1, 0.2], "max_samples": 48, "batch_size": 8, "sanity": "off"}
# Long enough (a few seconds) that polling sees progress between 0 and 1 on an idle machine too.
MEDIUM = {**QUICK, "steps": 30, "max_samples": 240}
SLOW = {**QUICK, "steps": 40, "max_samples": 400, "epsilons": [0.0, 0.05, 0.1, 0.2, 0.3]}


def submit(api, user, system, model, config) -> int:
    response = api(user).post(
        "/api/runs/",
        {"system": system.pk, "kind": "robustness", "model": model.pk, "reference_dataset": "digits", "config": config},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def run(pk: int) -> EvaluationRun:
    return EvaluationRun.objects.get(pk=pk)


def test_a_worker_runs_a_submitted_run_with_progress_updates_to_success(
    api, teammate, system, upload_model, worker_factory
):
    model = upload_model(teammate, system)
    run_id = submit(api, teammate, system, model, MEDIUM)
    worker = worker_factory()
    seen: set[float] = set()

    def finished() -> bool:
        current = run(run_id)
        if current.status == RunStatus.RUNNING:
            seen.add(round(current.progress, 3))
        return current.finished

    wait_for(finished, timeout=180, worker=worker, what="the run to finish")
    done = run(run_id)
    assert done.status == RunStatus.SUCCEEDED, (done.error_message, worker.output())
    assert done.attempts == 1 and done.progress == 1.0 and done.heartbeat_at and done.worker
    assert len(done.metrics["robust_accuracy"]) == 3
    assert any(0.0 < p < 1.0 for p in seen), seen
    status = api(teammate).get(f"/api/runs/{run_id}/status/").json()
    assert status["finished"] is True and status["status"] == "succeeded"


def test_a_running_run_is_cancelled_between_batches(api, teammate, system, upload_model, worker_factory):
    model = upload_model(teammate, system)
    run_id = submit(api, teammate, system, model, SLOW)
    worker = worker_factory()
    wait_for(lambda: run(run_id).progress > 0.01, timeout=120, worker=worker, what="progress")
    assert api(teammate).post(f"/api/runs/{run_id}/cancel/").status_code == 202
    wait_for(lambda: run(run_id).finished, timeout=60, worker=worker, what="the cancellation")
    cancelled = run(run_id)
    assert cancelled.status == RunStatus.CANCELLED and cancelled.progress < 1.0
    assert api(teammate).post(f"/api/runs/{run_id}/cancel/").status_code == 409


def test_a_run_whose_worker_is_killed_is_requeued_by_the_reaper_and_finishes_on_another(
    api, teammate, system, upload_model, worker_factory
):
    model = upload_model(teammate, system)
    config = {**SLOW, "max_samples": 160, "steps": 10}
    run_id = submit(api, teammate, system, model, config)
    first = worker_factory()
    wait_for(lambda: run(run_id).progress > 0.01, timeout=120, worker=first, what="progress")
    first.kill()
    assert run(run_id).status == RunStatus.RUNNING
    # Nothing beats any more; pretend the stale period passed, then let the reaper look.
    from datetime import timedelta

    from django.utils import timezone

    EvaluationRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    assert reap_stale_runs() == {"requeued": [run_id], "failed": []}
    assert run(run_id).status == RunStatus.QUEUED
    second = worker_factory()
    wait_for(lambda: run(run_id).finished, timeout=240, worker=second, what="the retried run")
    retried = run(run_id)
    assert retried.status == RunStatus.SUCCEEDED, retried.error_message
    assert retried.attempts == 2


def test_a_sharded_run_equals_the_unsharded_run_with_the_same_seed(api, teammate, system, upload_model, worker_factory):
    model = upload_model(teammate, system)
    config = {**QUICK, "max_samples": 40, "shard_size": 8, "seed": 7}
    whole_id = submit(api, teammate, system, model, config)
    sharded_id = submit(api, teammate, system, model, {**config, "shards": 3})
    worker = worker_factory()
    wait_for(lambda: run(whole_id).finished and run(sharded_id).finished, timeout=240, worker=worker, what="both runs")
    whole, sharded = run(whole_id), run(sharded_id)
    assert whole.status == sharded.status == RunStatus.SUCCEEDED, (whole.error_message, sharded.error_message)
    assert sharded.shard_rows.count() == 3

    def comparable(metrics: dict) -> dict:
        points = [{k: v for k, v in p.items() if k not in ("seconds", "samples_per_second")} for p in metrics["points"]]
        return {**metrics, "points": points}

    assert comparable(sharded.metrics) == comparable(whole.metrics)
    assert sharded.reproducibility["unit_seeds"] == whole.reproducibility["unit_seeds"]
