"""/healthz reports the database, the broker and the workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from garrison.core.health import redacted_broker_url
from garrison.core.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker_ok(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_DIR = tmp_path
    (tmp_path / "queue").mkdir()
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


def test_healthz_is_503_when_the_broker_is_unreachable(client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_healthz_reports_stale_and_fresh_workers(client):
    WorkerHeartbeat.objects.create(hostname="w1@host", last_seen=timezone.now() - timedelta(hours=1))
    assert client.get("/healthz").json()["checks"]["workers"]["ok"] is False
    WorkerHeartbeat.objects.create(hostname="w2@host", last_seen=timezone.now())
    workers = client.get("/healthz").json()["checks"]["workers"]
    assert workers["ok"] is True and "w2@host" in workers["detail"]


def test_broker_passwords_never_appear_in_health_output():
    assert redacted_broker_url("redis://:hunter2@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redacted_broker_url("amqp://guest:s3cret@rabbit:5672//") == "amqp://guest:***@rabbit:5672//"
