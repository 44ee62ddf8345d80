"""Set-based row writing for the generators: ``Writer`` batches rows of a model into executemany (COPY on
PostgreSQL), ``bulk_insert`` for raw tables, ``_max_id`` to number new rows before they are written."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection, models

BATCH = 20_000  # rows per executemany / flush


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _insert_sql(table: str, columns: Sequence[str], vendor: str) -> str:
    cols = ", ".join(_qn(c) for c in columns)
    if vendor == "postgresql":
        return f"COPY {_qn(table)} ({cols}) FROM STDIN"
    return f"INSERT INTO {_qn(table)} ({cols}) VALUES ({', '.join(['?'] * len(columns))})"


def _raw_insert(raw, vendor: str, sql: str, rows: Iterable[Sequence]) -> None:
    """Rows through the driver's own connection: no parameters pass through Django's query log."""
    if vendor == "postgresql":
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    else:
        raw.executemany(sql, rows)


def bulk_insert(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert rows as fast as the database allows: ``COPY`` on PostgreSQL, ``executemany`` on SQLite.

    Uses the driver's own connection (inside the current transaction), so no parameters pass through
    Django's query log. Values must already be in database form (bytes for binary fields).
    """
    connection.ensure_connection()
    _raw_insert(connection.connection, connection.vendor, _insert_sql(table, columns, connection.vendor), rows)


class Writer:
    """Column lists per model and batched inserts. Columns not given are filled with the field default."""

    def __init__(self, model: type[models.Model], columns: Sequence[str]):
        self.model = model
        self.table = model._meta.db_table
        by_column = {f.column: f for f in model._meta.concrete_fields}
        missing = [f for c, f in by_column.items() if c not in columns]
        self.columns = list(columns) + [f.column for f in missing]
        self.extra = tuple(f.get_db_prep_save(f.get_default(), connection) for f in missing)
        self.rows: list[tuple] = []
        self.count = 0

    def add(self, row: tuple) -> None:
        self.rows.append(row + self.extra if self.extra else row)
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            bulk_insert(self.table, self.columns, self.rows)
            self.count += len(self.rows)
            self.rows = []


def _max_id(model: type[models.Model]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {_qn(model._meta.db_table)}")
        return int(cursor.fetchone()[0])

