"""Shared helpers of the forces tests."""

from __future__ import annotations

import datetime as dt
import itertools

from django.utils import timezone

from bihuan.forces.actions import do_decide_report_in, do_report_in
from bihuan.forces.models import Helper

_seq = itertools.count(1)


def phone() -> str:
    return f"137{next(_seq):08d}"


def active_helper(unit, name: str = "李志愿", *, kind: str = "volunteer", **kw) -> Helper:
    """A helper who reported in to ``unit`` and was approved (by the system)."""
    helper, _ = do_report_in(unit, name=name, phone=kw.pop("phone", None) or phone(), kind=kind, **kw)
    return do_decide_report_in(helper, approve=True, acting_user=None)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time())) + dt.timedelta(hours=hour, minutes=minute)


def brute_force_week(monday: dt.date, posts, shifts, max_hours: int) -> dict[int, dict]:
    """Gaps and conflicts recounted hour by hour and pair by pair in Python, from plain tuples:
    posts ``(id, start_hour, end_hour, required)``, shifts ``(id, post_id, person, starts_at, ends_at)``."""
    lo = at(monday, 0)
    hi = lo + dt.timedelta(days=7)
    out = {p[0]: {"gap_hours": 0, "short_hours": 0, "overlaps": 0, "overhours": 0} for p in posts}
    by_post: dict[int, list] = {}
    for s in shifts:
        by_post.setdefault(s[1], []).append(s)
    for pid, sh, eh, req in posts:
        end = eh if eh > sh else eh + 24
        for d in range(7):
            for h in range(sh, end):
                a = lo + dt.timedelta(days=d, hours=h)
                b = a + dt.timedelta(hours=1)
                if a >= hi:
                    continue
                n = sum(1 for s in by_post.get(pid, []) if s[3] < b and s[4] > a)
                if n < req:
                    out[pid]["gap_hours"] += 1
                    out[pid]["short_hours"] += req - n
    week = [s for s in shifts if s[3] < hi and s[4] > lo]
    for s in week:
        earlier = [t for t in week if t[2] == s[2] and (t[3], t[0]) < (s[3], s[0])]
        if any(t[4] > s[3] for t in earlier):
            out[s[1]]["overlaps"] += 1
    days: dict[tuple, list] = {}
    for s in shifts:
        if lo <= s[3] < hi:
            days.setdefault((s[2], timezone.localtime(s[3]).date()), []).append(s)
    for group in days.values():
        if sum((s[4] - s[3]).total_seconds() for s in group) > max_hours * 3600:
            for s in group:
                out[s[1]]["overhours"] += 1
    return out
