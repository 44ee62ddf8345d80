"""The worker keeps SQLite's planner statistics fresh (core.statistics); PostgreSQL keeps its own."""

import pytest
from django.db import connection

from bihuan.core import statistics


@pytest.mark.django_db
def test_sqlite_statistics_are_taken_at_once_then_again_only_when_due(monkeypatch, settings):
    monkeypatch.setitem(statistics._LAST, "at", None)
    settings.SQLITE_ANALYZE_MINUTES = 60
    ran = statistics.analyze_sqlite()
    if connection.vendor != "sqlite":
        assert ran is False  # autovacuum's work on PostgreSQL
        return
    assert ran is True
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        assert cursor.fetchone()[0] == 1
    assert statistics.analyze_sqlite() is False  # not due again for an hour
    assert statistics.analyze_sqlite(force=True) is True


@pytest.mark.django_db
def test_the_worker_tick_runs_the_statistics_task_without_counting_it_as_work(monkeypatch):
    from bihuan.core.worker import run_tick

    monkeypatch.setitem(statistics._LAST, "at", None)
    assert run_tick("test")["core.statistics"] == 0
