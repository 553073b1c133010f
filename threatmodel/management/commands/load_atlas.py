"""``manage.py load_atlas [PATH]``: load a MITRE ATLAS release and make it current."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from threatmodel.catalog import AtlasFormatError, CatalogError
from threatmodel.services import atlas_release_load


class Command(BaseCommand):
    """Load an ATLAS.yaml (default: the shipped copy); earlier names of renamed IDs are kept."""

    help = "Load a MITRE ATLAS release (dist/ATLAS.yaml of mitre-atlas/atlas-data) and make it the current one."

    def add_arguments(self, parser: CommandParser) -> None:
        """PATH is optional."""
        parser.add_argument("path", nargs="?", help="ATLAS.yaml to load; default: the copy shipped with Garrison.")

    def handle(self, *args: Any, path: str | None = None, **options: Any) -> None:
        """Load, then print what changed."""
        try:
            summary = atlas_release_load(path=path)
        except (AtlasFormatError, CatalogError) as error:
            raise CommandError(f"Could not load the ATLAS release: {error}") from error
        if summary.already_loaded:
            self.stdout.write(f"ATLAS {summary.version} is already the current release; nothing changed.")
            return
        self.stdout.write(self.style.SUCCESS(f"Loaded ATLAS {summary.version} and made it the current release."))
        self.stdout.write(
            f"Added: {len(summary.added)}  Renamed: {len(summary.renamed)}  Withdrawn: {len(summary.withdrawn)}"
        )
        for atlas_id, old, new in summary.renamed:
            self.stdout.write(f"  {atlas_id}: '{old}' -> '{new}'")
        if summary.withdrawn:
            self.stdout.write(f"  Withdrawn: {', '.join(summary.withdrawn)}")
