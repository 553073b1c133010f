"""Bad input gets a clear 4xx in the one error shape, and nothing is half-written."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from garrison.audit.models import AuditEvent
from threatmodel.models import System

pytestmark = pytest.mark.django_db


def assert_error_shape(body: dict, status: int) -> dict:
    assert set(body) == {"error", "request_id"}
    assert body["error"]["status"] == status
    assert body["error"]["code"] and body["error"]["message"]
    return body["error"]


def test_malformed_json_is_a_400_in_the_error_shape(api, teammate, team):
    response = api(teammate).post(
        "/api/systems/", data='{"team": "fraud-ml", "name": ', content_type="application/json"
    )
    error = assert_error_shape(response.json(), 400)
    assert error["code"] == "parse_error"
    assert "JSON" in error["message"]


def test_unknown_fields_are_rejected_and_named(api, teammate, team):
    response = api(teammate).post(
        "/api/systems/", {"team": "fraud-ml", "name": "Churn", "critcality_tier": 1}, format="json"
    )
    error = assert_error_shape(response.json(), 400)
    assert "critcality_tier" in error["fields"]
    assert "Allowed fields" in error["fields"]["critcality_tier"][0]
    assert not System.objects.filter(name="Churn").exists()


def test_field_errors_say_what_is_wrong(api, teammate, team):
    response = api(teammate).post(
        "/api/systems/", {"team": "fraud-ml", "name": "X", "criticality_tier": 9}, format="json"
    )
    error = assert_error_shape(response.json(), 400)
    assert "criticality_tier" in error["fields"]
    assert error["message"].startswith("Invalid input")


def test_duplicate_slug_is_a_400_and_writes_nothing(api, teammate, system):
    before = AuditEvent.objects.count()
    response = api(teammate).post("/api/systems/", {"team": "fraud-ml", "name": "Fraud scorer"}, format="json")
    error = assert_error_shape(response.json(), 400)
    assert "already exists" in json.dumps(error["fields"])
    assert System.objects.filter(team=system.team).count() == 1
    assert AuditEvent.objects.count() == before


def test_non_object_json_body_is_a_400(api, teammate, team):
    response = api(teammate).post("/api/systems/", data="[1, 2]", content_type="application/json")
    assert_error_shape(response.json(), 400)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_oversize_body_is_a_413(api, teammate, team):
    body = json.dumps({"team": "fraud-ml", "name": "Big", "description": "x" * 5000})
    response = api(teammate).post("/api/systems/", data=body, content_type="application/json")
    error = assert_error_shape(response.json(), 413)
    assert "too large" in error["message"] or "larger" in error["message"]
    assert not System.objects.filter(name="Big").exists()


def test_unsupported_media_type_is_a_415(api, teammate, team):
    response = api(teammate).post("/api/systems/", data="name=x", content_type="text/plain")
    assert_error_shape(response.json(), 415)


def test_unknown_api_path_is_a_json_404(api, teammate):
    response = api(teammate).get("/api/no-such-thing/")
    assert response.status_code == 404
    assert_error_shape(response.json(), 404)


def test_method_not_allowed_is_a_405_in_the_error_shape(api, teammate, system):
    response = api(teammate).put(f"/api/systems/{system.id}/", {}, format="json")
    assert_error_shape(response.json(), 405)


def test_errors_carry_the_request_id(api, teammate):
    response = api(teammate).get("/api/systems/999/", HTTP_X_REQUEST_ID="trace-abcdef123")
    assert response.json()["request_id"] == "trace-abcdef123"
    assert response["X-Request-ID"] == "trace-abcdef123"


def test_an_unsafe_request_id_is_replaced(api, teammate):
    response = api(teammate).get("/api/systems/", HTTP_X_REQUEST_ID="bad id\nforged log line")
    assert response["X-Request-ID"] != "bad id\nforged log line"
    assert len(response["X-Request-ID"]) == 32


def test_bad_query_parameters_are_a_400(api, teammate):
    response = api(teammate).get("/api/systems/", {"criticality_tier": "seven"})
    error = assert_error_shape(response.json(), 400)
    assert "criticality_tier" in error["fields"]


def test_unexpected_server_errors_answer_500_in_the_error_shape(teammate, monkeypatch):
    from rest_framework.test import APIClient

    from threatmodel import selectors

    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "system_list", explode)
    client = APIClient(raise_request_exception=False)
    client.force_login(teammate)
    response = client.get("/api/systems/")
    error = assert_error_shape(response.json(), 500)
    assert "request id" in error["message"]
    assert "boom" not in error["message"]
