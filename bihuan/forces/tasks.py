"""The field force's worker task ``forces.shifts``: shifts whose start passed with nobody on duty.

At the start (and until ``MISSED_GRACE`` after it) the person is reminded once — a text to the helper's phone
(their inbox when they have a login), claimed with a conditional UPDATE so a second worker sends nothing. From
``MISSED_GRACE`` on, a missed-start loop (``MISSED_START``) opens for the post's unit, once per shift (the
engine's unique key), and its people are told at once; the engine reminds them once more and then tells the
level above. Going on duty closes the loop (``actions.do_tap_duty``). Idempotent; safe with any number of workers.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from bihuan.core.worker import task
from bihuan.loops import engine
from bihuan.register.models import Unit

from .models import MISSED_GRACE, MISSED_START, Helper, Post, Shift

LOOKBACK = dt.timedelta(hours=12)  # shifts that started longer ago than this are history, not alarms


def remind_starts(now: dt.datetime) -> int:
    from .actions import _text_helper

    due = Shift.objects.filter(starts_at__lte=now, starts_at__gt=now - MISSED_GRACE, on_at__isnull=True,
                               reminded_at__isnull=True, helper__isnull=False)
    sent = 0
    for shift in due.select_related("post", "helper").order_by("id")[:500]:
        with transaction.atomic():
            if not Shift.objects.filter(pk=shift.pk, reminded_at__isnull=True, on_at__isnull=True).update(
                    reminded_at=now):
                continue  # another worker took it, or they went on duty meanwhile
            _text_helper(shift.helper, key=f"forces.start:{shift.pk}",
                         body=f"您在「{shift.post.name}」的班次 {timezone.localtime(shift.starts_at):%H:%M} 已开始，"
                              "请到岗后点“上岗”。")
            sent += 1
    return sent


def escalate_missed(now: dt.datetime) -> int:
    """One ``open_many`` over the shifts missed since the grace period: set-based, skipped if opened before."""
    q = connection.ops.quote_name
    sh, po, un, hp = (q(m._meta.db_table) for m in (Shift, Post, Unit, Helper))
    adapt = connection.ops.adapt_datetimefield_value
    name = "COALESCE(h.name, '')"
    title = (f"'缺岗：' || p.name || ' ' || {name}" if connection.vendor == "sqlite"
             else f"CAST('缺岗：' || p.name || ' ' || {name} AS VARCHAR(200))")
    rows = (f"SELECT s.id AS subject_id, {title} AS title, u.id AS owner_unit_id, u.path AS owner_path, "
            f"u.level AS owner_level, u.id AS originator_unit_id, {engine.sql_time('NULL')} AS ack_due_at, "
            f"{engine.sql_time('NULL')} AS due_at FROM {sh} s JOIN {po} p ON p.id = s.post_id "
            f"JOIN {un} u ON u.id = p.unit_id LEFT JOIN {hp} h ON h.id = s.helper_id "
            "WHERE s.on_at IS NULL AND s.starts_at <= %s AND s.starts_at > %s AND s.ends_at > %s")
    return engine.open_many(MISSED_START, rows, [adapt(now - MISSED_GRACE), adapt(now - LOOKBACK), adapt(now)])


@task("forces.shifts")
def shifts_round(owner: str) -> int:
    now = timezone.now()
    return remind_starts(now) + escalate_missed(now)
