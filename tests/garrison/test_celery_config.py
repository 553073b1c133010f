"""The Celery app's reliability settings."""

from __future__ import annotations

from garrison.celery import app, broker_transport_options


def test_celery_uses_json_only():
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_tasks_are_acked_late_and_requeued_when_a_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_tasks_have_soft_and_hard_time_limits():
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_evaluation_tasks_go_to_the_ml_queue():
    assert {q.name for q in app.conf.task_queues} == {"default", "ml"}
    route = app.amqp.router.route({}, "evaluations.tasks.run_evaluation")
    assert route["queue"].name == "ml"
    assert app.amqp.router.route({}, "garrison.core.tasks.worker_heartbeat")["queue"].name == "default"


def test_beat_keeps_schedules_in_the_database_and_schedules_the_heartbeat():
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert app.conf.beat_schedule["worker-heartbeat"]["task"] == "garrison.core.tasks.worker_heartbeat"


def test_filesystem_broker_gets_its_folders(tmp_path):
    options = broker_transport_options("filesystem://", tmp_path)
    assert options["data_folder_in"] == options["data_folder_out"]
    assert (tmp_path / "queue").is_dir() and (tmp_path / "processed").is_dir()
    assert "data_folder_in" not in broker_transport_options("redis://localhost:6379/0", tmp_path)


def test_every_beat_entry_names_a_registered_task():
    app.loader.import_default_modules()
    missing = [name for name, entry in app.conf.beat_schedule.items() if entry["task"] not in app.tasks]
    assert missing == []
    assert "serving-query-log-retention" in app.conf.beat_schedule
