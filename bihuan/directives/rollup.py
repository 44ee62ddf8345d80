"""A directive's live state at all seven levels: two GROUP BYs (reach rows by grid and status; receipts by
unit and state) and one walk up the unit tree, as for the register's coverage."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from bihuan.loops.models import Loop
from bihuan.register.coverage import UnitRow, load_units
from bihuan.register.models import Unit

from .models import RECEIPT, Directive, Reach


@dataclass
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


def raw_counts(directive_id: int, now=None):
    """The two GROUP BYs (also the benchmark's baseline)."""
    q = connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(now or timezone.now())
    with connection.cursor() as cur:
        cur.execute(f"SELECT unit_id, status, COUNT(*) FROM {q(Reach._meta.db_table)} WHERE directive_id = %s "
                    "GROUP BY unit_id, status", [directive_id])
        reach = cur.fetchall()
        cur.execute(
            f"SELECT owner_unit_id, state, CASE WHEN state IN ('issued', 'acknowledged', 'in_progress') AND "
            "((state = 'issued' AND ack_due_at < %s) OR due_at < %s) THEN 1 ELSE 0 END "
            f"FROM {q(Loop._meta.db_table)} WHERE kind = %s AND subject_id = %s", [now, now, RECEIPT, directive_id])
        loops = cur.fetchall()
    return reach, loops


SIGNED = {"acknowledged", "in_progress", "reported", "closed"}
RELAYED = {"in_progress", "reported", "closed"}
REPORTED = {"reported", "closed"}


def rollup(directive: Directive, root: Unit | None = None) -> tuple[list[UnitRow], dict[int, DirectiveCounts]]:
    root = root or directive.scope_unit
    units = load_units(root.path)
    totals = {u.id: DirectiveCounts() for u in units}
    reach, loops = raw_counts(directive.pk)
    for unit_id, status, n in reach:
        c = totals.get(unit_id)
        if c is None:
            continue
        c.households += n
        if status == "reached":
            c.reached += n
        elif status == "unreachable":
            c.unreachable += n
    for unit_id, state, overdue in loops:
        c = totals.get(unit_id)
        if c is None:
            continue
        c.state, c.own_overdue = state, bool(overdue)
        c.units += 1
        c.signed += state in SIGNED
        c.relayed += state in RELAYED
        c.reported += state in REPORTED
        c.overdue += bool(overdue)
    for u in sorted(units, key=lambda u: -len(u.path)):
        if u.parent_id not in totals:
            continue
        c, p = totals[u.id], totals[u.parent_id]
        p.households += c.households
        p.reached += c.reached
        p.unreachable += c.unreachable
        p.units += c.units
        p.signed += c.signed
        p.relayed += c.relayed
        p.reported += c.reported
        p.overdue += c.overdue
    return units, totals
