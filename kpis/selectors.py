"""Reads of KPIs: thresholds resolved per system, current statuses, trends; scoped to teams."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce, Collate
from django.http import QueryDict

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability, team_ids_for
from kpis.catalog import BY_KEY, KPIS, STATUS_ORDER
from kpis.models import CurrentValue, GatePolicy, KpiThreshold, Measurement, SystemKpiStatus
from kpis.services import default_policy
from kpis.status import CATALOG_FINGERPRINT, Cell, ThresholdBook, cell_for, cells_from_row, generation, status_row
from threatmodel.models import System


@dataclass
class PortfolioRow:
    """A system on the portfolio page with its precomputed statuses (``cells``: see ``SystemKpiStatus``)."""

    system: System
    reds: int
    ambers: int
    unknowns: int
    cells: dict[str, dict[str, Any]]

    @property
    def worst(self) -> tuple[int, int, int]:
        """The sort key: most reds, then most ambers, then most unmeasured KPIs first."""
        return (-self.reds, -self.ambers, -self.unknowns)


def _stored_status(system: System) -> SystemKpiStatus | None:
    try:
        return system.kpi_status
    except ObjectDoesNotExist:
        return None


class Portfolio:
    """The visible systems, worst first, read lazily: ``count()`` is one query and each page one more.

    Systems are sorted in the database by their precomputed status counts, so a page reads
    only its own rows. A system whose row is missing or was computed with another KPI
    catalog (data loaded in bulk, a deploy that changed the catalog, until ``manage.py
    kpi_status_rebuild`` runs) is shown with its statuses computed now, but sorted by what
    its row says (as unmeasured when it has none).
    """

    def __init__(self, systems: QuerySet[System]) -> None:
        self.systems = systems

    def count(self) -> int:
        """How many systems are visible."""
        return self.systems.count()

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[PortfolioRow]:
        return iter(self._rows(list(self.systems)))

    def __getitem__(self, index: slice) -> list[PortfolioRow]:
        if not isinstance(index, slice):
            raise TypeError("The portfolio is read a page (a slice) at a time.")
        return self._rows(list(self.systems[index]))

    @staticmethod
    def _rows(systems: list[System]) -> list[PortfolioRow]:
        stored = {s.pk: _stored_status(s) for s in systems}
        stale = [s for s in systems if stored[s.pk] is None or stored[s.pk].catalog != CATALOG_FINGERPRINT]
        if stale:
            ids = [s.pk for s in stale]
            book = ThresholdBook(list({s.team_id for s in stale}), ids)
            current: dict[int, dict[str, CurrentValue]] = defaultdict(dict)
            for value in CurrentValue.objects.filter(system_id__in=ids).only("system_id", "kpi", "value", "reliable"):
                current[value.system_id][value.kpi] = value
            for system in stale:
                stored[system.pk] = status_row(system, current[system.pk], book)
        return [
            PortfolioRow(system, row.reds, row.ambers, row.unknowns, row.cells)
            for system, row in ((s, stored[s.pk]) for s in systems)
        ]


def _name_order() -> Any:
    """Names in code-point order, as Python sorts them, whatever the database's collation."""
    return Collate("name", "C") if connection.vendor == "postgresql" else F("name")


# What a portfolio row shows (and what a stale row needs to be recomputed): nothing else is loaded.
PORTFOLIO_FIELDS = (
    "name",
    "slug",
    "team_id",
    "criticality_tier",
    "team__name",
    "team__slug",
    "kpi_status__reds",
    "kpi_status__ambers",
    "kpi_status__unknowns",
    "kpi_status__cells",
    "kpi_status__catalog",
)


def portfolio(*, user: Any, team_slug: str = "", tier: int | None = None) -> Portfolio:
    """Every visible system with the status of each KPI, worst first; a fixed number of queries per page."""
    systems = (
        System.objects.filter(team_id__in=team_ids_for(user))
        .select_related("team", "kpi_status")
        .only(*PORTFOLIO_FIELDS)
    )
    if team_slug:
        systems = systems.filter(team__slug=team_slug)
    if tier:
        systems = systems.filter(criticality_tier=tier)
    return Portfolio(
        systems.order_by(
            Coalesce("kpi_status__reds", 0).desc(),
            Coalesce("kpi_status__ambers", 0).desc(),
            Coalesce("kpi_status__unknowns", len(KPIS)).desc(),
            _name_order(),
            "pk",
        )
    )


def portfolio_cache_key(*, user: Any, query: QueryDict) -> str:
    """The cache key of a portfolio table: the generation (read first), the visible teams and the whole query.

    Two principals share a cached table only when they see exactly the same teams and
    asked for the same filters and page, so nobody is shown a table built for others.
    """
    parts = [generation(), sorted(team_ids_for(user)), sorted(query.lists())]
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()  # JSON: no two inputs share a text
    return f"kpis:portfolio:{digest}"


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


def gate_cells(system: System) -> dict[str, Cell]:
    """Each KPI's status, value and bounds for the gate, by KPI key.

    Read from the system's status row (no query when the row was loaded with the system),
    or computed now when the row is missing or was computed with another KPI catalog.
    """
    if System.kpi_status.is_cached(system):
        row = _stored_status(system)
    else:  # read it without caching it on the instance, which may outlive this decision
        row = SystemKpiStatus.objects.filter(system_id=system.pk).first()
    cells = cells_from_row(row) if row is not None else None
    if cells is None:
        cells = {c.definition.key: c for c in build_system_cells(system)}
    return cells


def gate_policy_for(system: System) -> GatePolicy:
    """The stored policy (no query when it was loaded with the system), or an unsaved default one."""
    if System.gate_policy.is_cached(system):
        policy = getattr(system, "gate_policy", None)
    else:
        policy = GatePolicy.objects.filter(system=system).first()
    return policy or GatePolicy(system=system, **default_policy())


def known(key: str) -> bool:
    """Whether a KPI key exists."""
    return key in BY_KEY
