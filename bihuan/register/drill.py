"""The rows of a drill-down table under a unit — one rule for every table of units (the situation board, a
directive's units, the push dashboard, the control dashboard).

The commander skips the office layer: under the district (level 1) the rows are the townships themselves, though
they hang under the command office (level 2); the office's own work and the departments' come apart, below the
rows. Under any other unit the rows are its children. Rows are ranked by how far behind they are (most first), and
each names its responsible person (the unit's first active staff account) with the masked phone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .models import MAX_LEVEL, Staff, Unit

TOWNSHIP_LEVEL = 3


def row_level(level: int) -> int:
    """The level of the rows under a unit of ``level`` (the townships for the district and its office)."""
    return TOWNSHIP_LEVEL if level < TOWNSHIP_LEVEL else level + 1


def row_units(unit: Unit) -> list[Unit]:
    """The units one row below ``unit`` (the townships for the district), in path order."""
    if unit.level >= MAX_LEVEL:
        return []
    return list(Unit.objects.filter(unit.subtree(), level=row_level(unit.level)).order_by("path"))


def has_apart(unit) -> bool:
    """Whether a table under ``unit`` shows the office and departments apart (the district's)."""
    return unit.level < TOWNSHIP_LEVEL - 1


def responsible_people(unit_ids) -> dict[int, Staff]:
    """Each unit's responsible person: its first active staff account (one query)."""
    people: dict[int, Staff] = {}
    for s in (Staff.objects.filter(unit_id__in=list(unit_ids), deactivated_at__isnull=True)
              .only("id", "unit_id", "name", "phone_masked").order_by("unit_id", "id")):
        people.setdefault(s.unit_id, s)
    return people


@dataclass
class DrillRow:
    unit: Any  # a Unit or a coverage.UnitRow
    counts: Any  # the table's figures for the unit's subtree (its own work only for the office, apart)
    behind: Any = 0  # a number, or a tuple of numbers compared in order
    person: Staff | None = None
    apart: bool = False  # the command office's own work or a department, shown below the rows


def rank(rows: list[DrillRow]) -> list[DrillRow]:
    """Most behind first (``behind`` is a number or a tuple of numbers), then path order; in place."""
    rows.sort(key=lambda r: r.unit.path)
    rows.sort(key=lambda r: r.behind, reverse=True)
    return rows


def drill_rows(root, units: list, totals: dict, *, behind: Callable[[Any], int],
               own: Callable[[Any], Any] | None = None, keep: Callable[[Any, Any], bool] | None = None,
               people: bool = True) -> tuple[list[DrillRow], list[DrillRow]]:
    """(rows, apart) under ``root`` from a rollup's ``units`` (any order) and subtree ``totals`` by unit id.

    ``behind(counts)`` ranks the rows (most behind first, then path order; a number or a tuple). ``own(unit)`` gives the office's own
    figures (a unit apart with township rows under it; left out when ``own`` is None or returns None).
    ``keep(unit, counts)`` drops rows (e.g. departments with nothing to show)."""
    if root.level >= MAX_LEVEL:
        return [], []
    level = row_level(root.level)
    chosen = [u for u in units if u.level == level and u.path.startswith(root.path) and u.id != root.id
              and u.id in totals]
    rows = [DrillRow(u, totals[u.id], behind(totals[u.id])) for u in chosen
            if keep is None or keep(u, totals[u.id])]
    rank(rows)
    apart: list[DrillRow] = []
    if has_apart(root) and level != root.level + 1:
        for u in sorted((u for u in units if u.parent_id == root.id and u.id in totals), key=lambda u: u.path):
            over_rows = any(c.path.startswith(u.path) for c in chosen)
            counts = (own(u) if own is not None else None) if over_rows else totals[u.id]
            if counts is None or (keep is not None and not keep(u, counts)):
                continue
            apart.append(DrillRow(u, counts, behind(counts), apart=True))
    if people:
        found = responsible_people(r.unit.id for r in rows + apart)
        for r in rows + apart:
            r.person = found.get(r.unit.id)
    return rows, apart
