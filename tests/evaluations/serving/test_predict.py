"""The prediction endpoint: the engine's answers under each output policy, and every bad request refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evaluations.serving import predictor
from evaluations.serving.models import DeploymentStatus, OutputPolicy

pytestmark = pytest.mark.django_db


def engine_victim(model, output="probabilities", k=3, defense=None):
    """The engine's own in-process victim for the tiny model (loaded independently of the serving cache)."""
    from evaluations.engine.extraction import LocalVictim
    from evaluations.engine.models import load_model

    classifier = load_model(
        model.blob.path,
        format="safetensors",
        architecture=model.architecture,
        hyperparams=dict(model.hyperparams),
        input_shape=tuple(model.input_shape),
        bounds=tuple(model.input_bounds),
        num_classes=len(model.class_names),
    )
    return LocalVictim(classifier, output=output, k=k, defense=defense)


def _defense(name, **params):
    from evaluations.engine.extraction import GaussianNoise, ReverseSigmoid, Rounding

    return {"rounding": Rounding, "reverse_sigmoid": ReverseSigmoid, "gaussian_noise": GaussianNoise}[name](**params)


POLICIES = [
    ({"output_policy": OutputPolicy.FULL}, {"output": "probabilities"}),
    ({"output_policy": OutputPolicy.TOP_K, "top_k": 2}, {"output": "top_k", "k": 2}),
    ({"output_policy": OutputPolicy.LABEL_ONLY}, {"output": "label"}),
    ({"output_policy": OutputPolicy.ROUNDING, "decimals": 1}, {"defense": ("rounding", {"decimals": 1})}),
    (
        {"output_policy": OutputPolicy.REVERSE_SIGMOID, "beta": 0.5, "gamma": 1.5},
        {"defense": ("reverse_sigmoid", {"beta": 0.5, "gamma": 1.5})},
    ),
    (
        {"output_policy": OutputPolicy.GAUSSIAN_NOISE, "noise_std": 0.1, "noise_seed": 7},
        {"defense": ("gaussian_noise", {"std": 0.1, "seed": 7})},
    ),
]


@pytest.mark.parametrize(("fields", "engine"), POLICIES, ids=[p[0]["output_policy"] for p in POLICIES])
def test_predictions_equal_the_engines_local_victim_for_each_output_policy(
    deploy, issue, post, model, digits_test, fields, engine
):
    deployment = deploy(**fields)
    _, secret = issue(deployment)
    x = digits_test[0][:12]
    response = post(deployment, secret, {"inputs": x.tolist()})
    assert response.status_code == 200, response.content
    served = response.json()["predictions"]

    engine = dict(engine)
    if "defense" in engine:
        name, params = engine.pop("defense")
        engine["defense"] = _defense(name, **params)
    expected = engine_victim(model, **engine).query(torch.tensor(x))
    assert [p["label"] for p in served] == expected.labels.tolist()
    if expected.probabilities is not None:
        assert all(p["top_k"] is None for p in served)
        np.testing.assert_allclose([p["probabilities"] for p in served], expected.probabilities, rtol=0, atol=1e-12)
    elif expected.top_k_labels is not None:
        assert all(p["probabilities"] is None for p in served)
        assert [[c for c, _ in p["top_k"]] for p in served] == expected.top_k_labels.tolist()
        np.testing.assert_allclose(
            [[q for _, q in p["top_k"]] for p in served], expected.top_k_probabilities, rtol=0, atol=1e-12
        )
    else:
        assert all(p["probabilities"] is None and p["top_k"] is None for p in served)


def test_the_engines_http_victim_reads_the_served_answers_unchanged(deploy, issue, model, digits_test, live_server):
    from evaluations.engine.extraction import HttpVictim

    deployment = deploy(output_policy=OutputPolicy.TOP_K, top_k=3)
    _, secret = issue(deployment)
    victim = HttpVictim(
        live_server.url + deployment.predict_path,
        input_shape=(1, 8, 8),
        num_classes=10,
        bounds=(0.0, 1.0),
        api_key=secret,
        batch_size=16,
    )
    x = torch.tensor(digits_test[0][:40])
    answer = victim.query(x)
    expected = engine_victim(model, output="top_k", k=3).query(x)
    assert answer.labels.tolist() == expected.labels.tolist()
    assert answer.top_k_labels.tolist() == expected.top_k_labels.tolist()
    assert victim.requests_made == 3


