"""The situation board of a unit: every provider's figures for its subtree, and the rows below it ranked by how far
behind they are (``bihuan.core.today`` holds the registry; each app's ``today.py`` its figures).

Rows: under the district the townships themselves (they hang under the command office: a layer nobody wants to
click through), the office's own work and the departments' together in one row apart; under any other unit its
children. Each row names its responsible person (the unit's first active staff account) with a masked phone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from bihuan.core.today import Area, Figure, figures
from bihuan.register.drill import TOWNSHIP_LEVEL, has_apart, responsible_people, row_units
from bihuan.register.models import SEGMENT, Staff, Unit, next_path

__all__ = ["TOWNSHIP_LEVEL", "Board", "Row", "area_of", "build", "row_units"]


@dataclass
class Row:
    unit: Unit | None  # None: the office and departments, apart
    counts: list[int]
    behind: int
    person: Staff | None = None


@dataclass
class Board:
    unit: Unit
    at: datetime
    figures: list[Figure]
    rows: list[Row] = field(default_factory=list)
    apart: Row | None = None

    @property
    def behind(self) -> int:
        return sum(f.count for f in self.figures if f.bad)

    def figure(self, key: str) -> Figure | None:
        return next((f for f in self.figures if f.key == key), None)


def area_of(unit: Unit, rows: list[Unit], now: datetime | None = None) -> Area:
    row_len = len(rows[0].path) if rows else 0
    return Area(unit.pk, unit.path, next_path(unit.path), row_len, now or timezone.now())


def build(unit: Unit, now: datetime | None = None) -> Board:
    """One query per figure (grouped by row), one for the rows, one for their people."""
    rows = row_units(unit)
    area = area_of(unit, rows, now)
    figs = figures(area)
    board = Board(unit, area.now, figs)
    people = responsible_people(u.pk for u in rows)
    for u in rows:
        counts = [f.by_row.get(u.path, 0) for f in figs]
        board.rows.append(Row(u, counts, sum(c for c, f in zip(counts, figs, strict=True) if f.bad), people.get(u.pk)))
    board.rows.sort(key=lambda r: (-r.behind, r.unit.path))
    if rows and has_apart(unit):
        counts = [f.count - sum(r.counts[i] for r in board.rows) for i, f in enumerate(figs)]
        if any(counts):
            board.apart = Row(None, counts, sum(c for c, f in zip(counts, figs, strict=True) if f.bad))
    return board


def own_row_len(unit: Unit) -> int:
    return len(unit.path) + SEGMENT
