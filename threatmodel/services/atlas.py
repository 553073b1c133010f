"""Loading MITRE ATLAS releases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import transaction

from garrison.audit.services import record
from threatmodel.atlas_sync import SyncSummary, sync_release
from threatmodel.catalog import load_atlas, load_catalog
from threatmodel.models import AtlasEntry, AtlasName, AtlasRelease


@transaction.atomic
def atlas_release_load(*, actor: Any = None, path: str | Path | None = None) -> SyncSummary:
    """Load an ATLAS.yaml release (default: the shipped one) and make it current.

    The threat catalog is checked against the new release first, so a release that
    drops IDs the catalog uses is refused with the list of threats that need updating.
    """
    parsed = load_atlas(path)
    load_catalog(atlas=parsed)  # raises CatalogError naming every threat whose IDs vanished
    summary = sync_release(
        parsed, release_model=AtlasRelease, entry_model=AtlasEntry, name_model=AtlasName, source=str(path or "shipped")
    )
    if not summary.already_loaded:
        release = AtlasRelease.objects.get(version=parsed.version)
        record(
            actor=actor,
            verb="atlas_release.load",
            obj=release,
            team_id=None,
            changes={
                "added": [None, len(summary.added)],
                "renamed": [None, len(summary.renamed)],
                "withdrawn": [None, summary.withdrawn],
            },
        )
    return summary
