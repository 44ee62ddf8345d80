"""The daily report of pushed lists (大数据推送人员核查日报), collected once: every figure is derived live from
the records the grassroots staff keep — no stored counters, no forms.

For a day (or a range of days) and every unit of a subtree:

- **pushed** (推送): people first pushed in the period, counted at the unit that handles them now, split by
  how they got there (``routed``: resident / address / manual — dispatched from the queue — / transfer) or
  ``unrouted`` (still in the command office's manual-dispatch queue, or not routed yet: they count at the
  command office);
- **verified** (已核查): verifications completed in the period (``verified_at``), by ``outcomes`` and by the
  confirmed ``measures``, at the unit handling the person now (a receiving unit verifies afresh after a
  transfer, so a verification counts once, where it stands now);
- **overdue** (超时未核查): verification loops still open past their deadline at the end of the period (now, for
  today), at the unit owning the loop;
- **transfers** (转办): ``transferred_out`` / ``transferred_in`` (created in the period, at the sending /
  receiving unit), ``accepted`` and ``returned`` (answered in the period, at the receiving unit), and
  ``ping_pong`` (flagged A → B → A transfers, at the unit that sent it back).

One ``GROUP BY`` per kind of record at the lowest level (people by unit and route method; verifications by
unit, outcome and measure; loops by owner; transfers by unit) and one walk up the unit tree
(``coverage.load_units``), exactly as the register's coverage. A transfer between two units of the same
subtree counts as out and in at their common ancestors: each level's figure is the sum of its children's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.utils import timezone, translation

from bihuan.core import excel
from bihuan.loops.models import Loop
from bihuan.register.coverage import UnitRow, fold_up, load_units
from bihuan.register.models import MAX_LEVEL, Unit, UnitKind, subtree_q

from .models import (
    VERIFICATION,
    Measure,
    Outcome,
    PushedPerson,
    RouteMethod,
    Transfer,
    TransferState,
    Verification,
)

OUTCOMES = tuple(Outcome.values)
MEASURES = tuple(Measure.values)
METHODS = tuple(RouteMethod.values)  # resident, address, manual, transfer
SCALARS = ("pushed", "unrouted", "verified", "overdue", "transferred_out", "transferred_in", "accepted",
           "returned", "ping_pong")


@dataclass
class PushCounts:
    pushed: int = 0
    routed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METHODS, 0))
    unrouted: int = 0
    verified: int = 0
    overdue: int = 0
    transferred_out: int = 0
    transferred_in: int = 0
    accepted: int = 0
    returned: int = 0
    ping_pong: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    measures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEASURES, 0))
    extra: dict[str, int] = field(default_factory=dict)  # the figures of registered sections (``register_section``)

    @property
    def routed_total(self) -> int:
        return sum(self.routed.values())

    def add(self, other: PushCounts) -> None:
        for name in SCALARS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.routed, other.routed), (self.outcomes, other.outcomes),
                             (self.measures, other.measures), (self.extra, other.extra)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n

    @property
    def is_zero(self) -> bool:
        return not any(getattr(self, n) for n in SCALARS) and not any(self.routed.values()) \
            and not any(self.outcomes.values()) and not any(self.measures.values()) and not any(self.extra.values())

    def as_dict(self) -> dict:
        return {
            "pushed": self.pushed, "routed": dict(self.routed), "routed_total": self.routed_total,
            "unrouted": self.unrouted, "verified": self.verified, "overdue": self.overdue,
            "transferred_out": self.transferred_out, "transferred_in": self.transferred_in,
            "accepted": self.accepted, "returned": self.returned, "ping_pong": self.ping_pong,
            "outcomes": dict(self.outcomes), "measures": dict(self.measures), "extra": dict(self.extra),
        }


def behind(c: PushCounts) -> tuple[int, int]:
    """How far behind a unit is on its pushed lists: verifications past the deadline, then people not routed."""
    return (c.overdue, c.unrouted)


# ------------------------------------------------------------------------------------------- sections
# Apps that find people by other means (checkpoints, self-reports, screenings) add their figures to the daily
# report here, so pushes never imports them: ``register_section(Section(group, columns, collect))`` where
# ``collect(root, low, high, units)`` returns {unit id: {key: n}} of the units' *own* records in [low, high);
# the walk up the tree adds them up like every other figure.


@dataclass(frozen=True)
class Section:
    group: str  # the header group (卡口, 报备, 排查)
    columns: tuple[tuple[str, str], ...]  # (column label, key)
    collect: Callable


_SECTIONS: list[Section] = []


def register_section(section: Section) -> Section:
    if all(s.group != section.group for s in _SECTIONS):
        _SECTIONS.append(section)
    return section


# ------------------------------------------------------------------------------------------- periods


def day_bounds(start: dt.date, end: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, end + 1 day 00:00) in the district's time zone, as aware datetimes."""
    end = end or start
    tz = timezone.get_current_timezone()
    low = dt.datetime.combine(start, dt.time.min).replace(tzinfo=tz)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min).replace(tzinfo=tz)
    return low, high


