"""Coverage of the register, rolled up through all seven levels in one pass.

Three ``GROUP BY unit_id`` queries (households, residents with their key groups, staff) give the counts
of the units that hold rows directly (normally grids); one in-memory walk over the unit tree (a few
thousand units) adds each unit's counts to all its ancestors. Blind spots come out of the same pass:
households that hang on a unit that is not a grid, grids with no responsible person, units with no staff, and
compounds with no property management (三无小区) that no cadre answers for (a ``UnitLeader``, 包保) — the last from
one more small query over the flagged units. Deactivated staff count for nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from bihuan.core.dbroute import read_connection
from bihuan.core.roles import RESPONSIBLE_ROLES

from .models import (
    ACTIVE_STATUSES,
    KEY_GROUPS,
    MAX_LEVEL,
    Household,
    Resident,
    Staff,
    Unit,
    UnitLeader,
    next_path,
)

GROUPS = tuple(KEY_GROUPS)


@dataclass
class Counts:
    units_below: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # level -> count
    grids: int = 0
    households: int = 0
    residents: int = 0
    groups: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GROUPS, 0))
    staff: int = 0
    responsible: int = 0
    # blind spots (盲区) in the subtree
    households_without_grid: int = 0
    grids_without_responsible: int = 0
    units_without_staff: int = 0
    compounds_without_cadre: int = 0  # 三无小区 without a 包保 cadre

    @property
    def blind_spots(self) -> int:
        return (self.households_without_grid + self.grids_without_responsible + self.units_without_staff
                + self.compounds_without_cadre)

    def add(self, other: Counts) -> None:
        for level, n in other.units_below.items():
            self.units_below[level] += n
        self.grids += other.grids
        self.households += other.households
        self.residents += other.residents
        for g in GROUPS:
            self.groups[g] += other.groups[g]
        self.staff += other.staff
        self.responsible += other.responsible
        self.households_without_grid += other.households_without_grid
        self.grids_without_responsible += other.grids_without_responsible
        self.units_without_staff += other.units_without_staff
        self.compounds_without_cadre += other.compounds_without_cadre

    def as_dict(self) -> dict:
        return {
            "units_below": {str(k): v for k, v in sorted(self.units_below.items())},
            "grids": self.grids,
            "households": self.households,
            "residents": self.residents,
            "groups": dict(self.groups),
            "staff": self.staff,
            "responsible": self.responsible,
            "blind_spots": {
                "households_without_grid": self.households_without_grid,
                "grids_without_responsible": self.grids_without_responsible,
                "units_without_staff": self.units_without_staff,
                "compounds_without_cadre": self.compounds_without_cadre,
                "total": self.blind_spots,
            },
        }


@dataclass
class UnitRow:
    id: int
    parent_id: int | None
    level: int
    path: str
    name: str
    kind: str


def _range_sql(table: str, path: str | None) -> tuple[str, list]:
    if path is None:
        return "", []
    return f" WHERE {table}.path >= %s AND {table}.path < %s", [path, next_path(path)]


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def grid_level_counts(path: str | None = None):
    """The three raw GROUP BYs. Also the benchmark's baseline: the rollup's own database work."""
    hh, res, st, un = _table(Household), _table(Resident), _table(Staff), _table(Unit)
    sums = ", ".join(f"SUM(CASE WHEN {g} THEN 1 ELSE 0 END)" for g in GROUPS)
    status_in = ", ".join(["%s"] * len(ACTIVE_STATUSES))
    with read_connection().cursor() as cur:
        where, params = _range_sql(hh, path)
        cur.execute(f"SELECT unit_id, COUNT(*) FROM {hh}{where} GROUP BY unit_id", params)
        households = cur.fetchall()
        where, params = _range_sql(res, path)
        where = (where + " AND" if where else " WHERE") + f" status IN ({status_in})"
        cur.execute(
            f"SELECT unit_id, COUNT(*), {sums} FROM {res}{where} GROUP BY unit_id",
            params + [str(s) for s in ACTIVE_STATUSES],
        )
        residents = cur.fetchall()
        where, params = _range_sql("u", path)
        cur.execute(
            f"SELECT s.unit_id, s.role, COUNT(*) FROM {st} s JOIN {un} u ON u.id = s.unit_id{where}"
            f"{' AND' if where else ' WHERE'} s.deactivated_at IS NULL GROUP BY s.unit_id, s.role",
            params,
        )
        staff = cur.fetchall()
    return households, residents, staff


def units_without_cadre(path: str | None = None) -> list[int]:
    """Ids of the compounds flagged as having no property management (三无小区) that no active cadre leads."""
    un, ld, st = _table(Unit), _table(UnitLeader), _table(Staff)
    where, params = _range_sql("u", path)
    with read_connection().cursor() as cur:
        cur.execute(
            f"SELECT u.id FROM {un} u{where}{' AND' if where else ' WHERE'} u.no_property_management = %s "
            f"AND NOT EXISTS (SELECT 1 FROM {ld} l JOIN {st} s ON s.id = l.staff_id "
            "WHERE l.unit_id = u.id AND s.deactivated_at IS NULL)",
            [*params, True],
        )
        return [row[0] for row in cur.fetchall()]


def fold_up(units: list[UnitRow], totals: dict, add: Callable[[Any, Any], None]) -> None:
    """The walk up the unit tree: children before parents (deepest paths first), ``add(parent's totals, child's
    totals)`` folds each unit's totals into its parent's, so each unit ends with its whole subtree's. Units whose
    parent has no entry in ``totals`` (the root) are left where they are."""
    for u in sorted(units, key=lambda u: -len(u.path)):
        if u.parent_id in totals:
            add(totals[u.parent_id], totals[u.id])


def load_units(path: str | None = None) -> list[UnitRow]:
    qs = Unit.objects.order_by("path")
    if path is not None:
        qs = qs.filter(path__gte=path, path__lt=next_path(path))
    return [UnitRow(*row) for row in qs.values_list("id", "parent_id", "level", "path", "name", "kind")]


def rollup(root: Unit | None = None) -> tuple[list[UnitRow], dict[int, Counts]]:
    """Counts for ``root`` and every unit below it (the whole district if None)."""
    path = root.path if root is not None else None
    units = load_units(path)
    by_id = {u.id: u for u in units}
    households, residents, staff = grid_level_counts(path)

    own = {u.id: Counts() for u in units}
    for unit_id, n in households:
        c = own[unit_id]
        c.households += n
        if by_id[unit_id].level != MAX_LEVEL:
            c.households_without_grid += n
    for unit_id, n, *group_sums in residents:
        c = own[unit_id]
        c.residents += n
        for g, v in zip(GROUPS, group_sums, strict=True):
            c.groups[g] += int(v or 0)
    staffed: set[int] = set()
    for unit_id, role, n in staff:
        c = own[unit_id]
        c.staff += n
        staffed.add(unit_id)
        if role in RESPONSIBLE_ROLES:
            c.responsible += n
    for u in units:
        c = own[u.id]
        if u.level == MAX_LEVEL:
            c.grids = 1
            if c.responsible == 0:
                c.grids_without_responsible = 1
        elif u.id not in staffed:
            c.units_without_staff = 1
    for unit_id in units_without_cadre(path):
        own[unit_id].compounds_without_cadre = 1

    totals = own
    for u in units:  # each unit counts as one below its parent; fold_up adds the levels further down
        if u.parent_id in totals:
            totals[u.parent_id].units_below[u.level] += 1
    fold_up(units, totals, Counts.add)
    return units, totals


def blind_spot_lists(root: Unit, limit: int = 200) -> dict[str, list]:
    """The blind spots under ``root`` themselves, for the report pages (bounded lists)."""
    sub = root.subtree()
    active = Staff.objects.filter(deactivated_at__isnull=True)
    responsible_grid_ids = active.filter(role__in=list(RESPONSIBLE_ROLES)).values("unit_id")
    staffed_ids = active.values("unit_id")
    return {
        "households_without_grid": list(
            Household.objects.filter(sub).exclude(unit__level=MAX_LEVEL).select_related("unit")[:limit]
        ),
        "grids_without_responsible": list(
            Unit.objects.filter(sub, level=MAX_LEVEL).exclude(id__in=responsible_grid_ids)[:limit]
        ),
        "units_without_staff": list(
            Unit.objects.filter(sub, level__lt=MAX_LEVEL).exclude(id__in=staffed_ids)[:limit]
        ),
        "compounds_without_cadre": list(Unit.objects.filter(id__in=units_without_cadre(root.path)[:limit])),
    }
