"""``python -m bench directive-notices``: the notices of a directive issued to the whole district.

Times ``fanout.notify_issued`` — what the worker does first with a new directive: tell the responsible people
of every receiving unit (inbox; email and SMS by their settings, which the benchmark database leaves off),
500 units per committed chunk with its cursor — against the physical limit: one raw ``INSERT … SELECT`` of
the same inbox rows (one per active staff account of a receiving unit) in one transaction. n = messages.

Each side runs ``REPEAT`` times, alternately, and the fastest run counts. The benchmark directives and their
messages are deleted afterwards (``bench.fanout.cleanup``), so the database can be reused.
"""

from __future__ import annotations

import time

from bench.common import database, ensure_scale, report
from bench.fanout import cleanup

TITLE = "bench:directive-notices"
REPEAT = 3


def run(scale: str) -> dict:
    from django.contrib.auth import get_user_model

    ensure_scale(scale)
    cleanup(TITLE)
    commander = get_user_model().objects.get(username="commander")
    print(f"database: {database()}")
    real, raw = [], []
    n = 0
    try:
        for i in range(REPEAT):
            directive = issued(commander)
            seconds, n = notices(directive)
            real.append(seconds)
            print(f"run {i + 1}: notify_issued {seconds:.3f} s, {n:,} messages")
            seconds, n_raw = raw_insert(directive)
            raw.append(seconds)
            print(f"run {i + 1}: raw INSERT … SELECT {seconds:.3f} s, {n_raw:,} messages")
            assert n_raw == n, (n_raw, n)
            cleanup(TITLE)
    finally:
        cleanup(TITLE)
    return report("directive-notices", scale, n, min(real), "one raw INSERT … SELECT of the same inbox rows "
                  "(one per active staff account of a receiving unit), in one transaction", min(raw))


def issued(commander):
    """A directive to the whole district, issued, its receipts open, nobody told yet (the worker's part)."""
    from bihuan.directives import fanout
    from bihuan.directives.actions import do_issue_directive

    limit = fanout.INLINE_LIMIT
    fanout.INLINE_LIMIT = 0  # whatever the scale: the notices are the worker's
    try:
        return do_issue_directive(acting_user=commander, title=TITLE, body="全区：请各单位即时签收。")
    finally:
        fanout.INLINE_LIMIT = limit


def notices(directive) -> tuple[float, int]:
    from bihuan.directives import fanout
    from bihuan.notify.models import Message

    t0 = time.perf_counter()
    fanout.notify_issued(directive)
    seconds = time.perf_counter() - t0
    return seconds, Message.objects.filter(idempotency_key__startswith=f"directive:{directive.pk}:").count()


def raw_insert(directive) -> tuple[float, int]:
    """The same inbox rows (keys of their own) in one statement: the limit the outbox is measured against."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from bihuan.directives.models import RECEIPT
    from bihuan.loops.models import Loop
    from bihuan.notify.models import Message
    from bihuan.register.models import Staff

    q = connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    overrides = {"channel": ("'inbox'", []), "user_id": ("s.user_id", []), "subject": ("%s", ["bench"]),
                 "body": ("%s", ["bench"]), "idempotency_key": ("%s || CAST(s.user_id AS VARCHAR(20))",
                                                                 [f"directive:{directive.pk}:raw:"]),
                 "created_at": ("%s", [now]), "next_attempt_at": ("%s", [now])}
    columns, exprs, params = [], [], []
    for f in Message._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(q(f.column))
        expr, values = overrides.get(f.attname, ("%s", [f.get_db_prep_save(f.get_default(), connection)]))
        exprs.append(expr)
        params += values
    user = q(get_user_model()._meta.db_table)
    sql = (f"INSERT INTO {q(Message._meta.db_table)} ({', '.join(columns)}) SELECT {', '.join(exprs)} "
           f"FROM {q(Staff._meta.db_table)} s JOIN {user} u ON u.id = s.user_id AND u.is_active "
           f"WHERE s.unit_id IN (SELECT owner_unit_id FROM {q(Loop._meta.db_table)} WHERE kind = %s AND subject_id = %s)")
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, [*params, RECEIPT, directive.pk])
        n = cur.rowcount
    return time.perf_counter() - t0, n
