"""The read replica, against a real PostgreSQL hot standby (``scripts/replica.sh start``).

Runs only when ``DATABASE_REPLICA_URL`` names the standby of ``DATABASE_URL``'s server. pytest-django makes the
test database on the primary; the standby replicates it (physical replication copies whole clusters), so the
``replica`` alias is pointed at the standby with the test database's name. Rows are committed
(``transaction=True``) so that they reach the standby. Replay is paused on the standby
(``pg_wal_replay_pause()``) to make it fall behind on purpose: a page then shows the standby's older state,
which is how the tests see where a page read from.
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import connections
from django.urls import reverse

from bihuan.core import dbroute
from bihuan.register.models import Unit

pytestmark = [
    pytest.mark.skipif("replica" not in settings.DATABASES, reason="DATABASE_REPLICA_URL is not set"),
    pytest.mark.django_db(transaction=True, databases=["default", "replica"]),
]


def _standby_settings(port: str | None = None) -> dict:
    real = dict(settings.DATABASES["replica"])
    real["NAME"] = connections["default"].settings_dict["NAME"]  # the test database, replicated
    if port:
        real["PORT"] = port
    return real


@pytest.fixture
def standby(settings):
    """The ``replica`` alias on the real standby, checked on every request; replay resumed afterwards."""
    settings.REPLICA_CHECK_SECONDS = 0
    replica = connections["replica"]
    mirrored = replica.settings_dict
    replica.close()
    replica.settings_dict = _standby_settings()
    dbroute.forget_health()
    yield replica
    replica.close()
    replica.settings_dict = _standby_settings()
    try:
        with replica.cursor() as cur:
            cur.execute("SELECT pg_wal_replay_resume()")
    finally:
        replica.close()
        replica.settings_dict = mirrored
        dbroute.forget_health()


def _replica_sql(replica, sql: str, params=()):
    with replica.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def caught_up(replica, timeout: float = 20.0) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with connections["default"].cursor() as cur:
        cur.execute("SELECT pg_current_wal_lsn()::text")
        lsn = cur.fetchone()[0]
    deadline = time.monotonic() + timeout
    while not _replica_sql(replica, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])[0]:
        assert time.monotonic() < deadline, "the standby did not catch up"
        time.sleep(0.05)


def pause(replica) -> None:
    _replica_sql(replica, "SELECT pg_wal_replay_pause()")


def resume(replica) -> None:
    _replica_sql(replica, "SELECT pg_wal_replay_resume()")


@pytest.fixture
def place(standby, client):
    from bihuan.testing import build_base_district

    d = build_base_district()
    client.force_login(d.users["community_a"])
    caught_up(standby)
    return d


class OnReplica:
    """The statements a block runs on the replica, without the health check (unlike CaptureQueriesContext, it
    does not connect to the replica itself)."""

    def __enter__(self):
        self.statements: list[str] = []
        self._wrapper = connections["replica"].execute_wrapper(self)
        self._wrapper.__enter__()
        return self.statements

    def __call__(self, execute, sql, params, many, context):
        if "pg_is_in_recovery" not in sql:
            self.statements.append(sql)
        return execute(sql, params, many, context)

    def __exit__(self, *exc):
        return self._wrapper.__exit__(*exc)


def unit_page(client, unit: Unit):
    """(status, page text, statements run on the replica) of the unit's coverage page."""
    with OnReplica() as on_replica:
        response = client.get(reverse("register:unit", args=[unit.id]))
    return response.status_code, response.content.decode(), len(on_replica)


def test_the_standby_is_a_streaming_standby(standby):
    assert _replica_sql(standby, "SELECT pg_is_in_recovery()")[0] is True
    assert _replica_sql(standby, "SELECT status FROM pg_stat_wal_receiver")[0] == "streaming"
    assert dbroute.health() == (True, "")


def test_rollup_pages_read_the_replica_and_a_users_own_write_stays_visible(standby, place, client, settings):
    settings.REPLICA_MAX_LAG_SECONDS = 3600  # a paused standby still counts as usable here
    compound = place.compound_a
    status, page, queries = unit_page(client, compound)
    assert status == 200 and queries > 0 and 'data-testid="no-property"' not in page

    pause(standby)
    response = client.post(reverse("register:no_property", args=[compound.id]), {"value": "1"})
    assert response.status_code == 302 and dbroute.PIN_COOKIE in response.cookies
    assert Unit.objects.get(pk=compound.pk).no_property_management

    # Pinned: the user's own write is shown, read on the primary.
    status, page, queries = unit_page(client, compound)
    assert status == 200 and queries == 0 and 'data-testid="no-property"' in page

    # Unpinned (the pin has run out), the page reads the standby, which has not replayed the write yet.
    client.cookies.pop(dbroute.PIN_COOKIE)
    status, page, queries = unit_page(client, compound)
    assert status == 200 and queries > 0 and 'data-testid="no-property"' not in page

    resume(standby)
    caught_up(standby)
    status, page, queries = unit_page(client, compound)
    assert status == 200 and queries > 0 and 'data-testid="no-property"' in page


def test_a_lagging_standby_is_skipped(standby, place, client, settings):
    settings.REPLICA_MAX_LAG_SECONDS = 1
    pause(standby)
    Unit.objects.filter(pk=place.compound_a.pk).update(no_property_management=True)  # someone else's write
    assert dbroute.health() == (True, "")  # the primary's position noted; not behind for long yet
    time.sleep(1.6)
    ok, why = dbroute.health()
    assert not ok and "behind" in why
    status, page, queries = unit_page(client, place.compound_a)
    assert status == 200 and queries == 0 and 'data-testid="no-property"' in page

    resume(standby)
    caught_up(standby)
    time.sleep(0.1)
    assert dbroute.health() == (True, "")


def test_a_standby_that_is_down_is_skipped(standby, place, client):
    standby.close()
    standby.settings_dict = _standby_settings(port="1")  # nothing listens there
    status, page, queries = unit_page(client, place.compound_a)
    assert status == 200 and queries == 0 and "锦悦小区" in page
    ok, why = dbroute.health()
    assert not ok and why.startswith("unreachable")


def test_a_standby_failing_during_a_request_is_retried_on_the_primary(standby, place, client, settings):
    settings.REPLICA_CHECK_SECONDS = 60
    dbroute.health()  # checked and found usable …
    assert dbroute._health["ok"]
    standby.close()
    standby.settings_dict = _standby_settings(port="1")  # … then it went away
    response = client.get(reverse("register:unit", args=[place.compound_a.id]))
    assert response.status_code == 200 and "锦悦小区" in response.content.decode()
    assert dbroute.health()[0] is False  # marked down until the next check


def test_exports_and_dashboards_read_the_replica(standby, place, client):
    for url in (reverse("register:blind_spots", args=[place.community_a.id]), reverse("control:dashboard"),
                reverse("pushes:dashboard"), reverse("pushes:report"), reverse("control:export")):
        with OnReplica() as on_replica:
            response = client.get(url)
        assert response.status_code == 200, url
        assert on_replica, url
