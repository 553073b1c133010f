"""Reads of KPIs: thresholds resolved per system, current statuses, trends; scoped to teams."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability, team_ids_for
from kpis.catalog import AMBER, BY_KEY, GREEN, KPIS, STATUS_ORDER, UNKNOWN, KpiDefinition, classify
from kpis.models import CurrentValue, GatePolicy, KpiThreshold, Measurement
from kpis.services import default_policy
from threatmodel.models import System


class ThresholdBook:
    """Every threshold of some teams and systems, loaded in two queries, resolved in memory."""

    def __init__(self, team_ids: list[int], system_ids: list[int]) -> None:
        self.tiers: dict[tuple[int, str, int], tuple[float, float]] = {}
        self.overrides: dict[tuple[int, str], tuple[float, float]] = {}
        for t in KpiThreshold.objects.filter(team_id__in=team_ids, system__isnull=True):
            self.tiers[(t.team_id, t.kpi, t.tier)] = (t.green, t.amber)
        for t in KpiThreshold.objects.filter(system_id__in=system_ids):
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
        status, note = AMBER, "capped at amber: the evaluation was flagged unreliable"
    return Cell(definition, value, status, bounds, source, current.reliable if current else None, current, note)


class SystemRow:
    """A system with its KPI cells, for the portfolio; cells are built only for rows that are shown."""

    def __init__(self, system: System, current: dict[str, CurrentValue], book: ThresholdBook) -> None:
        self.system, self._current, self._book = system, current, book
        self._cells: dict[str, Cell] | None = None
        statuses = []
        for definition in KPIS:
            bounds, _ = book.bounds(system, definition)
            value = current.get(definition.key)
            status = classify(definition, value.value if value else None, bounds)
            if value is not None and value.reliable is False and status == GREEN:
                status = AMBER
            statuses.append(status)
        # Sort key: most reds, then most ambers, then most unknowns first.
        self.worst = (-statuses.count("red"), -statuses.count("amber"), -statuses.count(UNKNOWN))

    @property
    def cells(self) -> dict[str, Cell]:
        """Each KPI's cell, keyed by KPI."""
        if self._cells is None:
            self._cells = {}
            for definition in KPIS:
                bounds, source = self._book.bounds(self.system, definition)
                self._cells[definition.key] = cell_for(definition, self._current.get(definition.key), bounds, source)
        return self._cells

    @property
    def ordered_cells(self) -> list[Cell]:
        """The cells in catalog order, for table rows."""
        cells = self.cells
        return [cells[definition.key] for definition in KPIS]


def portfolio(*, user: Any, team_slug: str = "", tier: int | None = None) -> list[SystemRow]:
    """Every visible system with the status of each KPI, worst first; a fixed number of queries."""
    systems = System.objects.filter(team_id__in=team_ids_for(user)).select_related("team")
    if team_slug:
        systems = systems.filter(team__slug=team_slug)
    if tier:
        systems = systems.filter(criticality_tier=tier)
    systems = list(systems.order_by("name"))
    ids = [s.pk for s in systems]
    book = ThresholdBook(list({s.team_id for s in systems}), ids)
    current: dict[int, dict[str, CurrentValue]] = defaultdict(dict)
    for value in CurrentValue.objects.filter(system_id__in=ids).only(
        "system_id", "kpi", "value", "reliable", "measured_at", "measurement_id"
    ):
        current[value.system_id][value.kpi] = value
    rows = [SystemRow(system, current[system.pk], book) for system in systems]
    rows.sort(key=lambda row: (row.worst, row.system.name))
    return rows


def system_cells(*, user: Any, system: System) -> list[Cell]:
    """Each KPI of one system with value, bounds and status."""
    require_capability(user=user, team_id=system.team_id, capability=Capability.VIEW)
    return build_system_cells(system)


def build_system_cells(system: System) -> list[Cell]:
    """Each KPI of one system, without a permission check (for the gate)."""
    book = ThresholdBook([system.team_id], [system.pk])
    current = {c.kpi: c for c in CurrentValue.objects.filter(system=system).select_related("measurement")}
    cells = []
    for definition in KPIS:
        bounds, source = book.bounds(system, definition)
        cells.append(cell_for(definition, current.get(definition.key), bounds, source))
    return sorted(cells, key=lambda c: (STATUS_ORDER[c.status], c.definition.group))


def trends(*, user: Any, system: System) -> dict[str, list[Measurement]]:
    """Every measurement of the system, by KPI, oldest first (one query)."""
    require_capability(user=user, team_id=system.team_id, capability=Capability.VIEW)
    series: dict[str, list[Measurement]] = defaultdict(list)
    for measurement in Measurement.objects.filter(system=system).order_by("measured_at", "id"):
        series[measurement.kpi].append(measurement)
    return dict(series)


def threshold_list(*, user: Any, team_id: int) -> QuerySet[KpiThreshold]:
    """A team's thresholds and overrides."""
    require_capability(user=user, team_id=team_id, capability=Capability.VIEW)
    return KpiThreshold.objects.filter(team_id=team_id).select_related("system").order_by("kpi", "tier")


def gate_policy_for(system: System) -> GatePolicy:
    """The stored policy, or an unsaved default one."""
    return GatePolicy.objects.filter(system=system).first() or GatePolicy(system=system, **default_policy())


def known(key: str) -> bool:
    """Whether a KPI key exists."""
    return key in BY_KEY
