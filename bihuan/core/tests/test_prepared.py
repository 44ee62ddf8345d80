"""core.prepared: one-statement hot paths, prepared on PostgreSQL, run again once on a dead connection."""

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from bihuan.core import prepared
from bihuan.core.models import AuditEntry

on_postgres = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL behaviour")
# BIHUAN_DB_PREPARE=false is the setting for a pooler in transaction mode (CI runs these tests through PgBouncer):
# nothing is prepared then, and a client's server process is the pooler's to choose, not one to end from outside.
direct = pytest.mark.skipif(not getattr(django_settings, "DB_PREPARE", True),
                            reason="behind a pooler in transaction mode (BIHUAN_DB_PREPARE=false)")

SQL = f"SELECT count(*), %(word)s FROM {AuditEntry._meta.db_table} WHERE action = %(action)s"


def _kill_this_connection() -> None:
    """End this connection's server process from another connection, as a database restart would."""
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    with psycopg.connect(dbname=settings["NAME"], user=settings["USER"] or None, host=settings["HOST"] or None,
                         port=settings["PORT"] or None, password=settings["PASSWORD"] or None,
                         autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db
def test_fetchone_reads_through_a_logged_django_cursor():
    AuditEntry.objects.create(action="x.y")
    with CaptureQueriesContext(connection) as queries:
        assert tuple(prepared.fetchone(SQL, {"word": "ok", "action": "x.y"})) == (1, "ok")
        assert prepared.fetchone(f"SELECT id FROM {AuditEntry._meta.db_table} WHERE action = %(action)s",
                                 {"action": "none such"}) is None
    assert len(queries) == 2  # counted like any other query (the N+1 checks see them)


@on_postgres
@direct
@pytest.mark.django_db
def test_the_statement_is_prepared_on_the_server():
    prepared.fetchone(SQL, {"word": "ok", "action": "x.y"})
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%count(*), $1%"])
        assert cur.fetchone()[0] == 1


@on_postgres
@direct
@pytest.mark.django_db(transaction=True)
def test_a_dead_connection_is_replaced_and_the_statement_run_again():
    AuditEntry.objects.create(action="x.y")
    assert prepared.fetchone(SQL, {"word": "a", "action": "x.y"})[0] == 1
    _kill_this_connection()
    assert tuple(prepared.fetchone(SQL, {"word": "b", "action": "x.y"})) == (1, "b")
    assert connection.is_usable()


@on_postgres
@direct
@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_a_dead_connection_fails_the_transaction():
    AuditEntry.objects.create(action="x.y")
    with pytest.raises(OperationalError), transaction.atomic():
        AuditEntry.objects.create(action="x.z")
        _kill_this_connection()
        prepared.fetchone(SQL, {"word": "a", "action": "x.y"})
    connection.close()
    assert not AuditEntry.objects.filter(action="x.z").exists()


@on_postgres
@pytest.mark.django_db
def test_with_preparing_off_the_statement_runs_unprepared(monkeypatch):
    """BIHUAN_DB_PREPARE=false (a pooler in transaction mode) leaves psycopg's prepare_threshold unset."""
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    assert tuple(prepared.fetchone(SQL, {"word": "off", "action": "x.y"})) == (0, "off")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%count(*), $1%"])
        assert cur.fetchone()[0] == 0
