"""Queries compiled once per process and run again with new values: the ORM's SQL without its per-call cost.

On a hot path, building and compiling a queryset costs several times what running it costs: one of the
gate's reads took about 1.05 ms, of which 0.25 ms was the database round trip and the rest the ORM
building the query, compiling it to SQL and setting up the iterable. A :class:`CompiledQuery` builds its
queryset once per database alias (and per length of each list argument) with placeholder values,
compiles it, and keeps the SQL, where each placeholder landed in the parameters, the column converters
and how to turn a row into model instances (``select_related`` included). A call then only substitutes
the real values and executes the SQL through Django's cursor, so query logging, ``assertNumQueries`` and
``connection.execute_wrapper`` see it like any other query.

    token_by_hash = CompiledQuery(
        lambda key_hash: ApiToken.objects.select_related("team").filter(key_hash=key_hash)[:1],
        key_hash=str,
    )
    token = token_by_hash.first(key_hash=digest)

Arguments are ``str``, ``int`` or ``list[int]`` / ``list[str]`` (a list of any length: each length is
compiled once). The build function must pass each argument straight to a lookup; compiling fails loudly
when a placeholder does not come out unchanged in the parameters (a lookup that transforms its value),
so such a query cannot run with the wrong values.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet, ImproperlyConfigured
from django.db import connections
from django.db.models import Model, QuerySet, signals
from django.db.models.query import ModelIterable, ValuesListIterable, get_related_populators
from django.db.models.sql import InsertQuery

__all__ = ["CompiledInsert", "CompiledQuery"]

# Placeholders: integers near the top of a 32-bit integer column's range (so that Django's range check on
# integer lookups lets them through) that no id, version or count takes; strings no column holds.
_INT_BASE = 2**31 - 1_000
_STR_MARK = "\x1egarrison-placeholder-{}\x1e"


#: Runs of one statement on a connection after which psycopg prepares it.
PREPARE_AFTER = 2


def _cursor(connection: Any) -> Any:
    """Django's cursor; on PostgreSQL (psycopg 3) one that binds parameters on the server.

    psycopg then prepares a statement that a connection runs again and again (from its third run;
    Django's own cursors bind on the client and never prepare), and PostgreSQL stops planning it on
    every call: planning the gate's one read took 1.6 ms of its
    2.3 ms. The cursor is wrapped as ``connection.cursor()`` wraps its own (query logging, execute
    wrappers). ``DB_PREPARED_STATEMENTS=0`` turns this off, e.g. behind a pooler that cannot keep
    prepared statements.
    """
    if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:  # Django turns preparing off; only these cursors prepare
        connection.connection.prepare_threshold = PREPARE_AFTER
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_preparing_cursor_class()(connection.connection))


@functools.cache
def _preparing_cursor_class() -> type:
    """Django's server-binding cursor, keeping the statement for Django's query log when it runs prepared."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        def _send_query_prepared(self, name: bytes, query: Any, *, binary: bool | None = None) -> None:
            # psycopg keeps the statement (which Django logs: debug SQL, assertNumQueries) for unprepared runs only
            self._query = query
            super()._send_query_prepared(name, query, binary=binary)

    return PreparingCursor


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str, int | None], ...]  # parameter index, argument name, list index
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]
    columns: int
    make: Callable[[str, list[Any]], Any]  # (alias, converted row) -> instance or tuple


