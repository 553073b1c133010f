"""The Celery application: JSON only, late acks, time limits, an ``ml`` queue.

The broker comes from ``CELERY_BROKER_URL``; without it Garrison uses kombu's
filesystem transport under ``var/broker`` so one machine needs no broker server.
Schedules live in the database (django-celery-beat).
"""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "garrison.settings")

app = Celery("garrison")


def broker_transport_options(broker_url: str, broker_dir: Path) -> dict:
    """Transport options for the broker; the filesystem transport needs its folders."""
    if not broker_url.startswith("filesystem://"):
        return {"visibility_timeout": 2 * 60 * 60}
    queue_dir = broker_dir / "queue"
    processed_dir = broker_dir / "processed"
    control_dir = broker_dir / "control"
    for folder in (queue_dir, processed_dir, control_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(queue_dir),
        "data_folder_out": str(queue_dir),
        "processed_folder": str(processed_dir),
        "control_folder": str(control_dir),
        "store_processed": False,
    }


def configure(celery_app: Celery) -> None:
    """Apply Garrison's Celery settings from Django settings."""
    from django.conf import settings

    celery_app.conf.update(
        broker_url=settings.CELERY_BROKER_URL,
        broker_transport_options=broker_transport_options(settings.CELERY_BROKER_URL, Path(settings.CELERY_BROKER_DIR)),
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Tasks record their effects in the database; no result backend to run.
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
        task_time_limit=settings.CELERY_TASK_TIME_LIMIT,
        task_always_eager=settings.CELERY_TASK_ALWAYS_EAGER,
        # One task at a time per worker process: ML tasks are long, late-acked work.
        worker_prefetch_multiplier=1,
        task_default_queue="default",
        task_queues=(
            Queue("default", Exchange("default"), routing_key="default"),
            Queue("ml", Exchange("ml"), routing_key="ml"),
        ),
        task_routes={"evaluations.tasks.*": {"queue": "ml"}},
        timezone=settings.TIME_ZONE,
        enable_utc=True,
        beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
        # Installed into the database schedule by beat at start; more schedules are added there.
        beat_schedule={
            "worker-heartbeat": {
                "task": "garrison.core.tasks.worker_heartbeat",
                "schedule": float(settings.CELERY_BEAT_SCHEDULE_HEARTBEAT_SECONDS),
            },
            "kpis-daily-measurement": {
                "task": "kpis.tasks.measure_all_systems",
                "schedule": 24 * 60 * 60.0,
                "options": {"queue": "default"},
            },
            "control-evidence-daily-refresh": {
                "task": "evaluations.tasks.refresh_control_evidence",
                "schedule": 24 * 60 * 60.0,
                "options": {"queue": "default"},
            },
            "expired-reports-cleanup": {
                "task": "incidents.tasks.expire_reports",
                "schedule": 24 * 60 * 60.0,
                "options": {"queue": "default"},
            },
            "serving-query-log-retention": {
                "task": "evaluations.serving.tasks.prune_query_logs",
                "schedule": 24 * 60 * 60.0,
                "options": {"queue": "default"},
            },
            "evaluation-run-reaper": {
                "task": "evaluations.tasks.reap_stale_runs",
                "schedule": 60.0,
                "options": {"queue": "default"},
            },
        },
        worker_hijack_root_logger=False,
        # Remote control (celery inspect) stays off on the filesystem transport: its fan-out polls
        # files on one machine and only adds load there.
        worker_enable_remote_control=not settings.CELERY_BROKER_URL.startswith("filesystem://"),
    )


@app.on_configure.connect
def _on_configure(sender: Celery, **kwargs: object) -> None:
    configure(sender)


app.autodiscover_tasks()