def as_of(end: dt.date, now: dt.datetime | None = None) -> dt.datetime:
    """The moment a period's snapshot figures (overdue) are taken: its end, or now if that is earlier."""
    now = now or timezone.now()
    return min(now, day_bounds(end)[1])


# ------------------------------------------------------------------------------------------- collection


def _queue_unit(units: list[UnitRow]) -> int | None:
    """The command office (the manual-dispatch queue's home) if it is in the subtree."""
    offices = [u for u in units if u.kind == UnitKind.COMMAND_OFFICE]
    return min(offices, key=lambda u: u.path).id if offices else None


def collect(root: Unit, start: dt.date, end: dt.date | None = None, *, now: dt.datetime | None = None
            ) -> tuple[list[UnitRow], dict[int, PushCounts], dict[int, PushCounts]]:
    """(units of the subtree in tree order, each unit's own counts, each unit's subtree totals)."""
    end = end or start
    low, high = day_bounds(start, end)
    t = as_of(end, now)
    units = load_units(root.path)
    own = {u.id: PushCounts() for u in units}
    queue = _queue_unit(units)
    in_tree = subtree_q(root.path)
    people_scope = in_tree | Q(unit__isnull=True) if queue is not None else in_tree

    def at(unit_id: int | None) -> PushCounts | None:
        return own.get(queue if unit_id is None else unit_id)

    pushed = (PushedPerson.objects.filter(people_scope, first_pushed_at__gte=low, first_pushed_at__lt=high)
              .values_list("unit_id", "route_method").annotate(n=Count("id")).order_by())
    kinds = {u.id: u.kind for u in units}
    for unit_id, method, n in pushed:
        c = at(unit_id)
        if c is None:
            continue
        c.pushed += n
        if unit_id is None or kinds.get(unit_id) == UnitKind.COMMAND_OFFICE:
            c.unrouted += n
        else:
            key = method if method in c.routed else RouteMethod.MANUAL
            c.routed[key] += n

    # Driven by the day's verifications alone (the subtree is picked out below, from the loaded units): a
    # path predicate on the joined people would make SQLite walk every person of the subtree instead.
    verified = (Verification.objects.filter(verified_at__gte=low, verified_at__lt=high)
                .values_list("person__unit_id", "outcome", "measure").annotate(n=Count("id")).order_by())
    for unit_id, outcome, measure, n in verified:
        c = at(unit_id)
        if c is None:
            continue
        c.verified += n
        c.outcomes[outcome] = c.outcomes.get(outcome, 0) + n
        if measure:
            c.measures[measure] = c.measures.get(measure, 0) + n

    overdue = (Loop.objects.filter(in_tree, kind=VERIFICATION).overdue(t)
               .values_list("owner_unit_id").annotate(n=Count("id")).order_by())
    for unit_id, n in overdue:
        if unit_id in own:
            own[unit_id].overdue += n

    created = Q(created_at__gte=low, created_at__lt=high)
    outgoing = (Transfer.objects.filter(created, subtree_q(root.path, "from_unit__path"))
                .values_list("from_unit_id").annotate(n=Count("id"), pp=Count("id", filter=Q(ping_pong=True)))
                .order_by())
    for unit_id, n, pp in outgoing:
        if unit_id in own:
            own[unit_id].transferred_out += n
            own[unit_id].ping_pong += int(pp or 0)
    incoming = (Transfer.objects.filter(created, subtree_q(root.path, "to_unit__path"))
                .values_list("to_unit_id").annotate(n=Count("id")).order_by())
    for unit_id, n in incoming:
        if unit_id in own:
            own[unit_id].transferred_in += n
    answered = (Transfer.objects.filter(subtree_q(root.path, "to_unit__path"), answered_at__gte=low,
                                        answered_at__lt=high)
                .in_state(TransferState.ACCEPTED, TransferState.RETURNED).with_status()
                .values_list("to_unit_id", "status").annotate(n=Count("id")).order_by())
    for unit_id, state, n in answered:
        if unit_id in own:
            if state == TransferState.ACCEPTED:
                own[unit_id].accepted += n
            else:
                own[unit_id].returned += n

    for section in _SECTIONS:
        for unit_id, values in section.collect(root, low, high, units).items():
            if unit_id in own:
                extra = own[unit_id].extra
                for key, n in values.items():
                    extra[key] = extra.get(key, 0) + n

    totals: dict[int, PushCounts] = {}
    for u in units:
        totals[u.id] = PushCounts()
        totals[u.id].add(own[u.id])
    fold_up(units, totals, PushCounts.add)
    return units, own, totals


