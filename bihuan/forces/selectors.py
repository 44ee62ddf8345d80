"""Lookups the pages, the API and the situation board share: which posts are short now (on the roster or on
duty), which places are overdue, which tasks are late, and hours served per helper, team, home organisation and
unit. Each is one statement over a path range (set-based; no query per row)."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from bihuan.loops.models import Loop
from bihuan.register.models import next_path

from .models import TASK, Helper, Place, Post, Shift, Team, TeamMember


def _q(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def adapt(value: dt.datetime):
    """A datetime as the database compares it (UTC, naive on SQLite): for raw SQL parameters."""
    return connection.ops.adapt_datetimefield_value(value)


_adapt = adapt


def epoch(col: str) -> str:
    """Seconds since 1970 of a datetime column, as an integer, on either database (``%`` escaped for params)."""
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {col}) AS BIGINT)"
    return f"CAST(strftime('%%s', {col}) AS INTEGER)"


def posts_short_now_sql(now: dt.datetime, a: str = "p", *, on_duty: bool) -> tuple[str, list]:
    """WHERE for active posts (alias ``a``) staffed at this local hour with fewer people than required: rostered
    (a shift covering ``now``) or, with ``on_duty``, on duty (tapped on, not yet off, shift not over)."""
    hour = timezone.localtime(now).hour
    if on_duty:
        cond, cparams = "s.on_at IS NOT NULL AND s.off_at IS NULL AND s.ends_at > %s", [_adapt(now)]
    else:
        cond, cparams = "s.starts_at <= %s AND s.ends_at > %s", [_adapt(now), _adapt(now)]
    where = (f"{a}.active AND (({a}.end_hour > {a}.start_hour AND {a}.start_hour <= %s AND %s < {a}.end_hour) "
             f"OR ({a}.end_hour <= {a}.start_hour AND ({a}.start_hour <= %s OR %s < {a}.end_hour))) "
             f"AND (SELECT COUNT(*) FROM {_q(Shift)} s WHERE s.post_id = {a}.id AND {cond}) < {a}.required")
    return where, [hour, hour, hour, hour, *cparams]


def places_overdue_sql(now: dt.datetime, a: str = "p") -> tuple[str, list]:
    """WHERE for active places (alias ``a``) never disinfected, or not within their frequency (``Place.is_overdue``)."""
    return (f"{a}.active AND ({a}.last_done_at IS NULL OR {epoch(a + '.last_done_at')} + {a}.every_hours * 3600 < %s)",
            [int(now.timestamp())])


def _ids(table: str, where: str, params: list, root) -> list[int]:
    sql = f"SELECT p.id FROM {table} p WHERE p.path >= %s AND p.path < %s AND ({where})"
    with connection.cursor() as cur:
        cur.execute(sql, [root.path, next_path(root.path), *params])
        return [r[0] for r in cur.fetchall()]


def posts_short_now(root, now: dt.datetime | None = None, *, on_duty: bool) -> list[int]:
    where, params = posts_short_now_sql(now or timezone.now(), on_duty=on_duty)
    return _ids(_q(Post), where, params, root)


def places_overdue(root, now: dt.datetime | None = None) -> list[int]:
    where, params = places_overdue_sql(now or timezone.now())
    return _ids(_q(Place), where, params, root)


def tasks_overdue(root, now: dt.datetime | None = None) -> list[int]:
    return list(Loop.objects.overdue(now or timezone.now()).filter(root.subtree(), kind=TASK)
                .values_list("subject_id", flat=True))


BY = ("helper", "team", "home", "unit")


def hours_served(since: dt.datetime, until: dt.datetime, root, *, by: str) -> list[tuple[int, float]]:
    """Hours served (off − on; a shift still on counts up to ``until``) for shifts gone on duty in
    ``[since, until)``, per ``by``:

    - ``helper``: helpers serving in ``root``'s subtree;
    - ``team``: teams under ``root``, each with all its members' hours wherever they served (a helper in two
      teams counts in both);
    - ``home``: home organisations (a department, a township …) in ``root``'s subtree, their cadres' hours
      wherever they served (双报到);
    - ``unit``: the units of the posts served under ``root`` (the unit's own posts; ``roster.rollup`` folds
      them up the tree).

    One GROUP BY; ``[(id, hours)]`` with the most hours first."""
    if by not in BY:
        raise ValueError(by)
    sh, hp, po, tm, te = _q(Shift), _q(Helper), _q(Post), _q(TeamMember), _q(Team)
    off = f"CASE WHEN s.off_at IS NULL THEN %s ELSE {epoch('s.off_at')} END"
    joins = {
        "helper": (f" JOIN {hp} x ON x.id = s.helper_id", "x.id", "x.path"),
        "team": (f" JOIN {tm} m ON m.helper_id = s.helper_id JOIN {te} x ON x.id = m.team_id", "x.id", "x.path"),
        "home": (f" JOIN {hp} h ON h.id = s.helper_id", "h.home_unit_id", "h.home_path"),
        "unit": (f" JOIN {po} x ON x.id = s.post_id", "x.unit_id", "x.path"),
    }
    join, col, path = joins[by]
    sql = (f"SELECT {col}, SUM({off} - {epoch('s.on_at')}) FROM {sh} s{join} "
           f"WHERE s.on_at IS NOT NULL AND s.on_at >= %s AND s.on_at < %s AND {path} >= %s AND {path} < %s "
           f"AND {col} IS NOT NULL GROUP BY {col}")
    with connection.cursor() as cur:
        cur.execute(sql, [int(until.timestamp()), _adapt(since), _adapt(until), root.path, next_path(root.path)])
        rows = [(k, round(int(v or 0) / 3600, 2)) for k, v in cur.fetchall()]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def helper_hours(since: dt.datetime, until: dt.datetime, helper_ids: list[int]) -> dict[int, float]:
    """Hours served by these helpers wherever they served (one GROUP BY): a team page's members."""
    if not helper_ids:
        return {}
    off = f"CASE WHEN s.off_at IS NULL THEN %s ELSE {epoch('s.off_at')} END"
    marks = ", ".join(["%s"] * len(helper_ids))
    sql = (f"SELECT s.helper_id, SUM({off} - {epoch('s.on_at')}) FROM {_q(Shift)} s WHERE s.on_at IS NOT NULL "
           f"AND s.on_at >= %s AND s.on_at < %s AND s.helper_id IN ({marks}) GROUP BY s.helper_id")
    with connection.cursor() as cur:
        cur.execute(sql, [int(until.timestamp()), _adapt(since), _adapt(until), *helper_ids])
        return {k: round(int(v or 0) / 3600, 2) for k, v in cur.fetchall()}
