"""The audit log cannot be quietly edited: rows are chained by hash, ``bihuan verify_audit`` names the first broken
link, and on PostgreSQL the app's role may append but not change or delete (the grant in docs/security.md)."""

from __future__ import annotations

import io
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections

from bihuan.core import audit
from bihuan.core.models import AuditEntry


def _write(n: int, start: int = 0) -> list[AuditEntry]:
    return [audit.record(actor=None, action="test.write", target_type="t", target_id=start + i,
                         changes={"n": start + i, "名字": "王*国", "nested": {"b": [1, 2.5, True, None]}})
            for i in range(n)]


def _verify() -> str:
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def _sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement.replace("{t}", connection.ops.quote_name(AuditEntry._meta.db_table)), params)


@pytest.mark.django_db
def test_rows_are_sealed_in_order_and_the_chain_holds():
    rows = _write(5)
    assert AuditEntry.objects.filter(seq__isnull=True).count() == 5  # writers pay nothing: sealed afterwards
    assert audit.seal() == 5 and audit.seal() == 0
    sealed = list(AuditEntry.objects.order_by("seq").values_list("id", "seq"))
    assert sealed == [(r.pk, i + 1) for i, r in enumerate(rows)]
    _write(2, start=5)
    assert "7 rows checked, 2 newly sealed" in _verify()
    assert audit.verify().ok


@pytest.mark.django_db
def test_verify_names_the_first_row_that_was_edited_in_the_database():
    rows = _write(6)
    audit.seal_all()
    _sql("UPDATE {t} SET action = %s WHERE id = %s", ["test.innocent", rows[3].pk])
    _sql("UPDATE {t} SET target_id = %s WHERE id = %s", ["x", rows[4].pk])
    with pytest.raises(CommandError, match=rf"broken at link 4 \(row {rows[3].pk}\).*was changed"):
        _verify()


@pytest.mark.django_db
def test_verify_notices_an_edited_change_record_and_a_moved_time():
    rows = _write(3)
    audit.seal_all()
    AuditEntry.objects.filter(pk=rows[1].pk).update(changes={"n": 99})
    assert audit.verify().broken_id == rows[1].pk
    AuditEntry.objects.filter(pk=rows[1].pk).update(changes=rows[1].changes)
    assert audit.verify().ok  # the same content again: the chain holds again
    AuditEntry.objects.filter(pk=rows[0].pk).update(created_at=rows[0].created_at.replace(year=2020))
    assert audit.verify().broken_id == rows[0].pk


@pytest.mark.django_db
def test_verify_names_a_deleted_row():
    rows = _write(4)
    audit.seal_all()
    _sql("DELETE FROM {t} WHERE id = %s", [rows[2].pk])
    verdict = audit.verify()
    assert (verdict.broken_seq, verdict.broken_id) == (3, rows[3].pk) and "missing" in verdict.reason
    with pytest.raises(CommandError, match="link 3"):
        _verify()


@pytest.mark.django_db
def test_rechaining_a_forged_row_is_not_possible_through_the_sealer():
    """The sealer seals only rows without a place in the chain: it never rewrites a sealed row's hash."""
    rows = _write(2)
    audit.seal_all()
    _sql("UPDATE {t} SET action = %s WHERE id = %s", ["forged", rows[0].pk])
    assert audit.seal() == 0
    assert not audit.verify().ok


@pytest.mark.django_db
def test_every_way_of_writing_audit_rows_is_chained():
    from django.utils import timezone

    AuditEntry.objects.bulk_create([AuditEntry(action="bulk", target_type="t", target_id=str(i)) for i in range(3)])
    with connection.cursor() as cursor:
        cursor.execute(audit.insert_sql(), {"now": timezone.now(), "action": "raw", "target_type": "t",
                                            "target_id": "9"})
    audit.bulk_read(actor=None, what="x.list", filters={}, count=0)
    assert audit.seal_all() == 5 and audit.verify().ok and audit.verify().checked == 5


@pytest.mark.django_db
def test_the_worker_seals_on_every_tick():
    from bihuan.core.worker import run_tick

    _write(3)
    assert run_tick("test")["audit.seal"] == 3
    assert not AuditEntry.objects.filter(seq__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_two_sealers_at_once_never_fork_the_chain():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time by construction; the advisory lock is PostgreSQL's")
    _write(400)
    errors = []

    def sealer():
        try:
            while audit.seal(limit=7):
                pass
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sealer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    verdict = audit.verify()
    assert verdict.ok and verdict.checked == 400


APP_ROLE = "bihuan_app_test"


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_app_role_may_append_and_seal_but_not_change_or_delete():
    """The grant of docs/security.md, applied to a role made for the test."""
    if connection.vendor != "postgresql":
        pytest.skip("grants are PostgreSQL's")
    from django.db import ProgrammingError

    table = AuditEntry._meta.db_table
    rows = _write(2)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")
        cursor.execute(f"CREATE ROLE {APP_ROLE}")
        try:
            cursor.execute(f"GRANT SELECT, INSERT ON {table} TO {APP_ROLE}")
            cursor.execute(f"GRANT UPDATE (seq, hash) ON {table} TO {APP_ROLE}")
            cursor.execute(f"GRANT USAGE ON SEQUENCE {table}_id_seq TO {APP_ROLE}")
            cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {APP_ROLE}")
            cursor.execute(f"GRANT UPDATE (seq, hash) ON {table} TO {APP_ROLE}")
            cursor.execute(f"SET ROLE {APP_ROLE}")
            try:
                _write(1, start=10)  # appending works
                assert audit.seal() == 3  # sealing works (it sets seq and hash only)
                for statement in (f"UPDATE {table} SET action = 'x' WHERE id = {rows[0].pk}",
                                  f"UPDATE {table} SET changes = '{{}}' WHERE id = {rows[0].pk}",
                                  f"DELETE FROM {table} WHERE id = {rows[0].pk}",
                                  f"TRUNCATE {table}"):
                    with pytest.raises(ProgrammingError, match="permission denied"):
                        with connection.cursor() as inner:
                            inner.execute(statement)
            finally:
                cursor.execute("RESET ROLE")
        finally:
            cursor.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
            cursor.execute(f"REVOKE ALL ON SEQUENCE {table}_id_seq FROM {APP_ROLE}")
            cursor.execute(f"DROP ROLE {APP_ROLE}")
    assert audit.verify().ok
