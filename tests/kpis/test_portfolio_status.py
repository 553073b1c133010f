"""The precomputed KPI status rows: kept correct by every write, read by the portfolio (cached) and the gate."""

from __future__ import annotations

import random
import re

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.template import Context, Template

from kpis import compute, selectors, services, views
from kpis.catalog import KPIS
from kpis.models import CurrentValue, Measurement, SystemKpiStatus
from kpis.status import CATALOG_FINGERPRINT, generation
from kpis.templatetags.kpis_portfolio import cells_html
from tests.factories import MembershipFactory, SystemFactory
from threatmodel import services as tm

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def record(system, kpi, value, reliable=None):
    services.measurements_record(system=system, values=[compute.KpiValue(kpi, value, reliable)], trigger="test")


def row(system) -> SystemKpiStatus:
    return SystemKpiStatus.objects.get(system=system)


def live_statuses(system) -> dict[str, str]:
    """The statuses computed from scratch, the way the system page computes them."""
    return {c.definition.key: c.status for c in selectors.build_system_cells(system)}


def stored_statuses(system) -> dict[str, str]:
    return {key: cell["s"] for key, cell in row(system).cells.items()}


def assert_row_matches_live(system):
    system.refresh_from_db()
    stored = row(system)
    live = live_statuses(system)
    assert stored_statuses(system) == live
    counts = [list(live.values()).count(status) for status in ("red", "amber", "unknown")]
    assert [stored.reds, stored.ambers, stored.unknowns] == counts
    assert stored.catalog == CATALOG_FINGERPRINT


# --- The rows follow every write ------------------------------------------------------------------


def test_a_new_system_gets_an_unmeasured_status_row(team):
    system = SystemFactory(team=team)
    stored = row(system)
    assert stored.unknowns == len(KPIS) and stored.reds == stored.ambers == 0
    assert set(stored.cells) == {d.key for d in KPIS}


def test_a_new_measurement_updates_the_status_row(system):
    record(system, "robust_accuracy", 0.45, True)  # tier 3 default bounds: green 0.5, amber 0.3
    cell = row(system).cells["robust_accuracy"]
    assert cell["s"] == "amber" and cell["v"] == 0.45 and cell["t"] == "0.45" and cell["l"] == "0.450"
    assert row(system).ambers == 1
    record(system, "robust_accuracy", 0.2, True)
    assert row(system).cells["robust_accuracy"]["s"] == "red" and row(system).reds == 1
    assert_row_matches_live(system)


def test_an_unreliable_result_is_stored_capped_at_amber(system):
    record(system, "robust_accuracy", 0.99, False)
    cell = row(system).cells["robust_accuracy"]
    assert cell["s"] == "amber" and cell["capped"] is True
    assert_row_matches_live(system)


def test_a_tier_threshold_change_recomputes_the_rows_of_that_tier_only(approver, team):
    tier3 = SystemFactory(team=team, criticality_tier=3)
    tier2 = SystemFactory(team=team, criticality_tier=2)
    for system in (tier3, tier2):
        record(system, "robust_accuracy", 0.45, True)
    assert {stored_statuses(s)["robust_accuracy"] for s in (tier3, tier2)} == {"amber"}
    threshold = services.threshold_set(actor=approver, team=team, kpi="robust_accuracy", tier=3, green=0.4, amber=0.2)
    assert stored_statuses(tier3)["robust_accuracy"] == "green"
    assert stored_statuses(tier2)["robust_accuracy"] == "amber"
    services.threshold_reset(actor=approver, threshold=threshold)
    assert stored_statuses(tier3)["robust_accuracy"] == "amber"
    for system in (tier3, tier2):
        assert_row_matches_live(system)


def test_a_system_override_recomputes_that_system_only(approver, team, system):
    neighbour = SystemFactory(team=team, criticality_tier=system.criticality_tier)
    for s in (system, neighbour):
        record(s, "robust_accuracy", 0.65, True)
    services.threshold_set(actor=approver, team=team, kpi="robust_accuracy", system=system, green=0.9, amber=0.7)
    assert stored_statuses(system)["robust_accuracy"] == "red"
    assert stored_statuses(neighbour)["robust_accuracy"] == "green"
    assert row(system).cells["robust_accuracy"]["g"] == 0.9


def test_a_tier_change_recomputes_the_row(owner, system):
    record(system, "robust_accuracy", 0.45, True)  # amber at tier 3, green at tier 4 (green 0.4)
    tm.system_update(actor=owner, system=system, criticality_tier=4)
    assert stored_statuses(system)["robust_accuracy"] == "green"
    assert_row_matches_live(system)


