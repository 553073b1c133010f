"""``manage.py seed_demo``: demo data for a newcomer, loaded idempotently.

It lives in the incidents app because that app sits at the top of the dependency
chain and may call every other app's seeding.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from garrison.accounts.demo import ADMIN_PASSWORD_ENV, seed_accounts
from threatmodel.demo import seed_systems, seed_threat_models


class Command(BaseCommand):
    """Create the demo team, an admin user and the demo ML systems (safe to run repeatedly)."""

    help = __doc__

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        """Options."""
        parser.add_argument("--username", default="admin", help="User name of the demo admin (default: admin).")

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        """Seed and report."""
        accounts = seed_accounts(username=str(options["username"]))
        systems = seed_systems(actor=accounts.admin, team=accounts.team)
        seed_threat_models(author=accounts.admin, approver=accounts.approver, systems=systems)
        self.stdout.write(f"Demo team '{accounts.team.name}' with {len(systems)} system(s) is ready.")
        if accounts.password is not None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nCreated user '{accounts.admin.username}'. Sign in at http://127.0.0.1:8000/login/ with:\n"
                    f"    user name: {accounts.admin.username}\n    password:  {accounts.password}\n"
                    f"The user 'approver' (role approver) has the same password, to review the admin's versions.\n"
                    f"(set {ADMIN_PASSWORD_ENV} before the first run to choose it; "
                    "a copy is in var/initial-admin-password)\n"
                )
            )
        else:
            self.stdout.write(
                f"User '{accounts.admin.username}' already exists; its password is unchanged "
                f"(reset it with: .venv/bin/python manage.py changepassword {accounts.admin.username})."
            )