def report(root: Unit, start: dt.date, end: dt.date | None = None, *, now: dt.datetime | None = None
           ) -> tuple[list[UnitRow], dict[int, PushCounts]]:
    """Counts for ``root`` and every unit below it over the days ``start`` … ``end`` (inclusive)."""
    units, _own, totals = collect(root, start, end, now=now)
    return units, totals


def daily_report(root_unit: Unit, day: dt.date, *, now: dt.datetime | None = None
                 ) -> tuple[list[UnitRow], dict[int, PushCounts]]:
    """Counts for ``root_unit`` and every unit below it on ``day``."""
    return report(root_unit, day, day, now=now)


# ------------------------------------------------------------------------------------------- series


def by_day(root: Unit, start: dt.date, end: dt.date) -> list[dict]:
    """Per day over ``start`` … ``end`` for the whole subtree of ``root``: pushed, verified, transferred out
    (of the subtree's units). One query per kind of record, counting each day's range with a conditional
    ``COUNT`` (no per-row date functions: the time-zone conversion would run for every row on SQLite)."""
    units = load_units(root.path)
    queue = _queue_unit(units)
    in_tree = subtree_q(root.path)
    people_scope = in_tree | Q(unit__isnull=True) if queue is not None else in_tree
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    low, high = day_bounds(start, end)

    def counts(field: str) -> dict:
        return {f"d{i}": Count("id", filter=Q(**{f"{field}__gte": a, f"{field}__lt": b}))
                for i, (a, b) in enumerate(day_bounds(day) for day in days)}

    def in_range(field: str) -> dict:
        return {f"{field}__gte": low, f"{field}__lt": high}

    def per_day(qs, field: str) -> list[int]:
        row = qs.filter(**in_range(field)).aggregate(**counts(field))
        return [row[f"d{i}"] for i in range(len(days))]

    pushed = per_day(PushedPerson.objects.filter(people_scope), "first_pushed_at")
    # Verifications by unit, the subtree picked out here (see ``collect``).
    inside = {u.id for u in units}
    verified = [0] * len(days)
    for row in (Verification.objects.filter(**in_range("verified_at")).values("person__unit_id")
                .annotate(**counts("verified_at")).order_by()):
        unit_id = row["person__unit_id"]
        if (queue if unit_id is None else unit_id) in inside:
            for i in range(len(days)):
                verified[i] += row[f"d{i}"]
    transferred = per_day(Transfer.objects.filter(subtree_q(root.path, "from_unit__path")), "created_at")
    return [{"day": day, "pushed": p, "verified": v, "transferred": t}
            for day, p, v, t in zip(days, pushed, verified, transferred, strict=True)]


# ------------------------------------------------------------------------------------------- layout


def default_depth(root: Unit | UnitRow) -> int:
    """The deepest level a report of ``root`` lists: communities and villages (level 4) for the district and
    townships, one level below the root further down."""
    return min(MAX_LEVEL, max(4, root.level + 1))


