"""``python -m bench situation``: the district commander's first page — the situation board — at the given scale.

Set-up (once): the district of the scale and its demo day (``bihuan.demo.day``: three directives, two pushed lists,
people under control with check-ins, tests and service requests, blind spots), reused on later runs.

Times ``GET /`` with Django's test client, logged in as the district commander (the board of the whole district:
every provider's figures, grouped by township, the townships' responsible people, the commander's own loops);
20 renders after a warm-up, ``seconds`` is the median. DEBUG is off. n = loops in the district.

Baseline: the same figures as hand-written SQL through a plain cursor — one ``GROUP BY`` per figure over the
township prefix of the path (overdue receipts and verifications, waiting transfers, open alerts, missed check-ins,
services older than a day, households without a grid, grids without a responsible person; posts short on the
roster or on duty now, tasks overdue, disinfection places overdue) — median of 20.
Acceptance: the page renders in under 300 ms, at most twice the baseline.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from bench.common import SEED, database, ensure_scale, report

RENDERS = 20
LIMIT = 0.3  # seconds


def ensure_day(out=print) -> None:
    from bihuan.directives.models import Directive

    if Directive.objects.exists():
        out("reusing the demo day already in the database")
        return
    from bihuan.demo.day import build_day

    out("building the demo day (once) …")
    build_day(SEED, out=out)


def raw_figures(path: str, upper: str, row_len: int, now) -> list[dict]:
    """The board's figures as plain SQL (the physical limit of the same work)."""
    from django.db import connection

    from bihuan.core.roles import RESPONSIBLE_ROLES
    from bihuan.loops.models import OPEN_STATES

    q = connection.ops.quote_name
    loop, unit, hh, staff = q("loops_loop"), q("register_unit"), q("register_household"), q("register_staff")
    open_in = ", ".join(f"'{s}'" for s in OPEN_STATES)
    overdue = (f"l.state IN ({open_in}) AND ((l.state = 'issued' AND l.ack_due_at < %s) OR l.due_at < %s)")
    key = f"SUBSTR(l.path, 1, {row_len})"
    roles = ", ".join(f"'{r}'" for r in sorted(RESPONSIBLE_ROLES))
    statements = [
        (f"SELECT {key}, COUNT(*) FROM {loop} l WHERE l.path >= %s AND l.path < %s AND l.kind = "
         f"'directive.receipt' AND {overdue} GROUP BY 1", [path, upper, now, now]),
        (f"SELECT {key}, COUNT(*) FROM {loop} l WHERE l.path >= %s AND l.path < %s AND l.kind = "
         f"'push.verification' AND {overdue} GROUP BY 1", [path, upper, now, now]),
        (f"SELECT {key}, COUNT(*) FROM {loop} l WHERE l.path >= %s AND l.path < %s AND l.kind = 'push.transfer' "
         f"AND l.state IN ({open_in}) GROUP BY 1", [path, upper]),
        (f"SELECT {key}, COUNT(*) FROM {loop} l WHERE l.path >= %s AND l.path < %s AND l.kind IN ('control.alert', "
         f"'control.test_positive', 'control.test_missed') AND l.state IN ({open_in}) GROUP BY 1", [path, upper]),
        (f"SELECT {key}, COUNT(*) FROM {loop} l WHERE l.path >= %s AND l.path < %s AND l.kind = "
         f"'control.missed_checkin' AND l.state IN ({open_in}) GROUP BY 1", [path, upper]),
        (f"SELECT {key}, COUNT(*) FROM {loop} l WHERE l.path >= %s AND l.path < %s AND l.kind = 'control.service' "
         f"AND l.state IN ({open_in}) AND l.created_at < %s GROUP BY 1", [path, upper, now - timedelta(hours=24)]),
        (f"SELECT SUBSTR(u.path, 1, {row_len}), COUNT(*) FROM {unit} u JOIN {hh} h ON h.unit_id = u.id "
         f"WHERE u.path >= %s AND u.path < %s AND u.level < 6 GROUP BY 1", [path, upper]),
        (f"SELECT SUBSTR(u.path, 1, {row_len}), COUNT(*) FROM {unit} u WHERE u.path >= %s AND u.path < %s "
         f"AND u.level = 6 AND NOT EXISTS (SELECT 1 FROM {staff} s WHERE s.unit_id = u.id AND s.deactivated_at IS NULL "
         f"AND s.role IN ({roles})) GROUP BY 1", [path, upper]),
    ]
    # the field force's figures (bihuan/forces/today.py): posts short on the roster / on duty this hour, tasks
    # overdue, places overdue
    from django.utils import timezone

    post, shift, place = q("forces_post"), q("forces_shift"), q("forces_place")
    hour = timezone.localtime(now).hour
    t = connection.ops.adapt_datetimefield_value(now)
    pkey = f"SUBSTR(p.path, 1, {row_len})"
    staffed = ("((p.end_hour > p.start_hour AND p.start_hour <= %s AND %s < p.end_hour) "
               "OR (p.end_hour <= p.start_hour AND (p.start_hour <= %s OR %s < p.end_hour)))")
    for cond, cparams in (("s.starts_at <= %s AND s.ends_at > %s", [t, t]),
                          ("s.on_at IS NOT NULL AND s.off_at IS NULL AND s.ends_at > %s", [t])):
        statements.append((f"SELECT {pkey}, COUNT(*) FROM {post} p WHERE p.path >= %s AND p.path < %s AND p.active "
                           f"AND {staffed} AND (SELECT COUNT(*) FROM {shift} s WHERE s.post_id = p.id AND {cond}) "
                           "< p.required GROUP BY 1", [path, upper, hour, hour, hour, hour, *cparams]))
    statements.append((f"SELECT {key}, COUNT(*) FROM {loop} l WHERE l.path >= %s AND l.path < %s AND l.kind = "
                       f"'forces.task' AND {overdue} GROUP BY 1", [path, upper, t, t]))
    done = ("CAST(EXTRACT(EPOCH FROM p.last_done_at) AS BIGINT)" if connection.vendor == "postgresql"
            else "CAST(strftime('%%s', p.last_done_at) AS INTEGER)")
    statements.append((f"SELECT {pkey}, COUNT(*) FROM {place} p WHERE p.path >= %s AND p.path < %s AND p.active "
                       f"AND (p.last_done_at IS NULL OR {done} + p.every_hours * 3600 < %s) GROUP BY 1",
                       [path, upper, int(now.timestamp())]))
    out = []
    with connection.cursor() as cur:
        for sql, params in statements:
            cur.execute(sql, params)
            out.append(dict(cur.fetchall()))
    return out


