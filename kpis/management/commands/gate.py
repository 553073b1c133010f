"""``manage.py gate SYSTEM --model VERSION``: the security gate on the command line (exit 0 pass, 1 warn, 2 fail)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kpis.gate import EXIT_CODES, UnknownModelVersion, gate_decide, to_junit, to_sarif
from threatmodel.models import System


class Command(BaseCommand):
    """Decide whether a model version may ship; print or write the decision as text, JUnit or SARIF."""

    help = __doc__

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        """Options."""
        parser.add_argument("system", help="TEAM/SYSTEM slugs, or the system slug when it is unique.")
        parser.add_argument("--model", type=int, required=True, help="The model version number.")
        parser.add_argument("--format", choices=["text", "junit", "sarif"], default="text")
        parser.add_argument("--output", help="Write the report to this file instead of standard output.")

    def handle(self, *args: object, **options: object) -> None:
        """Decide and exit with 0 (pass), 1 (warn) or 2 (fail)."""
        system = self._system(str(options["system"]))
        try:
            decision = gate_decide(actor=None, system=system, model_version=int(options["model"]))
        except UnknownModelVersion as error:
            raise CommandError(str(error)) from error
        if options["format"] == "junit":
            report = to_junit(decision)
        elif options["format"] == "sarif":
            report = to_sarif(decision)
        else:
            lines = [f"{decision.decision.upper()}: {system} model v{decision.model_version}"]
            lines += [f"  [{r['outcome']}] {r['check']}: {r['message']}" for r in decision.reasons]
            report = "\n".join(lines) + "\n"
        if options["output"]:
            Path(str(options["output"])).write_text(report)
            self.stdout.write(f"{decision.decision}: report written to {options['output']}")
        else:
            self.stdout.write(report, ending="")
        sys.exit(EXIT_CODES[decision.decision])

    def _system(self, name: str) -> System:
        team, _, slug = name.rpartition("/")
        systems = System.objects.filter(slug=slug, **({"team__slug": team} if team else {}))
        count = systems.count()
        if count == 0:
            raise CommandError(f"No system '{name}'. Use TEAM/SYSTEM slugs, e.g. demo/sms-spam-filter.")
        if count > 1:
            raise CommandError(f"'{name}' names {count} systems in different teams; use TEAM/SYSTEM.")
        return systems.select_related("team", "gate_policy", "kpi_status").get()
