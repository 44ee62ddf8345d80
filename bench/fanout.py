"""``python -m bench fanout``: a directive from the district commander to every household of the district.

Times the real path — ``do_issue_directive`` (the directive row, one receipt loop per unit in scope with
its history row, the household count, the audit row) followed by ``fanout.run_fanout`` (the worker's
reach rows in household-id chunks, each committed with its cursor) — against the physical
limit: the raw ``INSERT … SELECT`` of the same reach rows into a fresh directive in one statement
(``fanout.insert_reaches`` without chunks). n = reach rows written. The notices the worker sends before the
reach rows (``fanout.notify_issued``) have their own benchmark, ``directive-notices``.

Each side runs ``REPEAT`` times, alternately, and the fastest run counts (machines here are noisy). Every
benchmark directive is deleted afterwards with its reach rows, receipts, history and audit rows (also
those a crashed earlier run left behind), so the database can be reused.
"""

from __future__ import annotations

import time

from bench.common import database, ensure_scale, report

TITLE = "bench:fanout"
REPEAT = 3


def run(scale: str) -> dict:
    from django.contrib.auth import get_user_model

    from bihuan.directives import fanout

    ensure_scale(scale)
    cleanup()
    commander = get_user_model().objects.get(username="commander")
    print(f"database: {database()}; chunk {fanout.chunk_size():,} households; inline limit {fanout.INLINE_LIMIT:,}")
    real, raw = [], []
    n = 0
    try:
        for i in range(REPEAT):
            seconds, n, parts = real_path(commander)
            real.append(seconds)
            print(f"run {i + 1}: real path {seconds:.3f} s ({parts}), {n:,} reach rows")
            cleanup()
            seconds, n_raw = raw_insert(commander)
            raw.append(seconds)
            print(f"run {i + 1}: raw INSERT … SELECT {seconds:.3f} s, {n_raw:,} reach rows")
            assert n_raw == n, (n_raw, n)
            cleanup()
    finally:
        cleanup()
    return report("fanout", scale, n, min(real), "one raw INSERT … SELECT of the same reach rows "
                  "(fanout.insert_reaches without chunks, in one transaction)", min(raw))


def real_path(commander) -> tuple[float, int, str]:
    """Issue to the whole district and run the worker's fan-out, as the issuing request and the worker do."""
    from bihuan.directives import fanout
    from bihuan.directives.actions import do_issue_directive
    from bihuan.directives.models import FanoutState, Reach

    t0 = time.perf_counter()
    directive = do_issue_directive(acting_user=commander, title=TITLE, body="全区每户：请居民今日内确认收到。")
    t1 = time.perf_counter()
    if directive.fanout_state != FanoutState.DONE:  # the worker's part (scopes above the inline limit)
        fanout.run_fanout(directive)
    t2 = time.perf_counter()
    directive.refresh_from_db()
    n = Reach.objects.filter(directive=directive).count()
    assert directive.fanout_state == FanoutState.DONE and directive.fanout_done == n == directive.fanout_total, (
        directive.fanout_state, directive.fanout_done, n, directive.fanout_total)
    return t2 - t0, n, f"issue {t1 - t0:.3f} s + worker fan-out {t2 - t1:.3f} s"


def raw_insert(commander) -> tuple[float, int]:
    from django.db import transaction
    from django.utils import timezone

    from bihuan.directives import fanout
    from bihuan.directives.models import Directive, FanoutState
    from bihuan.register.models import Unit

    district = Unit.objects.get(level=1)
    directive = Directive.objects.create(issuer_unit=district, issuer_user=commander, scope_unit=district,
                                         title=TITLE, body="baseline", issued_at=timezone.now(),
                                         fanout_state=FanoutState.DONE)
    paths = fanout.target_paths(directive)
    t0 = time.perf_counter()
    with transaction.atomic():
        n = fanout.insert_reaches(directive, paths)
    return time.perf_counter() - t0, n


def cleanup(title: str = TITLE) -> None:
    """Delete every directive titled ``title`` and what hangs on it (reach rows, receipts and their history,
    audit rows), with set-based statements."""
    from django.db import connection, transaction
    from django.db.models import CharField
    from django.db.models.functions import Cast

    from bihuan.core.models import AuditEntry
    from bihuan.directives.models import RECEIPT, Directive, Reach
    from bihuan.loops.models import Loop, LoopEvent
    from bihuan.notify.models import Message

    ids = list(Directive.objects.filter(title=title).values_list("id", flat=True))
    if not ids:
        return
    q = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(ids))
    reach_ids = Reach.objects.filter(directive_id__in=ids).annotate(text=Cast("id", CharField())).values("text")
    with transaction.atomic(), connection.cursor() as cur:
        if connection.vendor == "postgresql":  # the run's audit rows counted: a hash join, not a scan of the
            cur.execute(f"ANALYZE {q(AuditEntry._meta.db_table)}")  # reach rows for each of them
        # Residents' confirmations and grid workers' marks audit the reach row or the directive.
        AuditEntry.objects.filter(target_type="directives.reach", target_id__in=reach_ids).delete()
        loops = f"SELECT id FROM {q(Loop._meta.db_table)} WHERE kind = %s AND subject_id IN ({marks})"
        cur.execute(f"DELETE FROM {q(LoopEvent._meta.db_table)} WHERE loop_id IN ({loops})", [RECEIPT, *ids])
        cur.execute(f"DELETE FROM {q(Loop._meta.db_table)} WHERE kind = %s AND subject_id IN ({marks})",
                    [RECEIPT, *ids])
        cur.execute(f"DELETE FROM {q(Reach._meta.db_table)} WHERE directive_id IN ({marks})", ids)
        AuditEntry.objects.filter(target_type="directives.directive", target_id__in=[str(i) for i in ids]).delete()
        # The notices of the receiving units (with their inbox items).
        for i in ids:
            Message.objects.filter(idempotency_key__startswith=f"directive:{i}:").delete()
        Directive.objects.filter(id__in=ids).delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:  # the next run's plans should not see 330,000 dead rows as live
            cur.execute(f"VACUUM ANALYZE {q(Reach._meta.db_table)}")
