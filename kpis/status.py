"""KPI statuses: thresholds resolved per system, cells classified, and each system's precomputed status row.

The portfolio sorts every visible system by how many KPIs are red, amber and unmeasured.
Classifying 500 systems x 22 KPIs on every request cost more than the whole page may take,
so :func:`statuses_refresh` classifies a system when something that moves its statuses
changes (a measurement, a threshold, its tier or team) and stores the result as a
:class:`~kpis.models.SystemKpiStatus` row; the page and the gate read that row.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.template.defaultfilters import floatformat

from kpis.catalog import AMBER, GREEN, KPIS, RED, UNKNOWN, KpiDefinition, classify
from kpis.models import CurrentValue, KpiThreshold, PortfolioGeneration, SystemKpiStatus
from threatmodel.models import System

UNRELIABLE_NOTE = "capped at amber: the evaluation was flagged unreliable"


def _catalog_fingerprint() -> str:
    """A hash of what classification reads from code: the KPI keys, directions and default bounds."""
    text = repr([(d.key, d.direction, sorted(d.thresholds.items())) for d in KPIS])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


CATALOG_FINGERPRINT = _catalog_fingerprint()


class ThresholdBook:
    """Every threshold of some teams and systems, loaded in two queries, resolved in memory."""

    def __init__(self, team_ids: list[int], system_ids: list[int], *, thresholds: Any = None) -> None:
        thresholds = KpiThreshold.objects if thresholds is None else thresholds  # a migration passes its own
        self.tiers: dict[tuple[int, str, int], tuple[float, float]] = {}
        self.overrides: dict[tuple[int, str], tuple[float, float]] = {}
        for t in thresholds.filter(team_id__in=team_ids, system__isnull=True):
            self.tiers[(t.team_id, t.kpi, t.tier)] = (t.green, t.amber)
        for t in thresholds.filter(system_id__in=system_ids):
            self.overrides[(t.system_id, t.kpi)] = (t.green, t.amber)

    def bounds(self, system: System, definition: KpiDefinition) -> tuple[tuple[float, float], str]:
        """(green, amber) for the system and where they come from."""
        if (system.pk, definition.key) in self.overrides:
            return self.overrides[(system.pk, definition.key)], "system override"
        key = (system.team_id, definition.key, system.criticality_tier)
        if key in self.tiers:
            return self.tiers[key], f"team, tier {system.criticality_tier}"
        return definition.bounds(system.criticality_tier), f"default, tier {system.criticality_tier}"


@dataclass
class Cell:
    """One KPI of one system: its value, bounds and status."""

    definition: KpiDefinition
    value: float | None
    status: str
    bounds: tuple[float, float]
    bounds_source: str
    reliable: bool | None
    current: CurrentValue | None
    note: str = ""


def cell_for(definition: KpiDefinition, current: CurrentValue | None, bounds: tuple[float, float], source: str) -> Cell:
    """Classify a current value; an unreliable measurement is never green."""
    value = current.value if current else None
    status = classify(definition, value, bounds)
    note = ""
    if current is not None and current.reliable is False and status == GREEN:
        status, note = AMBER, UNRELIABLE_NOTE
    return Cell(definition, value, status, bounds, source, current.reliable if current else None, current, note)


def status_row(
    system: System, current: dict[str, CurrentValue], book: ThresholdBook, *, model: Any = SystemKpiStatus
) -> SystemKpiStatus:
    """The (unsaved) status row of one system: each KPI's status, value, bounds and display texts, the counts."""
    cells: dict[str, dict[str, Any]] = {}
    counts = {RED: 0, AMBER: 0, UNKNOWN: 0}
    for definition in KPIS:
        bounds, _ = book.bounds(system, definition)
        cell = cell_for(definition, current.get(definition.key), bounds, "")
        counts[cell.status] = counts.get(cell.status, 0) + 1
        entry: dict[str, Any] = {"s": cell.status, "g": bounds[0], "a": bounds[1]}
        if cell.value is not None:
            # The texts the portfolio shows, formatted once here instead of 1,100 times per page.
            entry.update(v=cell.value, t=floatformat(cell.value, "-2"), l=floatformat(cell.value, 3))
        if cell.note:
            entry["capped"] = True
        cells[definition.key] = entry
    return model(
        system_id=system.pk,
        reds=counts[RED],
        ambers=counts[AMBER],
        unknowns=counts[UNKNOWN],
        cells=cells,
        catalog=CATALOG_FINGERPRINT,
    )


