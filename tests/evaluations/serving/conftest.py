"""Fixtures for the serving guard: a deployed tiny digits CNN, keys, a client that posts batches."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
from django.core.cache import cache
from django.test import Client

from evaluations.serving import services
from evaluations.serving.models import ConsumerKey, Deployment


@pytest.fixture(autouse=True)
def fresh_cache():
    """Rate-limit windows and monitor state (the logs and this process's detectors) never leak between tests."""
    from evaluations.serving import monitor

    cache.clear()
    monitor._PROCESS.clear()
    yield
    cache.clear()
    monitor._PROCESS.clear()


@pytest.fixture(scope="session")
def trained_cnn_bytes() -> bytes:
    """The demo digits CNN trained long enough to be confident on natural digits (~97% test accuracy, ~10 s).

    The detector's entropy monitor is calibrated for such a model: a barely trained one is unsure of every
    input, so even benign clients would look like boundary-probing attackers.
    """
    from evaluations.demo import train_digits_small_cnn

    return train_digits_small_cnn(epochs=25)


@pytest.fixture
def model(upload_model, teammate, system, trained_cnn_bytes):
    """The trained digits CNN, scanned clean."""
    from evaluations.demo import DEMO_HYPERPARAMS

    return upload_model(teammate, system, data=trained_cnn_bytes, hyperparams=DEMO_HYPERPARAMS)


@pytest.fixture
def deploy(teammate, system, model) -> Callable[..., Deployment]:
    """``deploy(**settings)`` deploys the tiny model through the service (as the editor)."""

    def make(**fields) -> Deployment:
        fields.setdefault("name", "public api")
        fields.setdefault("slug", "public-api")
        fields.setdefault("log_sample_rate", 0.0)
        fields.setdefault("burst", max(1000, fields.get("max_batch", 64)))
        fields.setdefault("rate_per_minute", max(100_000, fields["burst"]))
        return services.deployment_create(actor=teammate, system=system, model_artifact=model, **fields)

    return make


@pytest.fixture
def issue(teammate) -> Callable[..., tuple[ConsumerKey, str]]:
    """``issue(deployment, owner=...)`` issues a consumer key; returns (key, secret)."""

    def make(deployment: Deployment, owner: str = "partner app", purpose: str = "tests") -> tuple[ConsumerKey, str]:
        return services.consumer_key_issue(actor=teammate, deployment=deployment, owner=owner, purpose=purpose)

    return make


@pytest.fixture
def post() -> Callable[..., object]:
    """``post(deployment, secret, body)`` posts a prediction request; body may be a dict, list or raw bytes."""
    client = Client()

    def send(deployment: Deployment, secret: str | None, body, *, path: str | None = None):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
        return client.post(path or deployment.predict_path, data=data, content_type="application/json", **headers)

    return send


@pytest.fixture(scope="session")
def digits_test():
    """Digits test split (x in [0, 1] of shape (N, 1, 8, 8), y)."""
    from evaluations.engine.datasets import load_reference

    split = load_reference("digits", seed=0)
    return np.asarray(split.test.x, dtype=np.float64), np.asarray(split.test.y)
