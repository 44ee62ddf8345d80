"""``python -m bench rollup-directive``: every unit's state at all seven levels for a district-wide directive.

Sets up (untimed, set-based) a directive from the commander to every household with a realistic mix of
states: about 60 % of households reached (by phone, WeChat, visit or the resident's own link), 5 %
unreachable, the rest pending; of the receipts about 70 % signed, 45 % relayed, 20 % reported, and the
deadlines of some unsigned and unreported ones in the past (overdue).

Times ``directives.rollup.rollup(directive)`` for the whole district (best of 5 after a warm-up);
n = units rolled up. Baseline: ``rollup.raw_counts``, the raw GROUP BY of the reach rows by unit path and status
and the read of the receipts, which is the rollup's database work. The directive and its rows are deleted
afterwards.
"""

from __future__ import annotations

from bench.common import best_of, database, ensure_scale, report

TITLE = "bench:rollup-directive"


def run(scale: str) -> dict:
    from django.contrib.auth import get_user_model

    from bench.fanout import cleanup
    from bihuan.directives import rollup
    from bihuan.register.models import Unit

    ensure_scale(scale)
    cleanup(TITLE)
    commander = get_user_model().objects.get(username="commander")
    try:
        directive = set_up(commander)
        units, totals = rollup.rollup(directive)
        root = totals[directive.scope_unit_id]
        print(f"database: {database()}; units: {len(units):,}; district: {root.households:,} households, "
              f"{root.reached:,} reached, {root.unreachable:,} unreachable; receipts {root.units:,}, "
              f"signed {root.signed:,}, relayed {root.relayed:,}, reported {root.reported:,}, "
              f"overdue {root.overdue:,}")
        check(directive, totals)
        seconds = best_of(lambda: rollup.rollup(directive))
        baseline_seconds = best_of(lambda: rollup.raw_counts(directive.pk))
    finally:
        cleanup(TITLE)
    return report("rollup-directive", scale, Unit.objects.count(), seconds,
                  "rollup.raw_counts(): the raw GROUP BY of reach rows by unit path and status, and the receipts read",
                  baseline_seconds)


def set_up(commander):
    """Issue to the whole district, fan out, then mark states with a few set-based UPDATEs."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from bihuan.directives import fanout
    from bihuan.directives.actions import do_issue_directive
    from bihuan.directives.models import RECEIPT, Reach
    from bihuan.loops.models import Loop

    directive = do_issue_directive(acting_user=commander, title=TITLE, body="全区每户：请居民今日内确认收到。")
    fanout.run_fanout(directive)
    q = connection.ops.quote_name
    reach, loop = q(Reach._meta.db_table), q(Loop._meta.db_table)
    now = timezone.now()
    past = connection.ops.adapt_datetimefield_value(now - timedelta(hours=1))
    when = connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic(), connection.cursor() as cur:
        # Households: h % 100 < 60 reached (four methods), 60..64 unreachable, the rest pending.
        cur.execute(
            f"UPDATE {reach} SET status = 'reached', marked_at = %s, method = CASE household_id %% 4 "
            "WHEN 0 THEN 'phone' WHEN 1 THEN 'wechat' WHEN 2 THEN 'visit' ELSE 'self' END "
            "WHERE directive_id = %s AND household_id %% 100 < 60", [when, directive.pk])
        cur.execute(
            f"UPDATE {reach} SET status = 'unreachable', marked_at = %s, reason = '外出务工，电话未接' "
            "WHERE directive_id = %s AND household_id %% 100 >= 60 AND household_id %% 100 < 65",
            [when, directive.pk])
        # Receipts: by owner unit id % 20 — 0..3 reported, 4..8 relayed, 9..13 signed, 14..19 not signed.
        base = f"UPDATE {loop} SET %s WHERE kind = %%s AND subject_id = %%s AND owner_unit_id %%%% 20 %s"
        args = [RECEIPT, directive.pk]
        cur.execute(base % ("state = 'reported', acknowledged_at = %s, reported_at = %s", "< 4"),
                    [when, when, *args])
        cur.execute(base % ("state = 'in_progress', acknowledged_at = %s, started_at = %s",
                            "BETWEEN 4 AND 8"), [when, when, *args])
        cur.execute(base % ("state = 'acknowledged', acknowledged_at = %s", "BETWEEN 9 AND 13"), [when, *args])
        # Overdue: the unsigned ones of units 14..16 missed their deadline to sign; relayed ones of 4..5 to report.
        cur.execute(base % ("ack_due_at = %s", "BETWEEN 14 AND 16"), [past, *args])
        cur.execute(base % ("due_at = %s", "BETWEEN 4 AND 5"), [past, *args])
    if connection.vendor == "postgresql":  # as autovacuum would leave them: statistics and visibility map fresh
        with connection.cursor() as cur:
            cur.execute(f"VACUUM ANALYZE {reach}")
            cur.execute(f"VACUUM ANALYZE {loop}")
    return directive


def check(directive, totals) -> None:
    """The rollup at the district equals a count of the raw rows (a sanity check of the set-up)."""
    from bihuan.directives.models import RECEIPT, Reach, ReachStatus
    from bihuan.loops.models import Loop

    root = totals[directive.scope_unit_id]
    reaches = Reach.objects.filter(directive=directive)
    assert root.households == reaches.count()
    assert root.reached == reaches.filter(status=ReachStatus.REACHED).count()
    assert root.unreachable == reaches.filter(status=ReachStatus.UNREACHABLE).count()
    assert root.units == Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk).count()