def cells_from_row(row: SystemKpiStatus) -> dict[str, Cell] | None:
    """The cells stored in a status row (without bounds sources or measurement links); None when it is stale."""
    if row.catalog != CATALOG_FINGERPRINT or set(row.cells) != {d.key for d in KPIS}:
        return None
    cells = {}
    for definition in KPIS:
        entry = row.cells[definition.key]
        cells[definition.key] = Cell(
            definition=definition,
            value=entry.get("v"),
            status=entry["s"],
            bounds=(entry["g"], entry["a"]),
            bounds_source="",
            reliable=None,
            current=None,
            note=UNRELIABLE_NOTE if entry.get("capped") else "",
        )
    return cells


GENERATION_ROW = 1


def generation() -> str:
    """The portfolio generation token (one query); read it before the data a cached page is built from."""
    token = PortfolioGeneration.objects.filter(pk=GENERATION_ROW).values_list("token", flat=True).first()
    return token or ""


def bump_generation(*, model: Any = PortfolioGeneration) -> None:
    """Give the portfolio a new generation token once the current transaction commits (at once outside one).

    After the commit, not in the transaction: a row every writer updated inside its
    transaction would serialise all of them and could deadlock two that touch several
    systems. A page that read the old token before the commit may cache what it read under
    that token, but nobody asks for that token again.
    """

    def bump() -> None:
        token = uuid.uuid4().hex
        if not model.objects.filter(pk=GENERATION_ROW).update(token=token):
            model.objects.update_or_create(pk=GENERATION_ROW, defaults={"token": token})

    transaction.on_commit(bump, robust=True)


@transaction.atomic(savepoint=False)
def statuses_refresh(system_ids: Iterable[int], *, models: dict[str, Any] | None = None) -> int:
    """Recompute and store the status rows of the given systems; a fixed number of queries for any number.

    The systems' rows are locked first (``FOR NO KEY UPDATE``, which inserts that reference
    them do not wait for), so two transactions recording different KPIs of one system
    recompute its row one after the other and neither overwrites the other's change.
    ``models`` maps "System", "CurrentValue", "KpiThreshold", "SystemKpiStatus" and
    "PortfolioGeneration" to the classes to use; the backfill migration passes its historical ones.
    """
    m = {
        "System": System,
        "CurrentValue": CurrentValue,
        "KpiThreshold": KpiThreshold,
        "SystemKpiStatus": SystemKpiStatus,
        "PortfolioGeneration": PortfolioGeneration,
        **(models or {}),
    }
    ids = sorted(set(system_ids))
    if not ids:
        return 0
    systems = list(
        m["System"]
        .objects.select_for_update(no_key=True)
        .filter(pk__in=ids)
        .order_by("pk")
        .only("id", "team_id", "criticality_tier")
    )
    if not systems:
        return 0
    found = [s.pk for s in systems]
    book = ThresholdBook(sorted({s.team_id for s in systems}), found, thresholds=m["KpiThreshold"].objects)
    current: dict[int, dict[str, Any]] = defaultdict(dict)
    for value in m["CurrentValue"].objects.filter(system_id__in=found).only("system_id", "kpi", "value", "reliable"):
        current[value.system_id][value.kpi] = value
    rows = [status_row(system, current[system.pk], book, model=m["SystemKpiStatus"]) for system in systems]
    m["SystemKpiStatus"].objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["system"],
        update_fields=["reds", "ambers", "unknowns", "cells", "catalog", "updated_at"],
    )
    bump_generation(model=m["PortfolioGeneration"])
    return len(rows)


def statuses_refresh_tier(*, team_id: int, tier: int) -> int:
    """Recompute the rows of a team's systems of one tier (after a tier threshold changed)."""
    ids = System.objects.filter(team_id=team_id, criticality_tier=tier).values_list("pk", flat=True)
    return statuses_refresh(list(ids))


def statuses_rebuild_all(*, batch: int = 500, models: dict[str, Any] | None = None) -> int:
    """Recompute every system's row (after a deploy changed the catalog, or data was loaded in bulk)."""
    system_model = (models or {}).get("System", System)
    ids = list(system_model.objects.order_by("pk").values_list("pk", flat=True))
    done = 0
    for start in range(0, len(ids), batch):
        with transaction.atomic():
            done += statuses_refresh(ids[start : start + batch], models=models)
    return done
