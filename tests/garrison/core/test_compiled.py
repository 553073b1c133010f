"""Compiled queries and inserts give what the ORM gives, with new values on every call."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Count, signals
from django.test.utils import CaptureQueriesContext

from garrison.accounts.models import Team
from garrison.audit.models import AuditEvent
from garrison.core.compiled import CompiledInsert, CompiledQuery
from kpis.models import GatePolicy
from tests.factories import SystemFactory, TeamFactory
from threatmodel.models import System

pytestmark = pytest.mark.django_db


def _systems(team_ids: list[int]):  # noqa: ANN202
    return System.objects.filter(team_id__in=team_ids).select_related("team", "gate_policy")


BY_SLUG = CompiledQuery(
    lambda team_ids, slug: _systems(team_ids).filter(slug=slug).order_by("pk"), team_ids=list[int], slug=str
)
BY_ID = CompiledQuery(lambda pk: System.objects.filter(pk=pk).only("id", "slug")[:1], pk=int)
COUNTS = CompiledQuery(
    lambda slug: Team.objects.filter(slug=slug).annotate(n=Count("systems")).values_list("slug", "n"), slug=str
)


def test_model_instances_match_the_orm_with_related_objects_and_new_values_each_call() -> None:
    a, b = TeamFactory(slug="a"), TeamFactory(slug="b")
    sa, sb = SystemFactory(team=a, slug="same"), SystemFactory(team=b, slug="same")
    GatePolicy.objects.create(system=sa)
    for team_ids, expected in (([a.pk], [sa]), ([b.pk], [sb]), ([a.pk, b.pk], [sa, sb]), ([999], [])):
        got = BY_SLUG.all(team_ids=team_ids, slug="same")
        orm = list(_systems(team_ids).filter(slug="same").order_by("pk"))
        assert got == orm == expected
        for mine, theirs in zip(got, orm, strict=True):
            assert mine.team.slug == theirs.team.slug  # select_related populated, no query
            assert System.gate_policy.is_cached(mine)
            assert getattr(mine, "gate_policy", None) == getattr(theirs, "gate_policy", None)
            assert mine._state.adding is False and mine._state.db == "default"
    with CaptureQueriesContext(connection) as queries:
        BY_SLUG.all(team_ids=[a.pk], slug="same")[0].team.name  # noqa: B018
    assert len(queries) == 1  # logged like any query, and the team came with it
    assert BY_SLUG.all(team_ids=[a.pk], slug="other") == []


def test_only_deferred_fields_and_first() -> None:
    system = SystemFactory(slug="s1", name="Named")
    got = BY_ID.first(pk=system.pk)
    assert got == system and got.get_deferred_fields() >= {"name"}
    assert got.name == "Named"  # loaded on access, as the ORM does
    assert BY_ID.first(pk=system.pk + 1000) is None


def test_values_list_with_annotation_and_converters() -> None:
    team = TeamFactory(slug="t")
    SystemFactory(team=team)
    SystemFactory(team=team)
    assert COUNTS.all(slug="t") == list(
        Team.objects.filter(slug="t").annotate(n=Count("systems")).values_list("slug", "n")
    )
    assert COUNTS.all(slug="t") == [("t", 2)]


def test_values_are_parameters_not_sql() -> None:
    TeamFactory(slug="x")
    hostile = "x' OR '1'='1"
    assert COUNTS.all(slug=hostile) == []


def test_refuses_wrong_arguments_and_uncompilable_queries() -> None:
    with pytest.raises(TypeError, match="exactly"):
        BY_ID.all(pk=1, other=2)
    with pytest.raises(TypeError, match="str, int"):
        CompiledQuery(lambda when: System.objects.filter(created_at=when), when=float)
    # The argument is used twice: its placeholder appears twice in the parameters.
    twice = CompiledQuery(lambda slug: System.objects.filter(slug=slug, name=slug), slug=str)
    with pytest.raises(ImproperlyConfigured, match="unchanged"):
        twice.all(slug="s")
    # A transforming lookup: the placeholder does not reach the parameters as given.
    contains = CompiledQuery(lambda slug: System.objects.filter(slug__contains=slug), slug=str)
    with pytest.raises(ImproperlyConfigured, match="unchanged"):
        contains.all(slug="s")
    empty = CompiledQuery(lambda ids: System.objects.filter(pk__in=ids), ids=list[int])
    with pytest.raises(ImproperlyConfigured, match="matches nothing"):
        empty.all(ids=[])


def test_compiled_insert_matches_save_and_sends_signals() -> None:
    team = TeamFactory()
    insert = CompiledInsert(AuditEvent, save_checked=True)
    seen = []

    def receiver(sender, instance, created, **kwargs):  # noqa: ANN001, ANN003, ANN202
        seen.append((instance.pk, created))

    signals.post_save.connect(receiver, sender=AuditEvent)
    try:
        for n in range(3):
            event = insert.save(
                AuditEvent(team_id=team.pk, verb="x.test", object_type="t", object_id=str(n), changes={"n": [0, n]})
            )
            stored = AuditEvent.objects.get(pk=event.pk)
            assert stored.changes == {"n": [0, n]} and stored.object_id == str(n)
            assert stored.created_at == event.created_at and event.created_at is not None  # auto_now_add
            assert event._state.adding is False
    finally:
        signals.post_save.disconnect(receiver, sender=AuditEvent)
    assert [created for _, created in seen] == [True] * 3 and len({pk for pk, _ in seen}) == 3
    with pytest.raises(ValueError, match="new instance"):
        insert.save(stored)


def test_compiled_insert_refuses_unchecked_save_overrides() -> None:
    with pytest.raises(ImproperlyConfigured, match="overrides save"):
        CompiledInsert(AuditEvent)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.parametrize("prepared", [True, False])
def test_on_postgresql_hot_queries_are_prepared_unless_turned_off(settings, prepared) -> None:
    settings.DB_PREPARED_STATEMENTS = prepared
    system = SystemFactory(slug="prep")
    columns = ("id", "slug") if prepared else ("id", "name")  # a statement of its own for each case
    query = CompiledQuery(lambda slug: System.objects.filter(slug=slug).only(*columns)[:1], slug=str)
    for _ in range(4):
        assert query.first(slug="prep") == system
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    sql = query._plans[("default",)].sql
    assert any(statement == sql.replace("%s", "$1") for statement in statements) is prepared
    with CaptureQueriesContext(connection) as queries:  # a prepared run is logged with its SQL like any other
        query.first(slug="prep")
    assert [q["sql"] for q in queries.captured_queries] and all(q["sql"] for q in queries.captured_queries)
