"""A property-based run over the serving endpoint: whatever is sent, the answer is never a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=60,
)
numbers = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.integers(-5, 5)
rows = st.lists(numbers, min_size=0, max_size=9)
inputs = st.lists(st.lists(st.lists(rows, min_size=0, max_size=9), min_size=0, max_size=2), min_size=0, max_size=5)
pixels = st.floats(0.0, 1.0) | st.sampled_from([0, 1, -0.0, 1e-300])
images = st.lists(st.lists(st.lists(pixels, min_size=8, max_size=8), min_size=8, max_size=8), min_size=1, max_size=1)
bodies = st.one_of(
    st.builds(lambda x: json.dumps({"inputs": x}).encode(), st.lists(images, min_size=1, max_size=4)),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda x: json.dumps({"inputs": x}).encode(), inputs),
    st.builds(
        lambda x, extra: json.dumps({"inputs": x, **extra}).encode(),
        inputs,
        st.dictionaries(st.text(max_size=4), json_values, max_size=2),
    ),
    st.binary(max_size=300),
)
auth = st.sampled_from(["valid"] * 6 + ["none", "garbage", "Basic abc", "Bearer"])
paths = st.sampled_from(["own"] * 6 + ["other-slug", "other-system"])


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, how=auth, where=paths)
def test_no_request_to_the_prediction_endpoint_gets_a_5xx(deploy_once, client, body, how, where):
    deployment, secret = deploy_once
    headers = {
        "valid": {"HTTP_AUTHORIZATION": f"Bearer {secret}"},
        "none": {},
        "garbage": {"HTTP_AUTHORIZATION": "Bearer gsk_garbage"},
        "Basic abc": {"HTTP_AUTHORIZATION": "Basic abc"},
        "Bearer": {"HTTP_AUTHORIZATION": "Bearer"},
    }[how]
    path = {
        "own": deployment.predict_path,
        "other-slug": f"/api/serve/{deployment.system.slug}/nope/predict",
        "other-system": "/api/serve/nope/nope/predict",
    }[where]
    response = client.post(path, data=body, content_type="application/json", **headers)
    event(f"status {response.status_code}")
    assert response.status_code < 500, (response.status_code, body[:200])
    assert response.status_code in (200, 400, 401, 403, 404, 413, 429)
    if response.status_code != 200:
        error = response.json()["error"]
        assert error["message"] and error["status"] == response.status_code
    else:
        assert len(response.json()["predictions"]) == len(json.loads(body)["inputs"])


@pytest.fixture
def deploy_once(deploy, issue):
    deployment = deploy(max_batch=3, burst=10_000, rate_per_minute=1_000_000, daily_quota=1_000_000)
    _, secret = issue(deployment)
    return deployment, secret
