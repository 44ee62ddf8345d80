"""``update_rows``: many rows' fields updated by primary key in one statement per chunk.

Django's ``bulk_update`` builds a ``CASE WHEN id = … THEN …`` per field and row and spends ~2 ms a row in
Python compiling it: re-pushed lists merge tens of thousands of people. Here the rows travel as plain
parameters — ``WITH v(id, f1, …) AS (VALUES (…), …) UPDATE t SET f1 = v.f1, … FROM v WHERE t.id = v.id``
(SQLite ≥ 3.33 and PostgreSQL).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
from collections.abc import Iterator, Sequence

from django.db import connection

from .tabular import chunks

COPY_ABOVE = 100  # PostgreSQL: more rows than this go by COPY into a temporary table and one UPDATE (a VALUES
# list of 500 rows is ~10,000 parameters the client splices into the text and the server parses: 1 s a statement)
CHUNK = 500  # rows per statement: (fields + 1) · 500 parameters stays under SQLite's limit for up to 60 fields


def update_rows(model, objs: Sequence, fields: Sequence[str], chunk: int = CHUNK) -> None:
    """Write ``fields`` (names, as for ``bulk_update``) of every object in ``objs`` to its row. (No count of rows:
    Python's sqlite3 reports none for a statement that starts with WITH.)"""
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    q = connection.ops.quote_name
    table = q(meta.db_table)
    if connection.vendor == "postgresql":
        # A VALUES list has no column types of its own: each parameter is cast to its column's.
        row = "(" + ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in columns) + ")"
    else:
        row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    names = ", ".join(q(f.column) for f in columns)
    sets = ", ".join(f"{q(f.column)} = v.{q(f.column)}" for f in columns[1:])
    if connection.vendor == "postgresql" and len(objs) > COPY_ABOVE:
        _update_by_copy(model, objs, columns)
        return
    prepare = [_preparer(f) for f in columns]
    attnames = [f.attname for f in columns]
    with connection.cursor() as cur:
        for part in chunks(objs, chunk):
            params = [prep(getattr(obj, name)) for obj in part for name, prep in zip(attnames, prepare, strict=True)]
            cur.execute(f"WITH v({names}) AS (VALUES {', '.join([row] * len(part))}) "
                        f"UPDATE {table} SET {sets} FROM v WHERE {table}.{q(meta.pk.column)} = v.{q(meta.pk.column)}",
                        params)


def _update_by_copy(model, objs: Sequence, columns: list) -> None:
    """PostgreSQL, many rows: COPY the new values into a temporary table, then one UPDATE … FROM it."""
    q = connection.ops.quote_name
    table, pk = q(model._meta.db_table), q(columns[0].column)
    temp = q(f"bulk_update_{model._meta.db_table}")
    names = ", ".join(q(f.column) for f in columns)
    sets = ", ".join(f"{q(f.column)} = v.{q(f.column)}" for f in columns[1:])
    attnames = [f.attname for f in columns]
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {temp}")
        cur.execute(f"CREATE TEMPORARY TABLE {temp} AS SELECT {names} FROM {table} WITH NO DATA")
        with cur.cursor.copy(f"COPY {temp} ({names}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row([_copy_value(getattr(obj, name)) for name in attnames])
        cur.execute(f"ANALYZE {temp}")  # its size known: a few hundred rows join by key, not by scanning the table
        cur.execute(f"UPDATE {table} SET {sets} FROM {temp} v WHERE {table}.{pk} = v.{pk}")
        cur.execute(f"DROP TABLE {temp}")


def _copy_value(value):
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, ensure_ascii=False)
    return bytes(value) if isinstance(value, memoryview) else value


_PLAIN = (str, int, type(None))


def _preparer(field):
    """``field.get_db_prep_save`` with a shortcut for values that go to the database as they are (text, integers
    and NULL in text, integer and key columns): Django's generic path costs microseconds a value."""
    from django.db import models

    generic = field.get_db_prep_save
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    plain = type(target) in (models.CharField, models.TextField) or isinstance(target, models.IntegerField)
    if not plain:
        if isinstance(target, models.DateField | models.BooleanField):  # dates and instants repeat: remember them
            return _memo(lambda value: generic(value, connection))
        return lambda value: generic(value, connection)
    return lambda value: value if value.__class__ in _PLAIN else generic(value, connection)


def reserve_ids(model, n: int) -> list[int]:
    """``n`` primary keys for new rows of ``model``, taken in one statement, so rows can be written with their ids
    (by COPY, which returns none) and referred to at once. PostgreSQL: the table's sequence. SQLite: the ids
    after the highest ever given — call inside the writing transaction (SQLite's IMMEDIATE transactions let no
    other writer in until it ends)."""
    if n <= 0:
        return []
    meta = model._meta
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                        [meta.db_table, meta.pk.column, n])
            return [row[0] for row in cur.fetchall()]
        q = connection.ops.quote_name
        cur.execute(f"SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), "
                    f"COALESCE((SELECT MAX({q(meta.pk.column)}) FROM {q(meta.db_table)}), 0))", [meta.db_table])
        start = cur.fetchone()[0] + 1
    return list(range(start, start + n))


