"""Demo data for accounts: the demo team and its admin user."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser

from garrison.accounts.models import Team
from garrison.accounts.roles import Role
from garrison.accounts.services import membership_add, team_create

DEMO_TEAM_SLUG = "demo"
ADMIN_PASSWORD_ENV = "GARRISON_ADMIN_PASSWORD"  # noqa: S105 - the variable name


@dataclass(frozen=True)
class DemoAccounts:
    """What the accounts seeding produced."""

    admin: AbstractUser
    approver: AbstractUser
    team: Team
    password: str | None  # set only when the admin was created now


def _remember_password(username: str, password: str) -> None:
    """Keep the generated password in var/ (mode 600) in case the console scrolled past it."""
    var_dir = Path(settings.VAR_DIR)
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "initial-admin-password"
    path.write_text(f"{username} {password}\napprover {password}\n")
    path.chmod(0o600)


def seed_accounts(*, username: str = "admin") -> DemoAccounts:
    """Create the admin user and the demo team once; later calls change nothing."""
    user_model = get_user_model()
    admin = user_model.objects.filter(username=username).first()
    password = None
    if admin is None:
        password = os.environ.get(ADMIN_PASSWORD_ENV) or secrets.token_urlsafe(12)
        admin = user_model.objects.create_superuser(username=username, email="", password=password)
        _remember_password(username, password)
    team = Team.objects.filter(slug=DEMO_TEAM_SLUG).first()
    if team is None:
        team = team_create(
            actor=admin,
            name="Demo ML Security",
            slug=DEMO_TEAM_SLUG,
            description="The demo team: an SMS spam filter and a digits classifier to explore Garrison with.",
        )
    approver = user_model.objects.filter(username="approver").first()
    if approver is None:
        # A second person, so the admin's threat-model versions can be reviewed (nobody approves their own).
        approver = user_model.objects.create_user(username="approver", email="", password=password)
        if password is None:
            approver.set_unusable_password()
            approver.save(update_fields=["password"])
        membership_add(actor=admin, team=team, username="approver", role=Role.APPROVER)
    return DemoAccounts(admin=admin, approver=approver, team=team, password=password)
