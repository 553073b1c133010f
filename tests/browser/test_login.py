"""End to end in a real browser: sign in and see the home page."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_user_signs_in_and_sees_their_teams_and_systems(page, owner, system):
    page.goto("/")
    assert "/login/" in page.url
    page.fill("#id_username", "owner")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Welcome, owner")
    assert page.is_visible("text=Fraud ML")
    assert page.is_visible("a:has-text('Fraud scorer')")
    page.click("nav >> text=Audit log")
    page.wait_for_selector("h1:has-text('Audit log')")


def test_wrong_password_shows_an_error_in_the_browser(page, owner):
    page.goto("/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "not the password")
    page.click("button[type=submit]")
    assert page.is_visible("[role=alert]")
    assert "/login/" in page.url