@pytest.fixture
def no_model_call(monkeypatch):
    """Fails the test if the model is called."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the model was called for a request that should have been refused")

    monkeypatch.setattr(predictor, "predict", refuse)
    return calls


GOOD = np.zeros((1, 1, 8, 8)).tolist()
BAD_BODIES = [
    ("malformed json", b'{"inputs": [', "not valid JSON"),
    ("not an object", b"[1, 2, 3]", "JSON object"),
    ("no inputs field", {"x": GOOD}, "JSON object"),
    ("unknown field", {"inputs": GOOD, "extra": 1}, "Unknown field"),
    ("empty batch", {"inputs": []}, "non-empty list"),
    ("inputs not a list", {"inputs": "digits"}, "non-empty list"),
    ("wrong shape", {"inputs": np.zeros((2, 8, 8)).tolist()}, "shape (1, 8, 8)"),
    ("flat vector", {"inputs": [[0.0] * 64]}, "shape (1, 8, 8)"),
    ("ragged rows", {"inputs": [[[0.0] * 8] * 7 + [[0.0] * 5]]}, "shape (1, 8, 8)"),
    ("strings", {"inputs": [[[["a"] * 8] * 8]]}, "numbers; got strings"),
    ("booleans", {"inputs": [[[[True] * 8] * 8]]}, "numbers; got true/false"),
    ("nulls", {"inputs": [[[[None] * 8] * 8]]}, "non-numbers"),
    ("mixed strings and numbers", {"inputs": [[[[0.5] * 7 + ["1"]] * 8]]}, "numbers; got strings"),
    ("NaN", b'{"inputs": [[[NaN, 0, 0, 0, 0, 0, 0, 0]]]}', "NaN"),
    ("Infinity", b'{"inputs": [[[Infinity, 0, 0, 0, 0, 0, 0, 0]]]}', "NaN or Infinity"),
    ("overflowing number", ('{"inputs": [[[' + ",".join(["[1e999,0,0,0,0,0,0,0]"] * 8) + "]]]}").encode(), "finite"),
    ("out of bounds", {"inputs": (np.ones((1, 1, 8, 8)) * 2).tolist()}, "bounds [0, 1]"),
    ("batch over the limit", {"inputs": np.zeros((5, 1, 8, 8)).tolist()}, "at most 4 per request"),
]


@pytest.mark.parametrize(("name", "body", "message"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_a_bad_body_gets_a_400_that_says_how_to_fix_it_and_no_model_call(
    deploy, issue, post, no_model_call, name, body, message
):
    deployment = deploy(max_batch=4)
    _, secret = issue(deployment)
    response = post(deployment, secret, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and message in error["message"], error
    assert "Traceback" not in response.content.decode()
    assert no_model_call == []


def test_a_body_over_the_deployments_size_limit_gets_413_without_a_model_call(deploy, issue, post, no_model_call):
    deployment = deploy(max_body_bytes=2048)
    _, secret = issue(deployment)
    response = post(deployment, secret, {"inputs": np.zeros((30, 1, 8, 8)).tolist()})
    assert response.status_code == 413
    assert "2,048-byte limit" in response.json()["error"]["message"]


def test_a_body_over_the_servers_limit_is_refused_before_the_key_is_looked_up(
    deploy, post, no_model_call, settings, django_assert_num_queries
):
    deployment = deploy()
    settings.GARRISON_SERVING_MAX_BODY_BYTES = 1000
    with django_assert_num_queries(0):
        response = post(deployment, "gsk_whatever", b"x" * 2000)
    assert response.status_code == 413


def test_calls_without_a_valid_key_are_refused_with_401(deploy, post, no_model_call):
    deployment = deploy()
    missing = post(deployment, None, {"inputs": GOOD})
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["error"]["message"]
    assert missing["WWW-Authenticate"].startswith("Bearer")
    wrong = post(deployment, "gsk_not-a-key", {"inputs": GOOD})
    assert wrong.status_code == 401 and "Unknown consumer key" in wrong.json()["error"]["message"]


def test_a_revoked_key_gets_403_and_no_model_call(deploy, issue, post, teammate, no_model_call):
    from evaluations.serving.services import consumer_key_revoke

    deployment = deploy()
    key, secret = issue(deployment)
    consumer_key_revoke(actor=teammate, key=key)
    response = post(deployment, secret, {"inputs": GOOD})
    assert response.status_code == 403 and response.json()["error"]["code"] == "key_revoked"


def test_an_unknown_deployment_gets_404_even_with_a_valid_key(deploy, issue, post, system, no_model_call):
    deployment = deploy()
    _, secret = issue(deployment)
    response = post(deployment, secret, {"inputs": GOOD}, path=f"/api/serve/{system.slug}/no-such/predict")
    assert response.status_code == 404 and "No deployment" in response.json()["error"]["message"]


def test_a_key_of_one_deployment_cannot_call_another(deploy, issue, post, no_model_call):
    first = deploy()
    second = deploy(name="internal", slug="internal")
    _, secret = issue(first)
    assert post(second, secret, {"inputs": GOOD}).status_code == 404


def test_a_disabled_deployment_answers_409(deploy, issue, post, teammate, no_model_call):
    from evaluations.serving.services import deployment_update

    deployment = deploy()
    _, secret = issue(deployment)
    deployment_update(actor=teammate, deployment=deployment, status=DeploymentStatus.DISABLED)
    response = post(deployment, secret, {"inputs": GOOD})
    assert response.status_code == 409 and "disabled" in response.json()["error"]["message"]


def test_only_post_is_allowed(deploy, issue, client, no_model_call):
    deployment = deploy()
    response = client.get(deployment.predict_path)
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_a_good_request_costs_at_most_three_queries_once_the_model_is_loaded(
    deploy, issue, post, django_assert_max_num_queries
):
    deployment = deploy(monitor_enabled=True, output_policy=OutputPolicy.REVERSE_SIGMOID)
    _, secret = issue(deployment)
    post(deployment, secret, {"inputs": GOOD})  # loads the model, sets last_used_at
    with django_assert_max_num_queries(1):
        response = post(deployment, secret, {"inputs": GOOD})
    assert response.status_code == 200


def test_a_model_that_is_not_scanned_clean_cannot_be_deployed(teammate, system, upload_model):
    from django.core.exceptions import ValidationError

    from evaluations.serving.services import deployment_create

    pending = upload_model(teammate, system, scan=False)
    with pytest.raises(ValidationError) as excinfo:
        deployment_create(actor=teammate, system=system, model_artifact=pending, name="x", slug="x")
    assert "clean" in str(excinfo.value)


def test_the_served_body_is_json_with_one_prediction_per_input(deploy, issue, post, digits_test):
    deployment = deploy()
    _, secret = issue(deployment)
    response = post(deployment, secret, {"inputs": digits_test[0][:3].tolist()})
    body = json.loads(response.content)
    assert set(body) == {"predictions"} and len(body["predictions"]) == 3
    assert all(abs(sum(p["probabilities"]) - 1.0) < 1e-9 for p in body["predictions"])


def test_loading_a_model_freezes_the_heap_out_of_full_garbage_collections(deploy, issue, post, digits_test, settings):
    import gc

    settings.GARRISON_SERVING_FREEZE_HEAP = True  # off for the rest of the suite (tests/conftest.py)
    predictor.forget_models()
    gc.unfreeze()
    deployment = deploy()
    _, secret = issue(deployment)
    try:
        assert post(deployment, secret, {"inputs": digits_test[0][:1].tolist()}).status_code == 200
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # torch, Django and the model: out of every full pass from now on
        assert post(deployment, secret, {"inputs": digits_test[0][:2].tolist()}).status_code == 200
        assert gc.get_freeze_count() <= frozen  # once per model load, not per request (freed ones leave it)
    finally:
        gc.unfreeze()


def test_each_output_policy_of_a_model_is_made_once_per_process(model):
    policy = {"name": "reverse_sigmoid", "beta": 0.7, "gamma": 1.2}
    first = predictor.victim_for(model, policy)
    assert predictor.victim_for(model, {"gamma": 1.2, "beta": 0.7, "name": "reverse_sigmoid"}) is first
    other = predictor.victim_for(model, {**policy, "beta": 0.5})
    assert other is not first and other.defense.beta == 0.5 and other.classifier is first.classifier
    predictor.forget_models()
    assert predictor.victim_for(model, policy) is not first
