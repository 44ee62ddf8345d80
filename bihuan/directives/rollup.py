"""A directive's live state at all seven levels, in one statement: the reach rows grouped by their unit's path,
summed per subtree with a GROUP BY per level in the database (as for the register's coverage, the tree has a
fixed depth and fixed-width paths), joined to the units and their own receipts."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from bihuan.core.dbroute import read_connection
from bihuan.loops.models import Loop, overdue_sql
from bihuan.register.coverage import UnitRow
from bihuan.register.models import MAX_LEVEL, SEGMENT, Unit, next_path

from .models import RECEIPT, Directive, Reach


@dataclass(slots=True)
class DirectiveCounts:
    households: int = 0
    reached: int = 0
    unreachable: int = 0
    units: int = 0  # receipts in the subtree (the unit's own included)
    signed: int = 0
    relayed: int = 0
    reported: int = 0
    overdue: int = 0
    state: str = ""  # the unit's own receipt state ("" when it has none)
    own_overdue: bool = False
    by_method: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.households - self.reached - self.unreachable

    @property
    def percent(self) -> float:
        return round(100.0 * (self.reached + self.unreachable) / self.households, 1) if self.households else 100.0

    def as_dict(self) -> dict:
        return {"households": self.households, "reached": self.reached, "unreachable": self.unreachable,
                "pending": self.pending, "percent": self.percent, "units": self.units, "signed": self.signed,
                "relayed": self.relayed, "reported": self.reported, "overdue": self.overdue, "state": self.state,
                "own_overdue": self.own_overdue}


def own_counts(c: DirectiveCounts) -> DirectiveCounts:
    """A unit's own part of its subtree figures: its receipt alone (the command office's row, apart)."""
    if not c.state:
        return DirectiveCounts()
    signed, relayed, reported = _STATE_FLAGS.get(c.state, _NO_FLAGS)
    late = 1 if c.own_overdue else 0
    return DirectiveCounts(0, 0, 0, 1, signed, relayed, reported, late, c.state, c.own_overdue)


def behind(c: DirectiveCounts) -> tuple[int, int]:
    """How far behind a unit is on a directive: units past a deadline, then households still to reach."""
    return (c.overdue, c.pending)


def raw_counts(directive_id: int, now=None):
    """The rollup's database work as two plain reads: reach rows grouped by unit path and status, and every receipt's
    state (the benchmark's baseline; ``rollup`` sums both per subtree in the database and joins them to the
    units)."""
    q = connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(now or timezone.now())
    with read_connection().cursor() as cur:
        cur.execute(_REACH_SQL.format(reach=q(Reach._meta.db_table)), [directive_id])
        reach = cur.fetchall()
        cur.execute(f"SELECT owner_unit_id, state, {overdue_sql()} FROM {q(Loop._meta.db_table)} "
                    "WHERE kind = %s AND subject_id = %s", [now, now, RECEIPT, directive_id])
        loops = cur.fetchall()
    return reach, loops


# Grouped by path, not unit id: the reach_rollup index (directive, path, status) then answers it alone.
_REACH_SQL = "SELECT path, status, COUNT(*) FROM {reach} WHERE directive_id = %s GROUP BY path, status"
# A subtree's page (a township's, a community's) reads its own range of that index, not the whole directive's.
_SUBTREE_REACH_SQL = ("SELECT path, status, COUNT(*) FROM {reach} WHERE directive_id = %s AND path >= %s AND path < %s "
                      "GROUP BY path, status")

SIGNED = {"acknowledged", "in_progress", "reported", "closed"}
RELAYED = {"in_progress", "reported", "closed"}
REPORTED = {"reported", "closed"}


def _levels_sql() -> str:
    """The path lengths of the levels (one row each): every unit's path is a prefix of its descendants' paths."""
    return " UNION ALL ".join(f"SELECT {n * SEGMENT} AS w" for n in range(1, MAX_LEVEL + 1))


def _flags_sql(states: set[str]) -> str:
    return "CASE WHEN state IN (" + ", ".join(f"'{s}'" for s in sorted(states)) + ") THEN 1 ELSE 0 END"


def rollup(directive: Directive, root: Unit | None = None) -> tuple[list[UnitRow], dict[int, DirectiveCounts]]:
    """Every unit of ``root``'s subtree (the directive's scope by default) with its figures, in path order. On
    PostgreSQL from ONE statement: the reach rows grouped by their unit's path (as ``raw_counts``), and the subtree sums of every
    unit computed in the database with a GROUP BY per level over those groups and over the receipts (paths are
    fixed-width, so a unit's subtree is the paths that start with its own), joined to the units with their own
    receipt. Python only makes the rows (no walk up the tree, one round trip): the rollup costs little more
    than reading the reach groups themselves."""
    root = root or directive.scope_unit
    if connection.vendor != "postgresql":
        return _rollup_walk(directive, root)
    q = connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    low, high = root.path, next_path(root.path)
    with connection.cursor() as cur:
        cur.execute(_ROLLUP_SQL.format(reach=q(Reach._meta.db_table), loop=q(Loop._meta.db_table),
                                       unit=q(Unit._meta.db_table), overdue=overdue_sql(), levels=_levels_sql(),
                                       signed=_flags_sql(SIGNED), relayed=_flags_sql(RELAYED),
                                       reported=_flags_sql(REPORTED)),
                    [directive.pk, low, high, now, now, RECEIPT, directive.pk, low, high, low, high])
        rows = cur.fetchall()
    units: list[UnitRow] = []
    totals: dict[int, DirectiveCounts] = {}
    add_unit = units.append
    for (unit_id, parent_id, level, path, name, kind, state, late, households, reached, unreachable, receipts,
         signed, relayed, reported, overdue) in rows:
        add_unit(UnitRow(unit_id, parent_id, level, path, name, kind))
        totals[unit_id] = DirectiveCounts(households or 0, reached or 0, unreachable or 0, receipts or 0,
                                          signed or 0, relayed or 0, reported or 0, overdue or 0, state or "",
                                          late == 1)
    return units, totals


# (signed, relayed, reported) as 0/1 per receipt state, looked up once per row instead of three set tests.
_STATE_FLAGS = {s: (int(s in SIGNED), int(s in RELAYED), int(s in REPORTED))
                for s in SIGNED | {"issued", "returned", "cancelled"}}
_NO_FLAGS = (0, 0, 0)


def _rollup_walk(directive: Directive, root: Unit) -> tuple[list[UnitRow], dict[int, DirectiveCounts]]:
    """SQLite: two queries — the units with their own receipt (one LEFT JOIN), the subtree's reach rows grouped by
    unit path and status — and one walk up the tree in Python (SQLite runs in the process: the walk costs what the
    subtree sums would cost in the database, whose planner joins unindexed groups by scanning them). The units
    come in path order; the walk needs nothing else."""
    q = connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with read_connection().cursor() as cur:
        cur.execute(
            f"SELECT u.id, u.parent_id, u.level, u.path, u.name, u.kind, l.state, {overdue_sql('l.')} "
            f"FROM {q(Unit._meta.db_table)} u LEFT JOIN {q(Loop._meta.db_table)} l "
            "ON l.owner_unit_id = u.id AND l.kind = %s AND l.subject_id = %s "
            "WHERE u.path >= %s AND u.path < %s ORDER BY u.path",
            [now, now, RECEIPT, directive.pk, root.path, next_path(root.path)])
        rows = cur.fetchall()
        cur.execute(_SUBTREE_REACH_SQL.format(reach=q(Reach._meta.db_table)),
                    [directive.pk, root.path, next_path(root.path)])
        reach = cur.fetchall()
    units: list[UnitRow] = []
    totals: dict[int, DirectiveCounts] = {}
    by_path: dict[str, DirectiveCounts] = {}
    add_unit = units.append
    for unit_id, parent_id, level, path, name, kind, state, overdue in rows:
        add_unit(UnitRow(unit_id, parent_id, level, path, name, kind))
        if state is None:
            c = DirectiveCounts()
        else:
            signed, relayed, reported = _STATE_FLAGS.get(state, _NO_FLAGS)
            late = 1 if overdue else 0
            c = DirectiveCounts(0, 0, 0, 1, signed, relayed, reported, late, state, late == 1)
        totals[unit_id] = by_path[path] = c
    get = totals.get
    for path, status, n in reach:
        c = by_path.get(path)
        if c is None:
            continue
        c.households += n
        if status == "reached":
            c.reached += n
        elif status == "unreachable":
            c.unreachable += n
    # Units come in path order, so in reverse every unit is finished (all its children added) before its parent.
    for u in reversed(units):
        p = get(u.parent_id)
        if p is None:
            continue
        c = totals[u.id]
        if not (c.households or c.units):
            continue
        p.households += c.households
        p.reached += c.reached
        p.unreachable += c.unreachable
        p.units += c.units
        p.signed += c.signed
        p.relayed += c.relayed
        p.reported += c.reported
        p.overdue += c.overdue
    return units, totals


# Integers cast to INTEGER so that their sums stay integers on PostgreSQL (a SUM of bigints is numeric).
_ROLLUP_SQL = """
WITH g AS (
  SELECT path, CAST(COUNT(*) AS INTEGER) AS h,
         CAST(SUM(CASE WHEN status = 'reached' THEN 1 ELSE 0 END) AS INTEGER) AS r,
         CAST(SUM(CASE WHEN status = 'unreachable' THEN 1 ELSE 0 END) AS INTEGER) AS x
  FROM {reach} WHERE directive_id = %s AND path >= %s AND path < %s GROUP BY path),
l AS (
  SELECT owner_unit_id, path, state, {overdue} AS late, {signed} AS s, {relayed} AS rl, {reported} AS rp
  FROM {loop} WHERE kind = %s AND subject_id = %s AND path >= %s AND path < %s),
lv AS ({levels}),
rg AS (
  SELECT substr(g.path, 1, lv.w) AS p, SUM(g.h) AS h, SUM(g.r) AS r, SUM(g.x) AS x
  FROM g JOIN lv ON length(g.path) >= lv.w GROUP BY substr(g.path, 1, lv.w)),
rl AS (
  SELECT substr(l.path, 1, lv.w) AS p, CAST(COUNT(*) AS INTEGER) AS n, SUM(l.s) AS s, SUM(l.rl) AS rl,
         SUM(l.rp) AS rp, SUM(l.late) AS late
  FROM l JOIN lv ON length(l.path) >= lv.w GROUP BY substr(l.path, 1, lv.w))
SELECT u.id, u.parent_id, u.level, u.path, u.name, u.kind, o.state, o.late, rg.h, rg.r, rg.x, rl.n, rl.s, rl.rl,
       rl.rp, rl.late
FROM {unit} u LEFT JOIN l o ON o.owner_unit_id = u.id LEFT JOIN rg ON rg.p = u.path LEFT JOIN rl ON rl.p = u.path
WHERE u.path >= %s AND u.path < %s ORDER BY u.path"""
