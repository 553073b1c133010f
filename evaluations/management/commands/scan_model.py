"""Scan a model file statically and print the report; exit 0 when clean, 1 otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    """``manage.py scan_model PATH [--json]``."""

    help = "Statically scan a model file for unsafe deserialisation; exit code 0 when clean, 1 when not."

    def add_arguments(self, parser: Any) -> None:
        """PATH and output format."""
        parser.add_argument("path", help="The model file to scan.")
        parser.add_argument("--json", action="store_true", help="Print the full report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Scan and report."""
        from evaluations.runners import scan_model_file

        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        report = scan_model_file(path)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(
                f"{path.name}: {report['verdict']} ({report.get('format')}, sha256 {report.get('sha256')})"
            )
            for finding in report.get("findings", []):
                self.stdout.write(f"  [{finding.get('severity')}] {finding.get('code')}: {finding.get('message')}")
        if report["verdict"] != "clean":
            raise SystemExit(1)
