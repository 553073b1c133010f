"""Personas and clients shared by the whole suite.

``owner`` is the admin of ``team``; ``teammate`` is an editor there; ``viewer`` and
``approver`` hold those roles; ``outsider`` is the admin of another team and of
nothing here. Permission tests pick the persona they need.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from evaluations.models import Blob, EvaluationRun, ModelArtifact, RunKind, RunStatus, ScanStatus
from garrison.accounts.models import ApiToken, Team
from garrison.accounts.roles import Role, TokenRole
from garrison.accounts.services import api_token_create
from tests.factories import MembershipFactory, SystemFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _heap_not_frozen(settings) -> None:
    """Serving processes gc.freeze() their heap once a model is loaded; the suite's one process must not (objects
    of every later test would stay out of the collector's reach). tests/evaluations/serving/test_predict.py turns it
    on where it tests it."""
    settings.GARRISON_SERVING_FREEZE_HEAP = False


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


_numbers = count(1)


@pytest.fixture
def make_model(system):
    """``make_model(scan_status=..., report=...)`` registers a model version row for ``system``."""

    def make(target=None, scan_status=ScanStatus.CLEAN, report=None):
        target = target or system
        digest = hashlib.sha256(str(next(_numbers)).encode()).hexdigest()
        blob = Blob.objects.create(sha256=digest, size=10)
        version = (target.model_artifacts.count() or 0) + 1
        return ModelArtifact.objects.create(
            system=target,
            version=version,
            format="safetensors",
            architecture="small_cnn",
            input_shape=[1, 8, 8],
            input_bounds=[0, 1],
            class_names=[str(i) for i in range(10)],
            blob=blob,
            scan_status=scan_status,
            scan_report=report or {"verdict": "clean", "findings": []},
        )

    return make


@pytest.fixture
def make_run(system):
    """``make_run(model, kind, metrics=..., reliable=..., flags=..., days_ago=...)`` records a finished run."""

    def make(
        model,
        kind=RunKind.ROBUSTNESS,
        *,
        metrics=None,
        reliable=True,
        flags=None,
        days_ago=0,
        status=RunStatus.SUCCEEDED,
    ):
        finished = timezone.now() - timedelta(days=days_ago)
        return EvaluationRun.objects.create(
            system=model.system,
            kind=kind,
            model_artifact=model,
            status=status,
            progress=1.0,
            metrics=metrics or {},
            reliable=reliable,
            flags=flags or [],
            started_at=finished,
            finished_at=finished,
        )

    return make


# --- Browser tests: one chromium for the whole session, whichever folder the test lives in ---------------
CHROMIUM = os.environ.get("GARRISON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One chromium for the session."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"chromium not found at {CHROMIUM}; `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between page actions are ordinary synchronous calls, so Django's async guard is relaxed.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    """A fresh browser context and page, with the live server as base URL."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()
