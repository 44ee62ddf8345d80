"""core.bulk.update_rows writes many rows' fields by primary key, values of every type as Django stores them."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bihuan.core import bulk
from bihuan.core.bulk import insert_rows, reserve_ids, update_rows
from bihuan.core.models import AuditEntry


@pytest.mark.django_db
@pytest.mark.parametrize("by_copy", [False, True])
def test_rows_get_their_own_values_in_one_statement_per_chunk(by_copy, monkeypatch):
    if by_copy:
        if connection.vendor != "postgresql":
            pytest.skip("COPY is PostgreSQL's")
        monkeypatch.setattr(bulk, "COPY_ABOVE", 5)
    user = get_user_model().objects.create(username="u")
    rows = [AuditEntry.objects.create(action=f"a{i}", target_id=str(i)) for i in range(7)]
    untouched = AuditEntry.objects.create(action="keep", target_id="k")
    when = dt.datetime(2022, 3, 5, 8, 30, tzinfo=dt.UTC)
    for i, row in enumerate(rows):
        row.action = f"b{i}"
        row.created_at = when + dt.timedelta(hours=i)
        row.changes = {"n": i, "名": ["一", None]} if i % 2 else {}
        row.actor = user if i % 3 == 0 else None
        row.target_id = "" if i == 6 else f"t{i}"
    with CaptureQueriesContext(connection) as queries:
        update_rows(AuditEntry, rows, ["action", "created_at", "changes", "actor", "target_id"], chunk=3)
    # 3 + 3 + 1 rows
    # by COPY: drop, create, analyse, update, drop (the COPY is not logged)
    assert len(queries) == (5 if by_copy else 3)
    for i, row in enumerate(AuditEntry.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk")):
        assert (row.action, row.created_at, row.actor_id, row.target_id) == (
            f"b{i}", when + dt.timedelta(hours=i), user.pk if i % 3 == 0 else None, "" if i == 6 else f"t{i}")
        assert row.changes == ({"n": i, "名": ["一", None]} if i % 2 else {})
    untouched.refresh_from_db()
    assert (untouched.action, untouched.target_id) == ("keep", "k")


@pytest.mark.django_db
def test_nothing_to_write_is_no_statement():
    with CaptureQueriesContext(connection) as queries:
        update_rows(AuditEntry, [], ["action"])
    assert len(queries) == 0


@pytest.mark.django_db
def test_inserted_rows_keep_their_reserved_ids_and_values():
    user = get_user_model().objects.create(username="u")
    ids = reserve_ids(AuditEntry, 3)
    when = dt.datetime(2022, 3, 5, 8, 30, tzinfo=dt.UTC)
    insert_rows(AuditEntry, ["id", "created_at", "actor_id", "action", "target_type", "target_id", "changes"],
                [(pk, when, user.pk if pk == ids[0] else None, "x", "t", str(pk), {"名": [pk]}) for pk in ids])
    rows = list(AuditEntry.objects.filter(pk__in=ids).order_by("pk").values_list("pk", "created_at", "actor_id",
                                                                                  "changes"))
    assert rows == [(pk, when, user.pk if pk == ids[0] else None, {"名": [pk]}) for pk in ids]
    assert AuditEntry.objects.create(action="next").pk > ids[-1]  # the sequence moved past them


@pytest.mark.django_db
def test_json_written_by_the_caller_is_stored_as_it_is():
    ids = reserve_ids(AuditEntry, 2)
    when = dt.datetime(2022, 3, 5, 8, 30, tzinfo=dt.UTC)
    insert_rows(AuditEntry, ["id", "created_at", "action", "target_type", "target_id", "changes"],
                [(ids[0], when, "x", "t", "1", bulk.JsonText('{"名": "一", "n": [1, null]}')),
                 (ids[1], when, "x", "t", "2", {"名": "二"})])
    assert dict(AuditEntry.objects.filter(pk__in=ids).values_list("pk", "changes")) == {
        ids[0]: {"名": "一", "n": [1, None]}, ids[1]: {"名": "二"}}


@pytest.mark.django_db
def test_any_of_finds_exactly_the_values_given_whatever_they_hold():
    awkward = ["a", 'b"c', "d\\e", "", "x,y", "{z}", "NULL", " sp ", "中文", "'q'"]
    entries = [AuditEntry.objects.create(action=a) for a in [*awkward, "other"]]
    match, params = bulk.any_of("action", awkward)
    with connection.cursor() as cur:
        cur.execute(f"SELECT id FROM {AuditEntry._meta.db_table} WHERE {match}", params)
        found = {pk for (pk,) in cur.fetchall()}
    assert found == {e.pk for e in entries[:-1]}
    match, params = bulk.any_of("id", [entries[0].pk, entries[-1].pk], "bigint")
    with connection.cursor() as cur:
        cur.execute(f"SELECT id FROM {AuditEntry._meta.db_table} WHERE {match}", params)
        assert {pk for (pk,) in cur.fetchall()} == {entries[0].pk, entries[-1].pk}


@pytest.mark.django_db
def test_the_sqlite_page_cache_is_larger_inside_and_as_it_was_after():
    if connection.vendor != "sqlite":
        with bulk.sqlite_cache(64):
            pass  # nothing to do elsewhere
        return

    def size():
        with connection.cursor() as cur:
            cur.execute("PRAGMA cache_size")
            return cur.fetchone()[0]

    before = size()
    with bulk.sqlite_cache(64):
        assert size() == -64 * 1024
    assert size() == before


def test_the_cycle_collector_is_paused_inside_and_on_again_after():
    import gc

    assert gc.isenabled()
    with bulk.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with bulk.collector_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


@pytest.mark.django_db
def test_array_parameters_reach_postgresql_as_they_were():
    if connection.vendor != "postgresql":
        pytest.skip("arrays are PostgreSQL's")
    texts = ["a", 'b"c', "d\\e", "", "x,y", "{z}", "NULL", " sp ", "中文"]
    days = [dt.date(2022, 3, 1), dt.date(1999, 12, 31)]
    with connection.cursor() as cur:
        cur.execute("SELECT CAST(%s AS text[]), CAST(%s AS date[]), CAST(%s AS bigint[])",
                    [bulk.array_param(texts), bulk.array_param(days), bulk.array_param([1, 2**40])])
        assert cur.fetchone() == (texts, days, [1, 2**40])
