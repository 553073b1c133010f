"""API tokens: shown once, stored hashed, revocable, expiring, last use recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from garrison.accounts.models import ApiToken
from garrison.accounts.roles import TokenRole
from garrison.accounts.services import api_token_revoke
from garrison.accounts.tokens import hash_token_secret

pytestmark = pytest.mark.django_db


def test_creating_a_token_returns_the_secret_once_and_stores_only_its_hash(api, owner, team):
    response = api(owner).post("/api/teams/fraud-ml/tokens/", {"name": "release", "role": "ci"}, format="json")
    assert response.status_code == 201
    secret = response.json()["secret"]
    assert secret.startswith("grs_") and len(secret) > 40
    token = ApiToken.objects.get(name="release")
    assert token.key_hash == hash_token_secret(secret)
    assert secret not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    listed = api(owner).get("/api/teams/fraud-ml/tokens/").json()
    assert "secret" not in listed[0] and listed[0]["prefix"] == secret[:12]


def test_token_page_shows_a_new_secret_only_once(client, owner, team):
    client.force_login(owner)
    response = client.post("/teams/fraud-ml/tokens/create/", {"name": "pipeline", "role": "ci"}, follow=True)
    page = response.content.decode()
    assert "Copy it now" in page
    token = ApiToken.objects.get(name="pipeline")
    secret = page.split('id="new-token-secret">')[1].split("<")[0]
    assert hash_token_secret(secret) == token.key_hash
    again = client.get("/teams/fraud-ml/").content.decode()
    assert secret not in again


def test_revoked_token_is_rejected_with_a_clear_401(token_api, make_token, owner, system):
    token, secret = make_token(TokenRole.CI)
    assert token_api(secret).get("/api/systems/").status_code == 200
    api_token_revoke(actor=owner, token=token)
    response = token_api(secret).get("/api/systems/")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_rejected_with_a_clear_401(token_api, make_token, system):
    token, secret = make_token(TokenRole.CI, expires_at=timezone.now() + timedelta(hours=1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = token_api(secret).get("/api/systems/")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_unknown_token_is_rejected(token_api, system):
    response = token_api("grs_not-a-real-token").get("/api/systems/")
    assert response.status_code == 401
    assert "Invalid API token" in response.json()["error"]["message"]


def test_malformed_authorization_header_is_rejected(api, system):
    client = api()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    response = client.get("/api/systems/")
    assert response.status_code == 401
    assert "Malformed" in response.json()["error"]["message"]


def test_token_use_records_the_last_used_time(token_api, make_token, system):
    token, secret = make_token(TokenRole.CI)
    assert token.last_used_at is None
    before = timezone.now()
    token_api(secret).get("/api/systems/")
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at >= before


def test_expiry_in_the_past_is_refused(api, owner, team):
    response = api(owner).post(
        "/api/teams/fraud-ml/tokens/",
        {"name": "old", "expires_at": (timezone.now() - timedelta(days=1)).isoformat()},
        format="json",
    )
    assert response.status_code == 400
    assert "future" in response.json()["error"]["fields"]["expires_at"][0]
    assert not ApiToken.objects.filter(name="old").exists()


def test_revoking_twice_is_a_clear_400(api, owner, make_token):
    token, _ = make_token(TokenRole.CI)
    client = api(owner)
    assert client.post(f"/api/teams/fraud-ml/tokens/{token.id}/revoke/").status_code == 200
    response = client.post(f"/api/teams/fraud-ml/tokens/{token.id}/revoke/")
    assert response.status_code == 400
    assert "already revoked" in response.json()["error"]["fields"]["non_field_errors"][0]
