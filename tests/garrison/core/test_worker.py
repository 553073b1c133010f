"""A real Celery worker process (not eager mode) runs a task and its effect lands in the database.

Runs against the embedded filesystem broker always, and against the broker named by
``CELERY_BROKER_URL`` (Redis or RabbitMQ) when that variable is set.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from garrison.celery import broker_transport_options
from garrison.core.models import WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    """A URL for the test database this process uses, for the worker process to use too."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    pytest.fail(f"no worker test recipe for database vendor {connection.vendor}")


@pytest.fixture(params=["filesystem", "external"])
def broker(request, tmp_path) -> tuple[str, Path]:
    if request.param == "filesystem":
        return "filesystem://", tmp_path / "broker"
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url or url.startswith("filesystem://"):
        pytest.skip(
            "CELERY_BROKER_URL is not set to a broker server; set it (e.g. redis://127.0.0.1:6379/0) "
            "to run the worker against Redis or RabbitMQ"
        )
    return url, tmp_path / "broker"


def test_a_real_worker_process_runs_a_task_and_writes_to_the_database(broker):
    broker_url, broker_dir = broker
    queue = f"test-{uuid.uuid4().hex[:10]}"
    hostname = f"{queue}@garrison-test"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_BROKER_DIR": str(broker_dir),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "garrison",
            "worker",
            "--queues",
            queue,
            "--hostname",
            hostname,
            "--pool",
            "solo",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        producer = Celery(broker=broker_url)
        producer.conf.broker_transport_options = broker_transport_options(broker_url, broker_dir)
        producer.conf.task_serializer = "json"
        # An explicit connection: Celery lets the CELERY_BROKER_URL variable override `broker=`.
        with producer.connection_for_write(broker_url) as conn:
            producer.send_task("garrison.core.tasks.worker_heartbeat", queue=queue, connection=conn)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            if WorkerHeartbeat.objects.filter(hostname=hostname).exists():
                break
            time.sleep(0.5)
        beat = WorkerHeartbeat.objects.filter(hostname=hostname).first()
        if beat is None:
            worker.terminate()
            output = worker.communicate(timeout=30)[0]
            pytest.fail(f"the worker did not run the task within 90 s; its log:\n{output[-4000:]}")
        assert beat.beats == 1
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
