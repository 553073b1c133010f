"""``manage.py seed_demo``: demo data for a newcomer, loaded idempotently.

A spam filter and a digits classifier, each with a registered model, an approved threat
model, evaluation runs, KPI measurements, and (for the spam filter) a closed incident.

It lives in the incidents app because that app sits at the top of the dependency
chain and may call every other app's seeding.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from evaluations.demo import seed_evaluations, seed_hardening, seed_spam_backdoor, seed_spam_model
from evaluations.evidence import refresh_system
from evaluations.evidence_services import evidence_requirement_create
from evaluations.ingestion.demo import seed_ingestion
from garrison.accounts.demo import ADMIN_PASSWORD_ENV, seed_accounts
from incidents.demo import seed_incidents
from incidents.kpi import record_incident_kpis
from kpis.services import system_measure
from threatmodel.demo import seed_digits_threat_model, seed_systems, seed_threat_models


class Command(BaseCommand):
    """Create the demo team, an admin user and the demo ML systems (safe to run repeatedly)."""

    help = __doc__

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        """Options."""
        parser.add_argument("--username", default="admin", help="User name of the demo admin (default: admin).")
        parser.add_argument(
            "--skip-models",
            action="store_true",
            help="Do not train, register or evaluate the demo models (fast; no runs or model KPIs).",
        )

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        """Seed and report."""
        accounts = seed_accounts(username=str(options["username"]))
        systems = seed_systems(actor=accounts.admin, team=accounts.team)
        seed_threat_models(author=accounts.admin, approver=accounts.approver, systems=systems)
        control = seed_digits_threat_model(author=accounts.admin, approver=accounts.approver, systems=systems)
        backdoor = None
        if not options["skip_models"]:
            self.stdout.write("Training, hardening and evaluating the demo models (first run only, a few minutes)...")
            seed_evaluations(actor=accounts.admin, team=accounts.team)
            for system in systems:
                system_measure(system=system, trigger="demo: first model")
            seed_hardening(actor=accounts.admin, team=accounts.team)
            seed_spam_model(actor=accounts.admin, team=accounts.team)
            backdoor = seed_spam_backdoor(actor=accounts.admin, team=accounts.team)
        if control is not None:
            evidence_requirement_create(
                actor=accounts.admin,
                control=control,
                kind="robustness",
                metric="robust_accuracy",
                comparator=">=",
                threshold=0.3,
                epsilon=0.1,
                max_age_days=30,
            )
        seed_incidents(actor=accounts.admin, systems=systems, detection=backdoor, approver=accounts.approver)
        seed_ingestion(actor=accounts.admin, approver=accounts.approver, team=accounts.team)
        for system in systems:
            refresh_system(system.pk)
            system_measure(system=system, trigger="demo data")
            record_incident_kpis([system.pk], "demo data")
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
