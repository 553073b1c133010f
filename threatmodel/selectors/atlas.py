"""Reads of the ATLAS reference data (global, not team-scoped)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from threatmodel.models import AtlasEntry, AtlasName, AtlasRelease


def ensure_atlas_loaded() -> None:
    """Load the shipped ATLAS release if the reference tables are empty.

    The initial data migration loads it; this covers databases whose tables were flushed
    since (``manage.py flush``, transactional test teardown), so IDs are never refused
    merely because the reference data went missing.
    """
    if AtlasRelease.objects.exists():
        return
    from threatmodel.atlas_sync import sync_release
    from threatmodel.catalog import shipped_atlas

    sync_release(
        shipped_atlas(), release_model=AtlasRelease, entry_model=AtlasEntry, name_model=AtlasName, source="shipped"
    )


def atlas_unknown_ids(ids: Iterable[str], kind: str) -> list[str]:
    """The IDs that are not current ATLAS entries of ``kind``."""
    ensure_atlas_loaded()
    wanted = set(ids)
    known = set(
        AtlasEntry.objects.filter(atlas_id__in=wanted, kind=kind, withdrawn=False).values_list("atlas_id", flat=True)
    )
    return sorted(wanted - known)


def atlas_names(ids: Iterable[str]) -> dict[str, str]:
    """Current names of ATLAS IDs."""
    return dict(AtlasEntry.objects.filter(atlas_id__in=set(ids)).values_list("atlas_id", "name"))


def atlas_entry_list(*, kind: str = "", search: str = "") -> QuerySet[AtlasEntry]:
    """ATLAS entries, for pickers."""
    ensure_atlas_loaded()
    entries = AtlasEntry.objects.filter(withdrawn=False)
    if kind:
        entries = entries.filter(kind=kind)
    if search:
        entries = entries.filter(atlas_id__icontains=search) | entries.filter(name__icontains=search)
    return entries.order_by("atlas_id")
