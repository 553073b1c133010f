"""Signing in and out, and lock-out after repeated failures."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_with_the_right_password_reaches_the_home_page(client, owner):
    response = client.post("/login/", {"username": "owner", "password": PASSWORD}, follow=True)
    assert response.status_code == 200
    assert "Welcome, owner" in response.content.decode()


def test_wrong_password_shows_a_clear_error(client, owner):
    response = client.post("/login/", {"username": "owner", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_is_locked_after_repeated_failures_even_with_the_right_password(client, owner):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "owner", "password": "wrong"})
    response = client.post("/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failures_below_the_limit_do_not_lock(client, owner):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/login/", {"username": "owner", "password": "wrong"})
    response = client.post("/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302


def test_lockout_of_one_user_does_not_lock_another(client, owner, teammate):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "owner", "password": "wrong"})
    assert client.post("/login/", {"username": "teammate", "password": PASSWORD}).status_code == 302


def test_logout_requires_post_and_ends_the_session(client, owner):
    client.force_login(owner)
    assert client.get("/logout/").status_code == 405
    client.post("/logout/")
    assert "_auth_user_id" not in client.session
