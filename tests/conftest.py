"""Personas and clients shared by the whole suite.

``owner`` is the admin of ``team``; ``teammate`` is an editor there; ``viewer`` and
``approver`` hold those roles; ``outsider`` is the admin of another team and of
nothing here. Permission tests pick the persona they need.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from garrison.accounts.models import ApiToken, Team
from garrison.accounts.roles import Role, TokenRole
from garrison.accounts.services import api_token_create
from tests.factories import MembershipFactory, SystemFactory, TeamFactory, UserFactory


@pytest.fixture
def team(db) -> Team:
    """The team under test."""
    return TeamFactory(name="Fraud ML", slug="fraud-ml")


@pytest.fixture
def other_team(db) -> Team:
    """A team the personas of ``team`` do not belong to."""
    return TeamFactory(name="Other Team", slug="other-team")


def _member(team: Team, username: str, role: str):
    user = UserFactory(username=username)
    MembershipFactory(user=user, team=team, role=role)
    return user


@pytest.fixture
def owner(team):
    """Admin of ``team``."""
    return _member(team, "owner", Role.ADMIN)


@pytest.fixture
def teammate(team):
    """Editor in ``team``."""
    return _member(team, "teammate", Role.EDITOR)


@pytest.fixture
def approver(team):
    """Approver in ``team``."""
    return _member(team, "approver", Role.APPROVER)


@pytest.fixture
def viewer(team):
    """Viewer in ``team``."""
    return _member(team, "viewer", Role.VIEWER)


@pytest.fixture
def outsider(other_team):
    """Admin of ``other_team`` only."""
    return _member(other_team, "outsider", Role.ADMIN)


@pytest.fixture
def system(team):
    """A system of ``team``."""
    return SystemFactory(team=team, name="Fraud scorer", slug="fraud-scorer")


@pytest.fixture
def other_system(other_team):
    """A system of ``other_team``."""
    return SystemFactory(team=other_team, name="Other scorer", slug="other-scorer")


@pytest.fixture
def api() -> Callable[..., APIClient]:
    """``api(user)`` is an API client signed in as ``user``; ``api()`` is anonymous."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def make_token(owner) -> Callable[..., tuple[ApiToken, str]]:
    """``make_token(role)`` creates a token in ``team`` through the service; returns (token, secret)."""

    def make(role: str = TokenRole.CI, team: Team | None = None, **kwargs) -> tuple[ApiToken, str]:
        target = team or owner.memberships.get().team
        return api_token_create(actor=owner, team=target, name=f"{role} token", role=role, **kwargs)

    return make


@pytest.fixture
def token_api() -> Callable[[str], APIClient]:
    """``token_api(secret)`` is an API client that sends the token."""

    def make(secret: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return make