class CompiledQuery:
    """A queryset shape compiled once per process, executed with new argument values."""

    def __init__(self, build: Callable[..., QuerySet], **arguments: type | Any) -> None:
        """``build(**arguments)`` returns the queryset; ``arguments`` names each argument's type."""
        for name, kind in arguments.items():
            if kind not in (str, int, list[int], list[str]):
                raise TypeError(f"Argument '{name}': a compiled query takes str, int, list[int] or list[str].")
        self._build = build
        self._arguments = arguments
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._lock = threading.Lock()

    # --- running ---------------------------------------------------------------------------------------

    def all(self, *, using: str = "default", **values: Any) -> list[Any]:
        """Every row: model instances, or tuples for a ``values_list`` queryset."""
        plan = self._plan(using, values)
        params = list(plan.params)
        for index, name, item in plan.slots:
            params[index] = values[name] if item is None else values[name][item]
        connection = connections[using]
        with _cursor(connection) as cursor:
            cursor.execute(plan.sql, params)
            rows = cursor.fetchall()
        out = []
        for raw in rows:
            row = list(raw[: plan.columns])
            for position, convs, expression in plan.converters:
                value = row[position]
                for converter in convs:
                    value = converter(value, expression, connection)
                row[position] = value
            out.append(plan.make(using, row))
        return out

    def first(self, *, using: str = "default", **values: Any) -> Any | None:
        """The first row (the build function should slice ``[:1]``), or None."""
        rows = self.all(using=using, **values)
        return rows[0] if rows else None

    # --- compiling -------------------------------------------------------------------------------------

    def _plan(self, using: str, values: dict[str, Any]) -> _Plan:
        if values.keys() != self._arguments.keys():
            raise TypeError(f"A compiled query takes exactly {sorted(self._arguments)}; got {sorted(values)}.")
        shape = (using, *(len(values[n]) for n, k in self._arguments.items() if k in (list[int], list[str])))
        plan = self._plans.get(shape)
        if plan is None:
            with self._lock:
                plan = self._plans.get(shape) or self._compile(using, shape)
                self._plans[shape] = plan
        return plan

    def _compile(self, using: str, shape: tuple[Any, ...]) -> _Plan:
        lengths = iter(shape[1:])
        placeholders: dict[Any, tuple[str, int | None]] = {}
        arguments: dict[str, Any] = {}
        counter = 0

        def placeholder(kind: type, name: str, item: int | None) -> Any:
            nonlocal counter
            counter += 1
            value = _INT_BASE + counter if kind is int else _STR_MARK.format(counter)
            placeholders[value] = (name, item)
            return value

        for name, kind in self._arguments.items():
            if kind in (str, int):
                arguments[name] = placeholder(kind, name, None)
            else:
                element = int if kind == list[int] else str
                arguments[name] = [placeholder(element, name, i) for i in range(next(lengths))]
        queryset = self._build(**arguments).using(using)
        compiler = queryset.query.get_compiler(using=using)
        try:
            sql, params = compiler.as_sql()  # also sets compiler.select, klass_info and annotation_col_map
        except EmptyResultSet as error:
            raise ImproperlyConfigured(
                "Cannot compile this query: with placeholder values it matches nothing (an empty list, or a "
                "lookup on a column too small for the placeholder integers); run it as a plain queryset."
            ) from error
        slots, seen = [], set()
        for index, value in enumerate(params):
            if isinstance(value, (int, str)) and not isinstance(value, bool) and value in placeholders:
                slots.append((index, *placeholders[value]))
                seen.add(value)
        missing = [placeholders[v][0] for v in placeholders if v not in seen]
        if missing or len(slots) != len(placeholders):
            raise ImproperlyConfigured(
                f"Cannot compile this query: argument(s) {sorted(set(missing)) or '(repeated)'} did not reach the "
                "SQL parameters unchanged (pass each argument once, straight to a lookup)."
            )
        columns = compiler.col_count
        expressions = [s[0] for s in compiler.select[:columns]]
        converters = tuple(
            (position, tuple(convs), expression)
            for position, (convs, expression) in compiler.get_converters(expressions).items()
        )
        return _Plan(
            sql=sql,
            params=tuple(params),
            slots=tuple(slots),
            converters=converters,
            columns=columns,
            make=self._maker(queryset, compiler, using),
        )

    @staticmethod
    def _maker(queryset: QuerySet, compiler: Any, using: str) -> Callable[[str, list[Any]], Any]:
        if queryset._iterable_class is ValuesListIterable:
            return lambda _alias, row: tuple(row)
        if queryset._iterable_class is not ModelIterable or queryset._known_related_objects:
            raise ImproperlyConfigured("A compiled query returns model instances or values_list() tuples.")
        klass_info, select = compiler.klass_info, compiler.select
        model = klass_info["model"]
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        names = [column[0].target.attname for column in select[start:end]]
        populators = get_related_populators(klass_info, select, using)
        annotations: Sequence[tuple[str, int]] = tuple((compiler.annotation_col_map or {}).items())

        def make(alias: str, row: list[Any]) -> Any:
            instance = model.from_db(alias, names, row[start:end])
            for populator in populators:
                populator.populate(row, instance)
            for name, position in annotations:
                setattr(instance, name, row[position])
            return instance

        return make


