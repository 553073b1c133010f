"""Evaluation pages: registry, run page with chart and flags, compare, schedules, management commands."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from evaluations import services
from evaluations.execution import execute
from evaluations.models import EvaluationRun, EvaluationSchedule

pytestmark = pytest.mark.django_db

TINY = {"attack": "fgsm", "epsilons": [0.0, 0.2], "max_samples": 16, "batch_size": 8, "sanity": "off"}


@pytest.fixture
def finished_run(upload_model, teammate, system):
    model = upload_model(teammate, system)
    dataset = services.dataset_register_reference(actor=teammate, system=system, reference_name="digits")
    run = services.evaluation_run_queue(
        actor=teammate, system=system, kind="robustness", model_artifact=model, dataset=dataset, config=TINY
    )
    execute(run.pk, worker="test")
    run.refresh_from_db()
    return run


def test_the_runs_page_lists_runs_with_filters(client, teammate, finished_run):
    client.force_login(teammate)
    page = client.get("/evaluations/?status=succeeded")
    assert page.status_code == 200 and f"#{finished_run.pk}" in page.text
    assert f"#{finished_run.pk}" not in client.get("/evaluations/?status=failed").text


def test_a_finished_run_page_shows_the_chart_thumbnails_and_no_polling(client, teammate, finished_run):
    client.force_login(teammate)
    page = client.get(finished_run.get_absolute_url())
    assert page.status_code == 200
    assert 'id="robustness-chart"' in page.text and "<svg" in page.text
    assert 'class="thumb"' in page.text
    assert 'data-finished="1"' in page.text


def test_an_unreliable_run_shows_a_red_banner(client, teammate, finished_run):
    EvaluationRun.objects.filter(pk=finished_run.pk).update(
        reliable=False, flags=[{"code": "not_converged", "message": "a stronger attack fooled more"}]
    )
    client.force_login(teammate)
    page = client.get(finished_run.get_absolute_url())
    assert 'id="unreliable-banner"' in page.text and "not_converged" in page.text


def test_the_status_endpoint_answers_small_json_and_outsiders_get_404(client, teammate, outsider, finished_run):
    client.force_login(teammate)
    body = client.get(f"/evaluations/runs/{finished_run.pk}/status.json").json()
    assert body["status"] == "succeeded" and body["progress"] == 1.0 and body["finished"] is True
    client.force_login(outsider)
    assert client.get(f"/evaluations/runs/{finished_run.pk}/status.json").status_code == 404
    assert client.get(finished_run.get_absolute_url()).status_code == 404


def test_two_runs_compare_side_by_side(client, teammate, finished_run):
    other = services.evaluation_run_queue(
        actor=teammate,
        system=finished_run.system,
        kind="robustness",
        model_artifact=finished_run.model_artifact,
        dataset=finished_run.dataset,
        config={**TINY, "seed": 3},
    )
    execute(other.pk, worker="test")
    client.force_login(teammate)
    page = client.get(f"/evaluations/compare/?a={finished_run.pk}&b={other.pk}")
    assert page.status_code == 200 and page.text.count("<polyline") == 2


def test_the_registry_page_uploads_a_model_through_the_form(client, teammate, system, tiny_cnn_bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.evaluations.conftest import TINY_HYPERPARAMS

    client.force_login(teammate)
    assert client.get(f"/evaluations/systems/{system.pk}/").status_code == 200
    response = client.post(
        f"/evaluations/systems/{system.pk}/models/upload/",
        {
            "file": SimpleUploadedFile("m.safetensors", tiny_cnn_bytes),
            "format": "safetensors",
            "architecture": "small_cnn",
            "hyperparams": __import__("json").dumps(TINY_HYPERPARAMS),
            "input_shape": "[1, 8, 8]",
            "input_bounds": "[0, 1]",
            "class_names": __import__("json").dumps([str(i) for i in range(10)]),
        },
    )
    assert response.status_code == 302, response.content[:2000]


def test_viewer_cannot_open_the_run_form(client, viewer, system):
    client.force_login(viewer)
    assert client.get(f"/evaluations/runs/new/{system.pk}/").status_code == 403


def test_a_schedule_owns_a_beat_entry_that_follows_its_changes(client, teammate, system):
    client.force_login(teammate)
    response = client.post(
        f"/evaluations/systems/{system.pk}/schedules/new/",
        {
            "name": "weekly",
            "kind": "robustness",
            "dataset": "ref:digits",
            "config": '{"attack": "fgsm"}',
            "crontab": "0 3 * * 1",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    schedule = EvaluationSchedule.objects.get()
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "evaluations.tasks.run_schedule" and task.crontab.hour == "3"
    client.post(
        f"/evaluations/schedules/{schedule.pk}/",
        {
            "name": "weekly",
            "kind": "robustness",
            "dataset": "ref:digits",
            "config": "",
            "crontab": "",
            "run_on_new_model": "on",
            "enabled": "on",
        },
    )
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    schedule.refresh_from_db()
    assert schedule.run_on_new_model and schedule.periodic_task is None


def test_a_schedule_fires_a_run_on_the_latest_clean_model(upload_model, teammate, system):
    from evaluations.schedules import evaluation_schedule_save, schedule_fire, schedules_fire_for_new_model

    model = upload_model(teammate, system)
    schedule = evaluation_schedule_save(
        actor=teammate, system=system, name="nightly", kind="model_scan", crontab="0 2 * * *", run_on_new_model=True
    )
    run_id = schedule_fire(schedule_id=schedule.pk)
    assert EvaluationRun.objects.get(pk=run_id).model_artifact == model
    assert schedules_fire_for_new_model(artifact_id=model.pk)


def test_scan_model_command_exits_0_when_clean_and_1_when_not(tmp_path, tiny_cnn_bytes, malicious_torch_zip):
    clean = tmp_path / "m.safetensors"
    clean.write_bytes(tiny_cnn_bytes)
    call_command("scan_model", str(clean))
    bad = tmp_path / "m.pt"
    bad.write_bytes(malicious_torch_zip)
    with pytest.raises(SystemExit) as exit_info:
        call_command("scan_model", str(bad))
    assert exit_info.value.code == 1


def test_run_evaluation_command_runs_synchronously(upload_model, teammate, system, capsys):
    model = upload_model(teammate, system)
    call_command(
        "run_evaluation",
        model=model.pk,
        user="teammate",
        kind="robustness",
        reference="digits",
        config='{"attack": "fgsm", "epsilons": [0, 0.1], "max_samples": 8, "sanity": "off"}',
    )
    assert "succeeded" in capsys.readouterr().out
