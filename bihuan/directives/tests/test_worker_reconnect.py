"""A worker whose database connection broke ends its own leases and claims the rows again at once, instead of
waiting out its 5-minute lease (core.worker). The real restart is tests/system/test_database_restart.py."""

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from bihuan.core import worker
from bihuan.directives import fanout
from bihuan.directives.actions import do_issue_directive
from bihuan.directives.models import Directive, FanoutState
from bihuan.testing import build_base_district


@pytest.mark.django_db(transaction=True)
def test_after_a_lost_connection_the_worker_claims_its_own_rows_again_at_once(monkeypatch):
    d = build_base_district()
    monkeypatch.setattr(fanout, "INLINE_LIMIT", 0)
    directive = do_issue_directive(acting_user=d.users["commander"], title="断线", body="请确认收到。")
    assert directive.fanout_state == FanoutState.PENDING
    todo = Directive.objects.exclude(fanout_state=FanoutState.DONE)
    claimed = []

    def task(owner):
        rows = worker.claim(todo, owner=owner, limit=1, lease_seconds=300)
        claimed.append([r.pk for r in rows])
        if len(claimed) == 1:  # the database goes away in the middle of the work
            connection.close()
            raise OperationalError("server closed the connection unexpectedly")
        return len(rows)

    monkeypatch.setattr(worker, "TASKS", {"fanout": task})
    assert worker.run_tick("host:1") == {"fanout": -1}
    held = Directive.objects.get(pk=directive.pk)
    assert held.locked_by == "host:1" and held.locked_until > timezone.now()  # a 5-minute lease, still held
    assert worker.run_tick("host:1") == {"fanout": 1}  # taken again at the next tick, not in 5 minutes
    assert claimed == [[directive.pk], [directive.pk]]
    # Another worker's leases are not touched.
    assert worker.release_own_leases("host:2") == 0
    assert Directive.objects.get(pk=directive.pk).locked_by == "host:1"


@pytest.mark.django_db(transaction=True)
def test_an_error_of_the_task_itself_keeps_the_lease(monkeypatch):
    d = build_base_district()
    monkeypatch.setattr(fanout, "INLINE_LIMIT", 0)
    directive = do_issue_directive(acting_user=d.users["commander"], title="出错", body="请确认收到。")
    todo = Directive.objects.exclude(fanout_state=FanoutState.DONE)
    claimed = []

    def task(owner):
        claimed.append([r.pk for r in worker.claim(todo, owner=owner, limit=1, lease_seconds=300)])
        raise RuntimeError("a bug")

    monkeypatch.setattr(worker, "TASKS", {"fanout": task})
    assert worker.run_tick("host:1") == {"fanout": -1}
    assert worker.run_tick("host:1") == {"fanout": -1}
    assert claimed == [[directive.pk], []]  # retried only when the lease runs out