def report_rows(units: list[UnitRow], own: dict[int, PushCounts], totals: dict[int, PushCounts], root_id: int,
                to_level: int) -> list[tuple[UnitRow, PushCounts, bool]]:
    """Rows under the root, tree order, down to ``to_level``: (unit, counts, is_own_row). Departments with
    nothing to report are left out; when the root itself holds records (not its children) a row
    ``（本级）`` with them comes first."""
    rows: list[tuple[UnitRow, PushCounts, bool]] = []
    root = next(u for u in units if u.id == root_id)
    if not own[root_id].is_zero and any(u.parent_id == root_id for u in units):
        rows.append((root, own[root_id], True))
    for u in units:
        if u.id == root_id or u.level > to_level:
            continue
        if u.kind == UnitKind.DEPARTMENT and totals[u.id].is_zero:
            continue
        rows.append((u, totals[u.id], False))
    return rows


def columns() -> list[tuple[str, list[tuple[str, object]]]]:
    """The report's header groups and columns: (group label, [(column label, getter(counts))])."""
    with translation.override(None):  # the report is a Chinese document, whatever the UI language
        method_labels = {m: str(RouteMethod(m).label) for m in METHODS}
        outcome_labels = {o: str(Outcome(o).label) for o in OUTCOMES}
        measure_labels = {m: str(Measure(m).label) for m in MEASURES}
    method_labels[RouteMethod.TRANSFER] = "转办接收"

    def getter(attr: str, key: str | None = None):
        return (lambda c: getattr(c, attr)[key]) if key is not None else (lambda c: getattr(c, attr))

    return [
        ("推送", [("推送人数", getter("pushed")), *[(method_labels[m], getter("routed", m)) for m in METHODS],
                  ("待分派", getter("unrouted"))]),
        ("核查", [("已核查", getter("verified")), ("超时未核查", getter("overdue"))]),
        ("转办", [("转出", getter("transferred_out")), ("转入", getter("transferred_in")),
                  ("已接收", getter("accepted")), ("退回", getter("returned")), ("往返转办", getter("ping_pong"))]),
        ("核查结果", [(outcome_labels[o], getter("outcomes", o)) for o in OUTCOMES]),
        ("管控措施", [(measure_labels[m], getter("measures", m)) for m in MEASURES]),
        *[(sec.group, [(label, (lambda c, k=key: c.extra.get(k, 0))) for label, key in sec.columns])
          for sec in _SECTIONS],
    ]


def period_text(start: dt.date, end: dt.date | None = None) -> str:
    end = end or start
    first = f"{start.year}年{start.month}月{start.day}日"
    if end == start:
        return first
    last = f"{end.month}月{end.day}日" if end.year == start.year else f"{end.year}年{end.month}月{end.day}日"
    return f"{first}—{last}"


def report_title(root: Unit, start: dt.date, end: dt.date | None = None) -> str:
    """``尧都区大数据推送人员核查日报（2022年3月4日）``."""
    kind = "日报" if (end or start) == start else "汇总表"
    return f"{root.name}大数据推送人员核查{kind}（{period_text(start, end)}）"


def report_workbook(root: Unit, start: dt.date, end: dt.date | None = None, *, to_level: int | None = None,
                    now: dt.datetime | None = None) -> bytes:
    """The report as a conventional 日报 in .xlsx: a title row, merged header groups (推送 / 核查 / 转办 /
    核查结果 / 管控措施), one row per unit indented by level, a totals row (合计), borders everywhere."""
    end = end or start
    units, own, totals = collect(root, start, end, now=now)
    to_level = to_level or default_depth(root)
    stamp = timezone.localtime(as_of(end, now))
    rows = [excel.TableRow(f"{unit.name}（本级）" if is_own else unit.name,
                           0 if is_own else max(0, unit.level - root.level - 1),
                           unit.level <= root.level + 1 and not is_own, counts)
            for unit, counts, is_own in report_rows(units, own, totals, root.id, to_level)]
    return excel.unit_table_workbook(sheet="日报" if end == start else "汇总", title=report_title(root, start, end),
                                     unit_name=root.name, stamp=f"统计截至：{stamp:%Y-%m-%d %H:%M}",
                                     groups=columns(), rows=rows, totals=totals[root.id])


def flat_header() -> list[str]:
    """``推送/推送人数`` … for tests and CSV-like readers."""
    return [f"{g}/{label}" for g, cols in columns() for label, _get in cols]


def values_of(counts: PushCounts) -> list[int]:
    return [get(counts) for _g, cols in columns() for _label, get in cols]

