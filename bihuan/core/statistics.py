"""The query planner's statistics on SQLite, kept fresh by the worker.

PostgreSQL keeps its own (autovacuum analyses tables as they change). SQLite never does: without the
``sqlite_stat1`` table its planner guesses, and at district scale a guess can be a scan of every loop of a kind
instead of a range of one grid's, or of every directive's reach rows instead of an index range per directive.
The worker runs ``ANALYZE`` with ``PRAGMA analysis_limit`` (a sample of each index, ~0.1 s for a whole district)
at its first tick and then every ``BIHUAN_SQLITE_ANALYZE_MINUTES`` (default 60)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

_LAST = {"at": None}


def analyze_sqlite(force: bool = False) -> bool:
    """ANALYZE (sampled) if this is SQLite and it is due (or ``force``). Returns whether it ran."""
    if connection.vendor != "sqlite":
        return False
    now = time.monotonic()
    last = _LAST["at"]
    if not force and last is not None and now - last < settings.SQLITE_ANALYZE_MINUTES * 60:
        return False
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA analysis_limit=1000")
        cursor.execute("ANALYZE")
    _LAST["at"] = now
    return True


def register_task() -> None:
    from .worker import task

    @task("core.statistics")
    def _statistics(worker_id: str) -> int:
        analyze_sqlite()
        return 0  # no rows handled: it never keeps the worker from sleeping between ticks
