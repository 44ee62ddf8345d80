"""``python -m bench generate``: build a whole district with the generator.

n = residents written. Baseline: the physical limit for writing the same rows on the same database —
copying the generated tables (units, households, residents, staff, user accounts) into empty copies
with the same indexes by ``INSERT INTO copy SELECT * FROM table`` in one transaction.
"""

from __future__ import annotations

import re

from bench.common import SEED, database, report, timed

PREFIX = "bench_copy_"


def run(scale: str) -> dict:
    from django.contrib.auth import get_user_model

    from bihuan.demo.generate import generate_district, register_is_empty, reset_register
    from bihuan.register.models import Household, Resident, Staff, Unit

    print(f"database: {database()}; rebuilding the {scale} district")
    if not register_is_empty():
        reset_register()
    result: dict = {}

    def build() -> None:
        result.update(generate_district(scale, seed=SEED))

    seconds = timed(build)
    for level, n in sorted(result["units"].items()):
        print(f"level {level}: {n:,} units")
    print(f"households: {result['households']:,}")
    print(f"residents: {result['residents']:,}")
    print(f"staff: {result['staff']:,}")

    tables = [m._meta.db_table for m in (Unit, Household, Resident, Staff, get_user_model())]
    baseline_seconds = copy_tables(tables)
    return report("generate", scale, result["residents"], seconds,
                  "INSERT INTO copy SELECT * FROM table for units, households, residents, staff and users "
                  "(empty copies with the same indexes)", baseline_seconds)


def copy_tables(tables: list[str]) -> float:
    """Seconds to copy ``tables`` into empty copies with the same indexes, in one transaction."""
    from django.db import connection, transaction

    qn = connection.ops.quote_name
    drop_copies(tables)
    with connection.cursor() as cur:
        for table in tables:
            for statement in copy_ddl(cur, table):
                cur.execute(statement)

    def copy() -> None:
        with transaction.atomic(), connection.cursor() as cur:
            for table in tables:
                cur.execute(f"INSERT INTO {qn(PREFIX + table)} SELECT * FROM {qn(table)}")

    try:
        return timed(copy)
    finally:
        drop_copies(tables)


def copy_ddl(cur, table: str) -> list[str]:
    from django.db import connection

    qn = connection.ops.quote_name
    if connection.vendor == "postgresql":
        return [f"CREATE TABLE {qn(PREFIX + table)} (LIKE {qn(table)} INCLUDING ALL)"]
    # SQLite: the table's own CREATE statements with the names changed (keeps types, keys, indexes).
    cur.execute("SELECT type, sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL "
                "ORDER BY type = 'index'", [table])
    statements = []
    for kind, sql in cur.fetchall():
        if kind == "table":
            sql = re.sub(rf'^CREATE TABLE "?{re.escape(table)}"?', f'CREATE TABLE "{PREFIX}{table}"', sql)
        else:
            sql = re.sub(rf'INDEX "?(\w+)"? ON "?{re.escape(table)}"?', rf'INDEX "{PREFIX}\1" ON "{PREFIX}{table}"',
                         sql)
        statements.append(sql)
    return statements


def drop_copies(tables: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for table in tables:
            cur.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(PREFIX + table)}")