class JsonText(str):
    """A JSON field's value already written as JSON text (``insert_rows`` passes it on as it is)."""

    __slots__ = ()


def insert_rows(model, fields: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Insert ``rows`` (tuples of Python values in the order of ``fields``, attnames such as ``batch_id``) into
    ``model``'s table without building model instances: ``COPY … FROM STDIN`` on PostgreSQL, one prepared INSERT
    run for every row (``executemany``) on SQLite. Values are as the model's fields hold them (str, int, bytes,
    date, aware datetime, dict/list for JSON fields, or a ``JsonText`` a caller wrote itself); no defaults are
    filled in, so name every column that has no database default."""
    if not rows:
        return
    import json

    from django.db import models

    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    columns = [by_attname[name] for name in fields]
    q = connection.ops.quote_name
    names = ", ".join(q(f.column) for f in columns)
    json_at = [i for i, f in enumerate(columns) if isinstance(f, models.JSONField)]
    when_at = [i for i, f in enumerate(columns) if isinstance(f, models.DateTimeField)]

    def prepared(row: Sequence, adapt_time) -> list:
        values = list(row)
        for i in json_at:
            if values[i].__class__ is not JsonText:
                values[i] = json.dumps(values[i], ensure_ascii=False)
        for i in when_at:
            values[i] = adapt_time(values[i])
        return values

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            raw = cur.cursor  # psycopg's own cursor: COPY adapts dates, times and bytes itself
            with raw.copy(f"COPY {q(meta.db_table)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(prepared(row, lambda value: value) if json_at else row)
        else:
            adapt = _memo(connection.ops.adapt_datetimefield_value)  # a list's rows share a few instants
            marks = ", ".join(["%s"] * len(columns))
            cur.executemany(f"INSERT INTO {q(meta.db_table)} ({names}) VALUES ({marks})",
                            [prepared(row, adapt) for row in rows])


def _memo(fn, limit: int = 4096):
    """``fn`` remembering its results (for values that repeat, such as the few instants of one import)."""
    seen: dict = {}

    def call(value):
        try:
            return seen[value]
        except KeyError:
            result = fn(value)
            if len(seen) < limit:
                seen[value] = result
            return result
        except TypeError:  # not hashable
            return fn(value)
    return call


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while inside (on again afterwards, if it was on). Bulk work makes millions of
    small objects that live until it ends (the rows of a list, its remembered cells): every full collection
    walks all of them again, a fifth of a 50,000-row import's time. What it makes holds few reference cycles;
    any left are collected after."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


@contextlib.contextmanager
def sqlite_cache(mib: int = 64) -> Iterator[None]:
    """On SQLite, a page cache of ``mib`` MiB for this connection while inside (the size it had afterwards).
    SQLite's default is 2 MiB: a bulk write into a table with several indexes on random keys (lookup hashes)
    finds few of their pages there, and a transaction whose changed pages outgrow it spills them into the WAL
    before it commits. The memory is taken only as pages are read. Nothing on PostgreSQL."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cur:
        cur.execute("PRAGMA cache_size")
        old = int(cur.fetchone()[0])  # negative: KiB; positive: pages
        cur.execute("PRAGMA page_size")
        page = int(cur.fetchone()[0])
        if (-old if old < 0 else old * page // 1024) >= mib * 1024:
            old = None  # already as large
        else:
            cur.execute(f"PRAGMA cache_size = {-int(mib) * 1024}")
    try:
        yield
    finally:
        if old is not None and connection.connection is not None:
            with connection.cursor() as cur:
                cur.execute(f"PRAGMA cache_size = {old}")


def any_of(expression: str, values: Sequence, db_type: str = "text") -> tuple[str, list]:
    """SQL saying ``expression`` is one of ``values``, with ONE parameter however many values there are:
    ``= ANY(%s)`` with an array on PostgreSQL, ``IN (SELECT value FROM json_each(%s))`` on SQLite. Thousands of
    separate parameters cost more to bind and plan than the lookup itself."""
    if connection.vendor == "postgresql":
        return f"{expression} = ANY(CAST(%s AS {db_type}[]))", [array_param(values)]
    import json

    return f"{expression} IN (SELECT value FROM json_each(%s))", [json.dumps(list(values), default=str)]


def array_param(values: Sequence):
    """A PostgreSQL array parameter (for ``CAST(%s AS text[])`` and the like): the text of the array (``{1,2}``,
    ``{"a","b\\"c"}``) when the values are integers, strings and dates — one string for the driver instead of a
    list it adapts item by item (2,000 lookup hashes a chunk) — else the list itself."""
    parts = []
    for value in values:
        cls = value.__class__
        if cls is int or cls is dt.date:
            parts.append(str(value))
        elif cls is str:
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            return list(values)
    return "{" + ",".join(parts) + "}"
