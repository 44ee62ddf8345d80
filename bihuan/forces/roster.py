"""The week's roster, computed set-based: gaps (post hours with fewer people on the roster than required) and
conflicts (one person in two places at once; over ``MAX_HOURS_PER_DAY`` on one day), per post, then rolled up
through the levels like household blind spots (one GROUP BY-shaped pass at the post level plus
``register.coverage.fold_up``).

Gaps are a sweep over events per post, in SQL: every shift adds +1 person at its start and −1 at its end; every
day's staffed window adds +required at its start and −required at its end (an end at or before the start runs
past midnight; windows are those starting in the week, cut at its end). A running sum per post (a window
function) gives, between consecutive events, the people on the roster and the people required; a segment with
fewer people than required is short. ``gap_hours`` is the time a post is short, ``short_hours`` the missing
person-hours. Times are epoch seconds; the week runs from local Monday 00:00 for seven days.

Conflicts: a shift overlaps an earlier shift of the same person (helper or staff member) when it starts before
the latest end among that person's shifts that start before it (a window MAX per person); a shift is over hours
when its person's shifts starting that local day add up to more than ``MAX_HOURS_PER_DAY``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, fields

from django.db import connection
from django.utils import timezone

from bihuan.register.coverage import fold_up, load_units
from bihuan.register.models import next_path

from .models import MAX_HOURS_PER_DAY, Helper, Place, Post, Shift

WEEK = 7 * 86400


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def week_bounds(monday: dt.date) -> tuple[dt.datetime, dt.datetime]:
    lo = timezone.make_aware(dt.datetime.combine(monday, dt.time()))
    return lo, lo + dt.timedelta(days=7)


def _q(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def epoch(col: str) -> str:
    """Seconds since 1970 of a datetime column, as an integer, on either database."""
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {col}) AS BIGINT)"
    return f"CAST(strftime('%%s', {col}) AS INTEGER)"


def _range(alias: str, path: str | None) -> tuple[str, list]:
    if path is None:
        return "", []
    return f" AND {alias}.path >= %s AND {alias}.path < %s", [path, next_path(path)]


def _adapt(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


def gap_sql(monday: dt.date, path: str | None = None) -> tuple[str, list]:
    """One statement: ``(post_id, gap_seconds, short_person_seconds)`` for every active post under ``path`` that is
    short at some time of the week (posts without a gap are absent)."""
    lo, hi = week_bounds(monday)
    ws = int(lo.timestamp())
    we = ws + WEEK
    sh, po = _q(Shift), _q(Post)
    s_in, s_params = _range("s", path)
    p_in, p_params = _range("p", path)
    start, end = epoch("s.starts_at"), epoch("s.ends_at")
    win_start = "%s + d.d * 86400 + p.start_hour * 3600"
    win_end = "%s + d.d * 86400 + (p.end_hour + CASE WHEN p.end_hour <= p.start_hour THEN 24 ELSE 0 END) * 3600"
    sql = (
        "WITH RECURSIVE d(d) AS (SELECT 0 UNION ALL SELECT d + 1 FROM d WHERE d < 6), "
        "ev(post_id, t, dc, dr) AS ("
        f" SELECT s.post_id, CASE WHEN {start} < %s THEN %s ELSE {start} END, 1, 0 FROM {sh} s JOIN {po} p ON p.id = s.post_id"
        f"  WHERE p.active AND s.starts_at < %s AND s.ends_at > %s{s_in}"
        f" UNION ALL SELECT s.post_id, CASE WHEN {end} > %s THEN %s ELSE {end} END, -1, 0 FROM {sh} s JOIN {po} p ON p.id = s.post_id"
        f"  WHERE p.active AND s.starts_at < %s AND s.ends_at > %s{s_in}"
        f" UNION ALL SELECT p.id, {win_start}, 0, p.required FROM {po} p CROSS JOIN d WHERE p.active{p_in}"
        f" UNION ALL SELECT p.id, CASE WHEN {win_end} > %s THEN %s ELSE {win_end} END, 0, -p.required"
        f"  FROM {po} p CROSS JOIN d WHERE p.active{p_in}), "
        "agg AS (SELECT post_id, t, SUM(dc) AS dc, SUM(dr) AS dr FROM ev GROUP BY post_id, t), "
        "run AS (SELECT post_id, t, SUM(dc) OVER w AS cov, SUM(dr) OVER w AS req, "
        "LEAD(t) OVER (PARTITION BY post_id ORDER BY t) AS nxt FROM agg "
        "WINDOW w AS (PARTITION BY post_id ORDER BY t ROWS UNBOUNDED PRECEDING)) "
        "SELECT post_id, SUM(nxt - t), SUM((req - cov) * (nxt - t)) FROM run "
        "WHERE nxt IS NOT NULL AND cov < req GROUP BY post_id"
    )
    params = [ws, ws, _adapt(hi), _adapt(lo), *s_params,
              we, we, _adapt(hi), _adapt(lo), *s_params,
              ws, *p_params,
              ws, we, we, ws, *p_params]
    return sql, params


def _person() -> str:
    return "COALESCE(s.helper_id, -s.staff_id)"


def overlap_sql(monday: dt.date, path: str | None = None) -> tuple[str, list]:
    """``(post_id, shifts)``: shifts of the week that start while the same person is on an earlier shift. Every
    person's shifts of the week are read (a clash with a post outside ``path`` is a clash too); the count is of
    the posts under ``path``."""
    lo, hi = week_bounds(monday)
    sh = _q(Shift)
    where, params = _range("o", path)
    sql = (
        f"SELECT o.post_id, COUNT(*) FROM (SELECT s.post_id, s.path, s.starts_at, MAX(s.ends_at) OVER ("
        f"PARTITION BY {_person()} ORDER BY s.starts_at, s.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
        f"AS prev_end FROM {sh} s WHERE s.starts_at < %s AND s.ends_at > %s) o "
        f"WHERE o.prev_end > o.starts_at{where} GROUP BY o.post_id"
    )
    return sql, [_adapt(hi), _adapt(lo), *params]


def overhours_sql(monday: dt.date, path: str | None = None) -> tuple[str, list]:
    """``(post_id, shifts)``: shifts on a local day (the day they start) on which their person is rostered for more
    than ``MAX_HOURS_PER_DAY`` hours in all."""
    lo, hi = week_bounds(monday)
    ws = int(lo.timestamp())
    sh = _q(Shift)
    where, params = _range("x", path)
    day = f"({epoch('s.starts_at')} - %s) / 86400"
    sql = (
        f"WITH x AS (SELECT s.post_id, s.path, {_person()} AS person, {day} AS day, "
        f"{epoch('s.ends_at')} - {epoch('s.starts_at')} AS dur FROM {sh} s WHERE s.starts_at >= %s AND s.starts_at < %s), "
        "o AS (SELECT person, day FROM x GROUP BY person, day HAVING SUM(dur) > %s) "
        f"SELECT x.post_id, COUNT(*) FROM x JOIN o ON o.person = x.person AND o.day = x.day WHERE 1 = 1{where} "
        "GROUP BY x.post_id"
    )
    return sql, [ws, _adapt(lo), _adapt(hi), MAX_HOURS_PER_DAY * 3600, *params]


def raw_week(monday: dt.date, path: str | None = None) -> tuple[list, list, list]:
    """The three statements, as they are: also the benchmark's baseline."""
    out = []
    with connection.cursor() as cur:
        for build in (gap_sql, overlap_sql, overhours_sql):
            sql, params = build(monday, path)
            cur.execute(sql, params)
            out.append(cur.fetchall())
    return out[0], out[1], out[2]