def test_a_system_moved_to_another_team_gets_that_teams_thresholds_and_readers(
    client, owner, outsider, approver, team, other_team, system, django_capture_on_commit_callbacks
):
    record(system, "robust_accuracy", 0.45, True)
    other_approver = MembershipFactory(team=other_team, role="approver").user
    services.threshold_set(actor=other_approver, team=other_team, kpi="robust_accuracy", tier=3, green=0.95, amber=0.9)
    client.force_login(owner)
    assert "Fraud scorer" in client.get("/kpis/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        system.team = other_team
        system.save()
    assert stored_statuses(system)["robust_accuracy"] == "red"
    assert_row_matches_live(system)
    assert "Fraud scorer" not in client.get("/kpis/").content.decode()
    client.force_login(outsider)
    assert "Fraud scorer" in client.get("/kpis/").content.decode()


def test_a_deleted_system_leaves_the_cached_portfolio(client, owner, team, system, django_capture_on_commit_callbacks):
    record(system, "scan_critical_findings", 2)
    client.force_login(owner)
    assert "Fraud scorer" in client.get("/kpis/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        system.delete()
    assert not SystemKpiStatus.objects.filter(system_id=system.pk).exists()
    assert "Fraud scorer" not in client.get("/kpis/").content.decode()


def test_a_renamed_team_shows_on_the_cached_portfolio(client, owner, team, system, django_capture_on_commit_callbacks):
    client.force_login(owner)
    assert "Fraud ML" in client.get("/kpis/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        team.name = "Fraud Detection"
        team.save()
    assert "Fraud Detection" in client.get("/kpis/").content.decode()


# --- The portfolio reads the rows: order, filters, paging -------------------------------------------


def reference_order(user_systems):
    """The order the portfolio had before the rows were precomputed: classify every system, sort in Python."""

    def worst(system):
        statuses = list(live_statuses(system).values())
        return (-statuses.count("red"), -statuses.count("amber"), -statuses.count("unknown"))

    return [s.name for s in sorted(user_systems, key=lambda s: (worst(s), s.name))]


@pytest.fixture
def varied(team, other_team):
    """Fourteen systems in two teams and all tiers, with random values of a few KPIs (seeded)."""
    rng = random.Random(7)
    systems = []
    for i in range(14):
        system = SystemFactory(
            team=team if i % 3 else other_team, name=f"{'bB'[i % 2]}eta {i:02d}", criticality_tier=1 + i % 4
        )
        for key in rng.sample(
            ["robust_accuracy", "attack_success_rate", "scan_critical_findings", "open_incidents"], 2
        ):
            record(system, key, round(rng.uniform(0, 3 if key.endswith(("findings", "incidents")) else 1), 2))
        systems.append(system)
    return systems


def test_the_portfolio_order_equals_classifying_every_system_and_sorting(owner, other_team, varied):
    MembershipFactory(user=owner, team=other_team, role="viewer")
    assert [r.system.name for r in selectors.portfolio(user=owner)] == reference_order(varied)


def names_on(page: str) -> list[str]:
    """System names in the order the page lists them."""
    return re.findall(r'<td><a href="/kpis/systems/[^"]+">([^<]+)</a>', page)


def test_filters_and_pages_read_the_same_order(client, owner, team, varied, monkeypatch):
    mine = [s for s in varied if s.team_id == team.pk]
    tier2 = [s for s in mine if s.criticality_tier == 2]
    assert [r.system.name for r in selectors.portfolio(user=owner, tier=2)] == reference_order(tier2)
    assert [r.system.name for r in selectors.portfolio(user=owner, team_slug=team.slug)] == reference_order(mine)
    monkeypatch.setattr(views, "PORTFOLIO_PAGE_SIZE", 4)
    client.force_login(owner)
    pages = [client.get("/kpis/", {"page": number}).content.decode() for number in (1, 2, 3)]
    assert [len(names_on(page)) for page in pages] == [4, 4, 1]
    assert [name for page in pages for name in names_on(page)] == reference_order(mine)
    assert "Page 3 of 3" in pages[2] and f"{len(mine)} systems" in pages[2]
    tier_page = client.get("/kpis/", {"tier": 2, "team": team.slug}).content.decode()
    assert names_on(tier_page) == reference_order(tier2)
    assert 'href="?team=fraud-ml&amp;page=2"' in client.get("/kpis/", {"team": team.slug}).content.decode()


def test_the_cells_render_the_markup_the_template_rendered(system):
    """The tag joins strings; it must print what the nested template loop printed."""
    old = Template(
        '{% for cell in cells %}<td class="dot"><span class="kpi-{{ cell.status }}" title="{{ '
        "cell.definition.name }}: {% if cell.value is None %}not measured{% else %}{{ cell.value|floatformat:3 }} "
        '{{ cell.definition.unit }} ({{ cell.status }}){% endif %}">{% if cell.value is None %}·{% else %}{{ '
        'cell.value|floatformat:"-2" }}{% endif %}</span></td>{% endfor %}'
    )
    for key, value in [("robust_accuracy", 0.456), ("scan_critical_findings", 3.0), ("open_incidents", 12.345)]:
        record(system, key, value, True)
    record(system, "attack_success_rate", 0.05, False)
    by_key = {c.definition.key: c for c in selectors.build_system_cells(system)}
    expected = old.render(Context({"cells": [by_key[d.key] for d in KPIS]}))
    assert cells_html(row(system).cells) == expected


# --- Caching never crosses team boundaries and never goes stale -------------------------------------


def test_an_outsider_never_sees_another_teams_rows_or_cached_page(client, owner, outsider, system, other_system):
    record(system, "scan_critical_findings", 5)
    client.force_login(owner)
    for query in ("", "?tier=3", "?team=fraud-ml", "?team=other-team"):
        client.get(f"/kpis/{query}")  # fill the cache with the owner's tables
    client.force_login(outsider)
    for query in ("", "?tier=3", "?team=fraud-ml", "?team=other-team"):
        page = client.get(f"/kpis/{query}").content.decode()
        assert "Fraud scorer" not in page and "Fraud ML" not in page
    assert "Other scorer" in client.get("/kpis/").content.decode()


def test_principals_share_a_cached_table_only_with_the_same_teams(owner, outsider, teammate, team, other_team):
    from django.http import QueryDict

    query = QueryDict("tier=2")
    assert selectors.portfolio_cache_key(user=owner, query=query) == selectors.portfolio_cache_key(
        user=teammate, query=query
    )
    assert selectors.portfolio_cache_key(user=owner, query=query) != selectors.portfolio_cache_key(
        user=outsider, query=query
    )
    assert selectors.portfolio_cache_key(user=owner, query=query) != selectors.portfolio_cache_key(
        user=owner, query=QueryDict("tier=3")
    )


def without_csrf(page: str) -> str:
    """The page without its per-response CSRF token (which is never cached)."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)


def test_a_repeated_page_is_served_from_the_cache_until_a_measurement_changes_it(
    client, owner, system, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    record(system, "robust_accuracy", 0.45, True)
    client.force_login(owner)
    with CaptureQueriesContext(connection) as first:
        before = without_csrf(client.get("/kpis/").content.decode())
    with CaptureQueriesContext(connection) as second:
        assert without_csrf(client.get("/kpis/").content.decode()) == before
    assert len(second.captured_queries) < len(first.captured_queries)
    assert not any("kpis_systemkpistatus" in q["sql"] for q in second.captured_queries)
    token = generation()
    with django_capture_on_commit_callbacks() as callbacks:
        record(system, "robust_accuracy", 0.2, True)
    assert generation() == token  # not before the measurement commits
    for callback in callbacks:
        callback()
    assert generation() != token
    after = client.get("/kpis/").content.decode()
    assert 'title="Robust accuracy: 0.200 ratio (red)">0.20<' in after


def test_the_page_query_count_does_not_grow_with_systems_cached_or_not(
    client, owner, team, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(owner)
    counts = []
    for n in (2, 30):
        with django_capture_on_commit_callbacks(execute=True):
            for i in range(n):
                record(SystemFactory(team=team, name=f"S{n}-{i}"), "open_incidents", i % 3)
        with CaptureQueriesContext(connection) as miss:
            client.get("/kpis/")
        with CaptureQueriesContext(connection) as hit:
            client.get("/kpis/")
        counts.append((len(miss.captured_queries), len(hit.captured_queries)))
    assert counts[0] == counts[1]


# --- Rows loaded behind the services' back -----------------------------------------------------------


def test_rows_missing_after_a_bulk_load_are_computed_on_the_page_and_rebuilt_by_the_command(owner, team):
    calm, burning = SystemFactory(team=team, name="Calm"), SystemFactory(team=team, name="Burning")
    SystemKpiStatus.objects.all().delete()
    measurement = Measurement.objects.create(system=burning, kpi="scan_critical_findings", value=4, trigger="bulk")
    CurrentValue.objects.create(
        system=burning,
        kpi="scan_critical_findings",
        measurement=measurement,
        value=4,
        measured_at=measurement.measured_at,
    )
    rows = {r.system.name: r for r in selectors.portfolio(user=owner)}
    assert rows["Burning"].cells["scan_critical_findings"]["s"] == "red"  # right cells even without a row
    call_command("kpi_status_rebuild")
    assert_row_matches_live(burning) and assert_row_matches_live(calm)
    assert [r.system.name for r in selectors.portfolio(user=owner)] == ["Burning", "Calm"]


def test_the_gate_ignores_a_row_computed_with_another_catalog(system):
    record(system, "robust_accuracy", 0.2, True)
    SystemKpiStatus.objects.filter(system=system).update(
        catalog="0ld", cells={d.key: {"s": "green", "g": 0, "a": 0, "v": 1} for d in KPIS}
    )
    loaded = type(system).objects.select_related("kpi_status").get(pk=system.pk)
    assert selectors.gate_cells(loaded)["robust_accuracy"].status == "red"


def test_gate_cells_from_the_row_equal_the_live_cells(system, approver, team):
    for key, value, reliable in [("robust_accuracy", 0.99, False), ("control_coverage", 0.5, None)]:
        record(system, key, value, reliable)
    services.threshold_set(actor=approver, team=team, kpi="control_coverage", tier=3, green=0.4, amber=0.2)
    loaded = type(system).objects.select_related("kpi_status").get(pk=system.pk)
    stored = selectors.gate_cells(loaded)
    for live in selectors.build_system_cells(system):
        cell = stored[live.definition.key]
        assert (cell.status, cell.value, cell.bounds, cell.note) == (live.status, live.value, live.bounds, live.note)