def run(scale: str) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from bihuan.loops.models import Loop
    from bihuan.register.models import Unit, next_path
    from bihuan.today.board import area_of, build, row_units

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["*"]
    ensure_scale(scale)
    ensure_day()
    district = Unit.objects.get(level=1)
    commander = get_user_model().objects.filter(staff__unit=district).order_by("id").first()
    client = Client()
    client.force_login(commander)
    rows = row_units(district)
    area = area_of(district, rows)
    # the board and the raw SQL agree
    board = build(district)
    raw = raw_figures(district.path, next_path(district.path), area.row_len, board.at)
    assert [f.by_row for f in board.figures] == raw, "the board's figures differ from the raw SQL"

    def page():
        response = client.get("/")
        assert response.status_code == 200, response.status_code
        return response

    page()
    times = []
    for _ in range(RENDERS):
        t = time.perf_counter()
        page()
        times.append(time.perf_counter() - t)
    seconds = statistics.median(times)
    base = []
    for _ in range(RENDERS):
        t = time.perf_counter()
        raw_figures(district.path, next_path(district.path), area.row_len, timezone.now())
        base.append(time.perf_counter() - t)
    baseline = statistics.median(base)
    n = Loop.objects.count()
    print(f"{database()}: the commander's board at {scale}: {seconds * 1000:.1f} ms (limit {LIMIT * 1000:.0f} ms), "
          f"raw SQL of the same figures {baseline * 1000:.1f} ms; figures "
          + ", ".join(f"{f.key}={f.count}" for f in board.figures))
    return report("situation", scale, n, seconds, "raw SQL of the same figures, grouped by township", baseline)