@dataclass
class PostWeek:
    gap_seconds: int = 0
    short_seconds: int = 0
    overlaps: int = 0
    overhours: int = 0


def week_by_post(monday: dt.date, path: str | None = None) -> dict[int, PostWeek]:
    gaps, overlaps, over = raw_week(monday, path)
    out: dict[int, PostWeek] = defaultdict(PostWeek)
    for post_id, gap, short in gaps:
        out[post_id].gap_seconds, out[post_id].short_seconds = int(gap), int(short)
    for post_id, n in overlaps:
        out[post_id].overlaps = int(n)
    for post_id, n in over:
        out[post_id].overhours = int(n)
    return dict(out)


@dataclass
class Figures:
    """What a unit's subtree holds of the field force, this week and now."""

    helpers: int = 0
    pending: int = 0
    active: int = 0
    posts: int = 0
    posts_with_gaps: int = 0
    gap_hours: float = 0.0
    short_hours: float = 0.0
    overlaps: int = 0
    overhours: int = 0
    required_now: int = 0
    on_duty_now: int = 0
    hours_served: float = 0.0  # this week, from the taps
    places: int = 0
    places_overdue: int = 0
    places_done_today: int = 0
    tasks_open: int = 0
    tasks_overdue: int = 0

    @property
    def blind_spots(self) -> int:
        """Posts short on the roster this week and places overdue for disinfection (盲区)."""
        return self.posts_with_gaps + self.places_overdue

    @property
    def conflicts(self) -> int:
        return self.overlaps + self.overhours

    def add(self, other: Figures) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["gap_hours"], d["short_hours"], d["hours_served"] = (round(d["gap_hours"], 2), round(d["short_hours"], 2),
                                                              round(d["hours_served"], 2))
        return d | {"blind_spots": self.blind_spots, "conflicts": self.conflicts}


