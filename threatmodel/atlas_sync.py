"""Load an ATLAS release into the database: IDs are keys, names are versioned labels.

Used by the initial data migration (with historical models) and by
``manage.py load_atlas`` (with the real ones), so it takes the model classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from threatmodel.catalog import AtlasRelease as ParsedRelease


@dataclass
class SyncSummary:
    """What loading a release changed."""

    version: str
    already_loaded: bool = False
    added: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str, str]] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)


def _entries(parsed: ParsedRelease) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for tactic in parsed.tactics.values():
        entries[tactic.id] = {
            "kind": "tactic",
            "name": tactic.name,
            "parent_id": "",
            "related_ids": [],
            "description": "",
        }
    for technique in parsed.techniques.values():
        entries[technique.id] = {
            "kind": "technique",
            "name": technique.name,
            "parent_id": technique.parent_id or "",
            "related_ids": list(technique.tactic_ids),
            "description": technique.description,
        }
    for mitigation in parsed.mitigations.values():
        entries[mitigation.id] = {
            "kind": "mitigation",
            "name": mitigation.name,
            "parent_id": "",
            "related_ids": list(mitigation.technique_ids),
            "description": mitigation.description,
        }
    return entries


def sync_release(
    parsed: ParsedRelease, *, release_model: Any, entry_model: Any, name_model: Any, source: str = ""
) -> SyncSummary:
    """Make ``parsed`` the current release; keep every earlier name of every ID."""
    summary = SyncSummary(version=parsed.version)
    release = release_model.objects.filter(version=parsed.version).first()
    if release is not None and release.is_current:
        summary.already_loaded = True
        return summary
    release_model.objects.filter(is_current=True).update(is_current=False)
    if release is None:
        release = release_model.objects.create(version=parsed.version, source=source, is_current=True)
    else:
        release.is_current = True
        release.save(update_fields=["is_current"])
    incoming = _entries(parsed)
    existing = {entry.atlas_id: entry for entry in entry_model.objects.all()}
    for atlas_id, values in incoming.items():
        entry = existing.get(atlas_id)
        if entry is None:
            entry = entry_model.objects.create(atlas_id=atlas_id, first_release=release, last_release=release, **values)
            summary.added.append(atlas_id)
            name_model.objects.create(entry=entry, release=release, name=values["name"])
            continue
        if entry.name != values["name"]:
            summary.renamed.append((atlas_id, entry.name, values["name"]))
            name_model.objects.create(entry=entry, release=release, name=values["name"])
        for key, value in values.items():
            setattr(entry, key, value)
        entry.last_release, entry.withdrawn = release, False
        entry.save()
    gone = [atlas_id for atlas_id in existing if atlas_id not in incoming and not existing[atlas_id].withdrawn]
    entry_model.objects.filter(atlas_id__in=gone).update(withdrawn=True)
    summary.withdrawn = sorted(gone)
    return summary
