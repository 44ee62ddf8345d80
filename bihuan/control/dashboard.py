"""Control-and-care figures rolled up through the seven levels, collected once from the records the teams keep.

For a day (today by default) and every unit of a subtree:

- **under** each measure: open cases (管控中 or 待解除) by control type, and how many wait for release;
- **check-ins**: due today (cases whose period covers the day × the type's check-ins a day), done, and the
  people with an abnormal one (≥ 37.3 °C or a listed symptom);
- **tests**: samples scheduled for the day, sampled (a result or pending), positive, missed;
- **service requests** of open cases not confirmed by the person yet, read from their loops: open (staff
  have not done it), overdue (``loops.models.overdue_sql``), done (reported) and waiting for the person's
  confirmation;
- cases whose period **ends** on the day.

A case counts at the unit that answers for it (``ControlCase.unit``: a community or a grid). Four
``GROUP BY unit_id`` statements (cases by type; the day's check-ins, samples; open service requests) give
the counts of the units that hold cases directly, and one walk over the unit tree (``coverage.load_units``)
adds each unit's counts to its ancestors — exactly as the register's coverage. No query per unit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from bihuan.core.dbroute import read_connection
from bihuan.loops.models import OPEN_STATES, Loop, LoopState, overdue_sql
from bihuan.register.coverage import UnitRow, fold_up, load_units
from bihuan.register.drill import DrillRow, drill_rows
from bihuan.register.models import MAX_LEVEL, Unit, UnitKind, next_path

from .models import (
    OPEN_CASE_STATES,
    CaseState,
    CheckIn,
    ControlCase,
    ControlType,
    ServiceRequest,
    TestResult,
    TestSample,
    localized,
)

SAMPLED = (TestResult.PENDING, TestResult.NEGATIVE, TestResult.POSITIVE)
SCALARS = ("open_cases", "release_proposed", "ending", "checkin_people", "checkins_due", "checkins_done",
           "abnormal", "tests_due", "tests_done", "tests_positive", "tests_missed", "services_open",
           "services_overdue", "services_unconfirmed")


@dataclass
class ControlCounts:
    under: dict[str, int] = field(default_factory=dict)  # type code -> open cases
    open_cases: int = 0
    release_proposed: int = 0
    ending: int = 0  # the period ends on the day
    checkin_people: int = 0  # open cases whose period covers the day
    checkins_due: int = 0
    checkins_done: int = 0
    abnormal: int = 0  # people with an abnormal check-in on the day
    tests_due: int = 0
    tests_done: int = 0
    tests_positive: int = 0
    tests_missed: int = 0
    services_open: int = 0
    services_overdue: int = 0
    services_unconfirmed: int = 0

    @property
    def checkins_missing(self) -> int:
        return max(0, self.checkins_due - self.checkins_done)

    @property
    def checkins_percent(self) -> float:
        return round(100.0 * self.checkins_done / self.checkins_due, 1) if self.checkins_due else 100.0

    @property
    def tests_percent(self) -> float:
        return round(100.0 * self.tests_done / self.tests_due, 1) if self.tests_due else 100.0

    @property
    def tests_waiting(self) -> int:
        return max(0, self.tests_due - self.tests_done - self.tests_missed)

    @property
    def is_zero(self) -> bool:
        return not any(getattr(self, n) for n in SCALARS)

    def add(self, other: ControlCounts) -> None:
        for name in SCALARS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, n in other.under.items():
            self.under[code] = self.under.get(code, 0) + n

    def as_dict(self) -> dict:
        return {**{n: getattr(self, n) for n in SCALARS}, "under": dict(self.under),
                "checkins_missing": self.checkins_missing}


@dataclass(frozen=True)
class TypeInfo:
    id: int
    code: str
    name_zh: str
    name_en: str
    checkins_per_day: int
    rank: int = 0

    @property
    def label(self) -> str:
        return localized(self.name_zh, self.name_en)


def type_versions() -> list[TypeInfo]:
    """Every version of every control type (cases point at the version they were opened with; one query)."""
    return [TypeInfo(*row) for row in ControlType.objects.order_by("code", "-is_current", "-version")
            .values_list("id", "code", "name_zh", "name_en", "checkins_per_day", "rank")]


def by_code(versions: list[TypeInfo]) -> list[TypeInfo]:
    """One entry per type code (the current version, else the latest), strictest first: columns and filters."""
    seen: dict[str, TypeInfo] = {}
    for t in versions:
        seen.setdefault(t.code, t)
    return sorted(seen.values(), key=lambda t: (-t.rank, t.code))


def control_types() -> list[TypeInfo]:
    """Every control type, strictest first, once per code (one query)."""
    return by_code(type_versions())


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _range(alias: str, path: str | None) -> tuple[str, list]:
    if path is None:
        return "", []
    return f" AND {alias}.path >= %s AND {alias}.path < %s", [path, next_path(path)]


def raw_counts(path: str | None, day: dt.date, now: dt.datetime | None = None) -> dict[str, list[tuple]]:
    """The four raw GROUP BYs at the level that holds cases. Also the benchmark's baseline: the rollup's own
    database work. ``path`` None is the whole district."""
    now = now or timezone.now()
    cases, checkins, samples = _table(ControlCase), _table(CheckIn), _table(TestSample)
    services, loops = _table(ServiceRequest), _table(Loop)
    open_states = [str(s) for s in OPEN_CASE_STATES]
    in_open = ", ".join(["%s"] * len(open_states))
    sampled = ", ".join(["%s"] * len(SAMPLED))
    d = connection.ops.adapt_datefield_value(day)
    t = connection.ops.adapt_datetimefield_value(now)
    out: dict[str, list[tuple]] = {}
    with read_connection().cursor() as cur:
        where, params = _range("c", path)
        cur.execute(
            f"SELECT c.unit_id, c.type_id, COUNT(*), "
            f"SUM(CASE WHEN c.state = %s THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN c.start_date <= %s AND c.end_date >= %s THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN c.end_date = %s THEN 1 ELSE 0 END) "
            f"FROM {cases} c WHERE c.state IN ({in_open}){where} GROUP BY c.unit_id, c.type_id",
            [str(CaseState.RELEASE_PROPOSED), d, d, d, *open_states, *params])
        out["cases"] = cur.fetchall()
        cur.execute(
            f"SELECT c.unit_id, COUNT(*), COUNT(DISTINCT CASE WHEN k.abnormal THEN k.case_id END) "
            f"FROM {checkins} k JOIN {cases} c ON c.id = k.case_id "
            f"WHERE k.date = %s AND c.state IN ({in_open}) AND c.start_date <= %s AND c.end_date >= %s{where} "
            f"GROUP BY c.unit_id",
            [d, *open_states, d, d, *params])
        out["checkins"] = cur.fetchall()
        cur.execute(
            f"SELECT c.unit_id, COUNT(*), SUM(CASE WHEN t.result IN ({sampled}) THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN t.result = %s THEN 1 ELSE 0 END), SUM(CASE WHEN t.result = %s THEN 1 ELSE 0 END) "
            f"FROM {samples} t JOIN {cases} c ON c.id = t.case_id "
            f"WHERE t.date = %s AND c.state IN ({in_open}){where} GROUP BY c.unit_id",
            [*[str(s) for s in SAMPLED], str(TestResult.POSITIVE), str(TestResult.MISSED), d, *open_states,
             *params])
        out["samples"] = cur.fetchall()
        # A request stands where its loop stands: open (not done), reported (done, waiting for the person's
        # confirmation), closed (confirmed); overdue is the engine's one rule.
        open_loop = ", ".join(["%s"] * len(OPEN_STATES))
        cur.execute(
            f"SELECT c.unit_id, SUM(CASE WHEN l.state IN ({open_loop}) THEN 1 ELSE 0 END), "
            f"SUM({overdue_sql('l.')}), SUM(CASE WHEN l.state = %s THEN 1 ELSE 0 END) "
            f"FROM {services} s JOIN {loops} l ON l.id = s.loop_id JOIN {cases} c ON c.id = s.case_id "
            f"WHERE l.state IN ({open_loop}, %s) AND c.state IN ({in_open}){where} GROUP BY c.unit_id",
            [*OPEN_STATES, t, t, LoopState.REPORTED, *OPEN_STATES, LoopState.REPORTED, *open_states, *params])
        out["services"] = cur.fetchall()
    return out


def collect(root: Unit | None = None, day: dt.date | None = None, *, now: dt.datetime | None = None
            ) -> tuple[list[UnitRow], dict[int, ControlCounts], dict[int, ControlCounts], list[TypeInfo]]:
    """(units of the subtree in tree order, each unit's own counts, each unit's subtree totals, the types)."""
    day = day or timezone.localdate()
    path = root.path if root is not None else None
    units = load_units(path)
    versions = type_versions()
    types = by_code(versions)
    by_type = {t.id: t for t in versions}
    own = {u.id: ControlCounts(under=dict.fromkeys((t.code for t in types), 0)) for u in units}
    rows = raw_counts(path, day, now)
    for unit_id, type_id, n, proposed, covering, ending in rows["cases"]:
        c = own.get(unit_id)
        if c is None:
            continue
        t = by_type[type_id]
        c.under[t.code] = c.under.get(t.code, 0) + n
        c.open_cases += n
        c.release_proposed += int(proposed or 0)
        c.checkin_people += int(covering or 0)
        c.checkins_due += int(covering or 0) * t.checkins_per_day
        c.ending += int(ending or 0)
    for unit_id, n, abnormal in rows["checkins"]:
        if unit_id in own:
            own[unit_id].checkins_done += n
            own[unit_id].abnormal += int(abnormal or 0)
    for unit_id, n, done, positive, missed in rows["samples"]:
        if unit_id in own:
            c = own[unit_id]
            c.tests_due += n
            c.tests_done += int(done or 0)
            c.tests_positive += int(positive or 0)
            c.tests_missed += int(missed or 0)
    for unit_id, open_, overdue, unconfirmed in rows["services"]:
        if unit_id in own:
            c = own[unit_id]
            c.services_open += int(open_ or 0)
            c.services_overdue += int(overdue or 0)
            c.services_unconfirmed += int(unconfirmed or 0)

    totals: dict[int, ControlCounts] = {}
    for u in units:
        totals[u.id] = ControlCounts(under=dict.fromkeys(own[u.id].under, 0))
        totals[u.id].add(own[u.id])
    fold_up(units, totals, ControlCounts.add)
    return units, own, totals, types


def rollup(root: Unit | None = None, day: dt.date | None = None, *, now: dt.datetime | None = None
           ) -> tuple[list[UnitRow], dict[int, ControlCounts]]:
    """Counts for ``root`` and every unit below it (the whole district if None) on ``day``."""
    units, _own, totals, _types = collect(root, day, now=now)
    return units, totals


def behind(c: ControlCounts) -> tuple[int, int]:
    """How far behind a unit is on control and care: abnormal check-ins, positive tests and overdue services,
    then the check-ins still missing."""
    return (c.abnormal + c.tests_positive + c.tests_missed + c.services_overdue, c.checkins_missing)


def children_rows(unit: Unit, units: list[UnitRow], own: dict[int, ControlCounts],
                  totals: dict[int, ControlCounts]) -> list[DrillRow]:
    """The rows of the drill-down table under ``unit`` (``register.drill``: the townships directly under the
    district, the office and the departments apart), most behind first; departments with nothing under control
    are left out."""
    rows, apart = drill_rows(unit, units, totals, behind=behind, own=lambda u: own[u.id],
                             keep=lambda u, c: not (u.kind == UnitKind.DEPARTMENT and c.is_zero))
    return rows + apart


def default_depth(root: Unit | UnitRow) -> int:
    """The deepest level an export of ``root`` lists: communities and villages (level 4) for the district and
    townships, one level below the root further down."""
    return min(MAX_LEVEL, max(4, root.level + 1))