def roster_rollup(monday: dt.date, root=None) -> tuple[list, dict[int, Figures]]:
    """Gaps and conflicts of the week for ``root`` and every unit below it (the district if None): the three
    statements at the post level, folded up the tree. (What the benchmark times.)"""
    path = root.path if root is not None else None
    units = load_units(path)
    totals = {u.id: Figures() for u in units}
    posts = dict(Post.objects.filter(active=True, **({"path__gte": path, "path__lt": next_path(path)} if path else {}))
                 .values_list("id", "unit_id"))
    for unit_id in posts.values():
        if unit_id in totals:
            totals[unit_id].posts += 1
    for post_id, w in week_by_post(monday, path).items():
        f = totals.get(posts.get(post_id))
        if f is None:
            continue
        f.gap_hours += w.gap_seconds / 3600
        f.short_hours += w.short_seconds / 3600
        f.posts_with_gaps += 1 if w.gap_seconds else 0
        f.overlaps += w.overlaps
        f.overhours += w.overhours
    fold_up(units, totals, Figures.add)
    return units, totals


def rollup(root=None, *, now: dt.datetime | None = None) -> tuple[list, dict[int, Figures]]:
    """Everything the forces pages show per unit, live: helpers, this week's roster, who is on duty now, hours
    served, disinfection coverage, tasks. One GROUP BY per kind of row at the unit level, one fold up the tree."""
    from django.db.models import Count, Q

    from bihuan.loops.models import OPEN_STATES, Loop, overdue_q

    from .models import TASK, HelperStatus

    now = now or timezone.now()
    today = timezone.localdate(now)
    monday = monday_of(today)
    path = root.path if root is not None else None
    sub = {"path__gte": path, "path__lt": next_path(path)} if path else {}
    units = load_units(path)
    own = {u.id: Figures() for u in units}
    posts = {pid: (uid, sh, eh, req) for pid, uid, sh, eh, req in Post.objects.filter(active=True, **sub)
             .values_list("id", "unit_id", "start_hour", "end_hour", "required")}
    for post_id, w in week_by_post(monday, path).items():
        if post_id not in posts or posts[post_id][0] not in own:
            continue
        f = own[posts[post_id][0]]
        f.gap_hours += w.gap_seconds / 3600
        f.short_hours += w.short_seconds / 3600
        f.posts_with_gaps += 1 if w.gap_seconds else 0
        f.overlaps += w.overlaps
        f.overhours += w.overhours
    hour = timezone.localtime(now).hour
    for uid, sh, eh, req in posts.values():
        f = own.get(uid)
        if f is None:
            continue
        f.posts += 1
        staffed = (sh <= hour < eh) if eh > sh else (hour >= sh or hour < eh)
        f.required_now += req if staffed else 0
    for unit_id, status, n in Helper.objects.filter(**sub).values_list("unit_id", "status").annotate(n=Count("id")) \
            .values_list("unit_id", "status", "n"):
        if unit_id in own:
            own[unit_id].helpers += n
            own[unit_id].pending += n if status == HelperStatus.PENDING else 0
            own[unit_id].active += n if status == HelperStatus.ACTIVE else 0
    lo, _hi = week_bounds(monday)
    shifts = Shift.objects.filter(**sub).values("post__unit_id")
    for row in shifts.annotate(
            on_now=Count("id", filter=Q(on_at__isnull=False, off_at__isnull=True, ends_at__gt=now)),
    ).values_list("post__unit_id", "on_now"):
        if row[0] in own:
            own[row[0]].on_duty_now += row[1]
    for unit_id, seconds in served_seconds(lo, now, path, by="unit"):
        if unit_id in own:
            own[unit_id].hours_served += seconds / 3600
    day_start = timezone.make_aware(dt.datetime.combine(today, dt.time()))
    for unit_id, n, overdue, done in _place_counts(now, day_start, path):
        if unit_id in own:
            own[unit_id].places += n
            own[unit_id].places_overdue += overdue
            own[unit_id].places_done_today += done
    loops = Loop.objects.filter(kind=TASK, state__in=OPEN_STATES, **sub).values("owner_unit_id")
    for unit_id, n, late in loops.annotate(n=Count("id"), late=Count("id", filter=overdue_q(now))).values_list(
            "owner_unit_id", "n", "late"):
        if unit_id in own:
            own[unit_id].tasks_open += n
            own[unit_id].tasks_overdue += late
    fold_up(units, own, Figures.add)
    return units, own


