"""Compare two ATLAS releases by ID, so names can be kept as versioned labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from threatmodel.catalog.atlas import AtlasRelease


class Rename(NamedTuple):
    """An ATLAS ID whose name changed between two releases."""

    id: str
    old_name: str
    new_name: str


@dataclass(frozen=True)
class ReleaseDiff:
    """What changed between two ATLAS releases, over tactics, techniques and mitigations (IDs sorted)."""

    old_version: str
    new_version: str
    added_ids: tuple[str, ...]
    removed_ids: tuple[str, ...]
    renamed: tuple[Rename, ...]

    @property
    def is_empty(self) -> bool:
        """Whether the two releases have the same IDs with the same names."""
        return not (self.added_ids or self.removed_ids or self.renamed)


def _names(release: AtlasRelease) -> dict[str, str]:
    names: dict[str, str] = {}
    for table in (release.tactics, release.techniques, release.mitigations):
        names.update((atlas_id, obj.name) for atlas_id, obj in table.items())
    return names


def diff_releases(old: AtlasRelease, new: AtlasRelease) -> ReleaseDiff:
    """IDs added and removed from ``old`` to ``new``, and IDs kept under a new name."""
    old_names, new_names = _names(old), _names(new)
    return ReleaseDiff(
        old_version=old.version,
        new_version=new.version,
        added_ids=tuple(sorted(new_names.keys() - old_names.keys())),
        removed_ids=tuple(sorted(old_names.keys() - new_names.keys())),
        renamed=tuple(
            Rename(atlas_id, old_names[atlas_id], new_names[atlas_id])
            for atlas_id in sorted(old_names.keys() & new_names.keys())
            if old_names[atlas_id] != new_names[atlas_id]
        ),
    )
