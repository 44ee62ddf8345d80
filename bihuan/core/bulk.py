"""``update_rows``: many rows' fields updated by primary key in one statement per chunk.

Django's ``bulk_update`` builds a ``CASE WHEN id = … THEN …`` per field and row and spends ~2 ms a row in
Python compiling it: re-pushed lists merge tens of thousands of people. Here the rows travel as plain
parameters — ``WITH v(id, f1, …) AS (VALUES (…), …) UPDATE t SET f1 = v.f1, … FROM v WHERE t.id = v.id``
(SQLite ≥ 3.33 and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from .tabular import chunks

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
    with connection.cursor() as cur:
        for part in chunks(objs, chunk):
            params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for obj in part for f in columns]
            cur.execute(f"WITH v({names}) AS (VALUES {', '.join([row] * len(part))}) "
                        f"UPDATE {table} SET {sets} FROM v WHERE {table}.{q(meta.pk.column)} = v.{q(meta.pk.column)}",
                        params)