def _place_counts(now: dt.datetime, day_start: dt.datetime, path: str | None) -> list[tuple]:
    """``(unit_id, places, overdue, done today)`` per unit: one GROUP BY over the active places."""
    pl = _q(Place)
    where, params = _range("p", path)
    n = int(now.timestamp())
    sql = (f"SELECT p.unit_id, COUNT(*), SUM(CASE WHEN p.last_done_at IS NULL OR "
           f"{epoch('p.last_done_at')} + p.every_hours * 3600 < %s THEN 1 ELSE 0 END), "
           "SUM(CASE WHEN p.last_done_at >= %s THEN 1 ELSE 0 END) "
           f"FROM {pl} p WHERE p.active{where} GROUP BY p.unit_id")
    with connection.cursor() as cur:
        cur.execute(sql, [n, _adapt(day_start), *params])
        return cur.fetchall()


def overdue_places(root, now: dt.datetime | None = None, limit: int = 200) -> list[Place]:
    """The overdue places under ``root`` themselves (never done, or not within their frequency), oldest first."""
    now = now or timezone.now()
    rows = Place.objects.filter(root.subtree(), active=True).select_related("unit").order_by("last_done_at", "id")
    out = []
    for place in rows.iterator(chunk_size=500):
        if place.is_overdue(now):
            out.append(place)
            if len(out) >= limit:
                break
    return out


def served_seconds(since: dt.datetime, until: dt.datetime, path: str | None = None, *, by: str = "helper"):
    """Seconds served (off − on, a shift still on counts up to ``until``) per helper, unit (of the post) or home
    organisation (``home``: the helper's home unit), for shifts gone on duty in ``[since, until)``."""
    sh, hp = _q(Shift), _q(Helper)
    where, params = _range("s", path)
    col = {"helper": "s.helper_id", "unit": "p.unit_id", "home": "h.home_unit_id"}[by]
    off = f"CASE WHEN s.off_at IS NULL THEN %s ELSE {epoch('s.off_at')} END"
    join = f" JOIN {_q(Post)} p ON p.id = s.post_id" if by == "unit" else f" JOIN {hp} h ON h.id = s.helper_id"
    sql = (f"SELECT {col}, SUM({off} - {epoch('s.on_at')}) FROM {sh} s{join} "
           f"WHERE s.on_at IS NOT NULL AND s.on_at >= %s AND s.on_at < %s{where} GROUP BY {col}")
    with connection.cursor() as cur:
        cur.execute(sql, [int(until.timestamp()), _adapt(since), _adapt(until), *params])
        return [(k, int(v or 0)) for k, v in cur.fetchall() if k is not None]


def post_week_grid(post: Post, monday: dt.date) -> dict:
    """One post's week for its roster page: per day and staffed hour, the people on the roster and whether it is
    short (the same rule as ``gap_sql``, hour by hour), and the week's shifts."""
    lo, hi = week_bounds(monday)
    shifts = list(Shift.objects.filter(post=post, starts_at__lt=hi, ends_at__gt=lo)
                  .select_related("helper", "staff").order_by("starts_at", "id"))
    days = []
    for d in range(7):
        day = monday + dt.timedelta(days=d)
        base = lo + dt.timedelta(days=d)
        end = post.end_hour if post.end_hour > post.start_hour else post.end_hour + 24
        hours = []
        for h in range(post.start_hour, end):
            a, b = base + dt.timedelta(hours=h), base + dt.timedelta(hours=h + 1)
            if a >= hi:
                break
            n = sum(1 for s in shifts if s.starts_at < b and s.ends_at > a)
            hours.append({"hour": h % 24, "n": n, "short": n < post.required})
        days.append({"date": day, "hours": hours, "shifts": [s for s in shifts
                                                              if timezone.localtime(s.starts_at).date() == day],
                     "short": sum(1 for x in hours if x["short"])})
    return {"days": days, "shifts": shifts, "short_hours": sum(d["short"] for d in days)}


def seconds_served_by(helper: Helper, *, until: dt.datetime | None = None, since: dt.datetime | None = None) -> int:
    """One helper's seconds on duty (off − on; a shift still on counts up to ``until``)."""
    until = until or timezone.now()
    qs = Shift.objects.filter(helper=helper, on_at__isnull=False, on_at__lt=until)
    if since is not None:
        qs = qs.filter(on_at__gte=since)
    return int(sum(((off or until) - on).total_seconds() for on, off in qs.values_list("on_at", "off_at")))
