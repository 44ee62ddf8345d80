"""A directive's live state at all seven levels: two queries (the units of the subtree with their own receipt;
the reach rows grouped by their unit's path and status) and one walk up the unit tree, as for the register's
coverage."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from bihuan.core.dbroute import read_connection
from bihuan.loops.models import Loop, overdue_sql
from bihuan.register.coverage import UnitRow
from bihuan.register.models import Unit, next_path

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
    state (the benchmark's baseline; ``rollup`` reads the receipts joined to the units instead)."""
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

SIGNED = {"acknowledged", "in_progress", "reported", "closed"}
RELAYED = {"in_progress", "reported", "closed"}
REPORTED = {"reported", "closed"}
# (signed, relayed, reported) as 0/1 per receipt state, looked up once per row instead of three set tests.
_STATE_FLAGS = {s: (int(s in SIGNED), int(s in RELAYED), int(s in REPORTED))
                for s in SIGNED | {"issued", "returned", "cancelled"}}
_NO_FLAGS = (0, 0, 0)


def rollup(directive: Directive, root: Unit | None = None) -> tuple[list[UnitRow], dict[int, DirectiveCounts]]:
    """Every unit of ``root``'s subtree (the directive's scope by default) with its figures: two queries — the
    units with their own receipt (one LEFT JOIN), the reach rows grouped by unit path and status — and one walk up
    the tree in Python. The units come in path order; the walk needs nothing else."""
    root = root or directive.scope_unit
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
        cur.execute(_REACH_SQL.format(reach=q(Reach._meta.db_table)), [directive.pk])
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