class CompiledInsert:
    """``INSERT`` of one new instance, compiled once per model and database alias.

    Does what ``Model.save()`` does for a new row of a single-table model (field ``pre_save``, such as
    ``auto_now_add``; the values' database preparation; the ``RETURNING`` of the primary key; the
    ``pre_save``/``post_save`` signals), without rebuilding and compiling the insert each time. A model
    that overrides ``save()`` must name the override as harmless for inserts with ``save_checked=True``
    (the override is not called). Values that are query expressions are refused.
    """

    def __init__(self, model: type[Model], *, save_checked: bool = False) -> None:
        """Compile lazily for ``model``; see the class docstring for ``save_checked``."""
        if model._meta.parents or model._meta.order_with_respect_to:
            raise ImproperlyConfigured(f"{model.__name__}: a compiled insert takes single-table models only.")
        if model.save is not Model.save and not save_checked:
            raise ImproperlyConfigured(
                f"{model.__name__} overrides save(), which a compiled insert does not call: check that the "
                "override does nothing for new rows and pass save_checked=True."
            )
        meta = model._meta
        self.model = model
        self.fields = [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field]
        self.returning = meta.db_returning_fields
        self._sql: dict[str, str] = {}

    def save(self, instance: Model, *, using: str = "default") -> Model:
        """Insert ``instance`` (a new, unsaved instance of the model) and set its primary key."""
        if not instance._state.adding or instance.pk is not None:
            raise ValueError("A compiled insert takes a new instance with no primary key.")
        model, connection = self.model, connections[using]
        signals.pre_save.send(sender=model, instance=instance, raw=False, using=using, update_fields=None)
        values = [field.pre_save(instance, True) for field in self.fields]
        if any(hasattr(value, "resolve_expression") for value in values):
            raise ValueError("A compiled insert takes plain values, not query expressions.")
        sql = self._sql.get(using) or self._compile(instance, using)
        params = [field.get_db_prep_save(value, connection) for field, value in zip(self.fields, values, strict=True)]
        with _cursor(connection) as cursor:
            cursor.execute(sql, params)
            if connection.features.can_return_columns_from_insert:
                returned = cursor.fetchone()
            else:
                returned = (connection.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column),)
        for value, field in zip(returned, self.returning, strict=True):
            for converter in field.get_db_converters(connection):
                value = converter(value, field, connection)
            setattr(instance, field.attname, value)
        instance._state.adding, instance._state.db = False, using
        signals.post_save.send(
            sender=model, instance=instance, created=True, update_fields=None, raw=False, using=using
        )
        return instance

    def _compile(self, instance: Model, using: str) -> str:
        query = InsertQuery(self.model)
        query.insert_values(self.fields, [instance], raw=False)
        compiler = query.get_compiler(using=using)
        compiler.returning_fields = (
            self.returning if connections[using].features.can_return_columns_from_insert else None
        )
        ((sql, _params),) = compiler.as_sql()
        self._sql[using] = sql
        return sql
