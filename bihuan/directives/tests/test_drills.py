"""Drills: an exercise directive runs the same loop, and its readiness report gives each unit's exact time to
sign and to reach 50 %, 90 % and 100 % of its households — computed in a fixed number of queries."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from bihuan.directives.actions import do_issue_directive, do_mark_households
from bihuan.directives.drills import needed, readiness_report, readiness_workbook
from bihuan.directives.models import RECEIPT, Directive, Reach, ReachStatus
from bihuan.loops.models import Loop, LoopState
from bihuan.testing import create_household, create_unit

MIN = timedelta(minutes=1)


@pytest.fixture
def drill(district):
    """An exercise to the whole district: grid A has 10 households, grid B 4, with controlled times."""
    d = district
    d.grid_a_homes = [d.household_a] + [create_household(d.grid_a, f"锦悦小区5号楼{i}01") for i in range(9)]
    d.grid_b_homes = [d.household_b] + [create_household(d.grid_b, f"东羊村一组{20 + i}号") for i in range(3)]
    directive = do_issue_directive(acting_user=d.users["commander"], title="应急响应演练", body="请按预案逐户通知。",
                                   is_exercise=True)
    d.t0 = timezone.now().replace(microsecond=0) - timedelta(days=1)
    Directive.objects.filter(pk=directive.pk).update(issued_at=d.t0)
    d.directive = Directive.objects.select_related("issuer_unit", "scope_unit").get(pk=directive.pk)
    return d


def mark_at(d, household, offset: timedelta, status: str = ReachStatus.REACHED) -> None:
    Reach.objects.filter(directive=d.directive, household=household).update(
        status=status, method="phone" if status == ReachStatus.REACHED else "",
        reason="" if status != ReachStatus.UNREACHABLE else "空房", marked_at=d.t0 + offset)


def sign_at(d, unit, offset: timedelta) -> None:
    Loop.objects.filter(kind=RECEIPT, subject_id=d.directive.pk, owner_unit=unit).update(
        state=LoopState.ACKNOWLEDGED, acknowledged_at=d.t0 + offset)


def by_unit(rows):
    return {r.unit_id: r for r in rows}


def seconds(row) -> tuple:
    def s(td):
        return None if td is None else td.total_seconds()

    return s(row.time_to_sign), s(row.time_to[50]), s(row.time_to[90]), s(row.time_to[100])


@pytest.mark.parametrize(("n", "pct", "k"), [(10, 50, 5), (10, 90, 9), (10, 100, 10), (4, 90, 4), (4, 50, 2),
                                             (14, 90, 13), (3, 50, 2), (1, 50, 1), (0, 50, 1)])
def test_needed_is_the_ceiling_of_the_share(n, pct, k):
    assert needed(n, pct) == k


def test_readiness_times_are_exact(drill):
    d = drill
    for i, home in enumerate(d.grid_a_homes, start=1):  # grid A: one household a minute
        mark_at(d, home, i * MIN)
    mark_at(d, d.grid_b_homes[0], timedelta(seconds=150))
    mark_at(d, d.grid_b_homes[1], timedelta(seconds=330))
    mark_at(d, d.grid_b_homes[2], timedelta(minutes=20))
    mark_at(d, d.grid_b_homes[3], timedelta(minutes=3), ReachStatus.UNREACHABLE)  # never reached
    sign_at(d, d.office, timedelta(seconds=45))
    sign_at(d, d.township_a, 3 * MIN)
    sign_at(d, d.community_a, 7 * MIN)
    sign_at(d, d.grid_a, 12 * MIN)
    rows = by_unit(readiness_report(d.directive))

    assert seconds(rows[d.grid_a.id]) == (720, 300, 540, 600)
    assert (rows[d.grid_a.id].households, rows[d.grid_a.id].reached) == (10, 10)
    assert seconds(rows[d.compound_a.id])[1:] == (300, 540, 600)
    assert seconds(rows[d.community_a.id]) == (420, 300, 540, 600)
    assert seconds(rows[d.township_a.id]) == (180, 300, 540, 600)
    # Grid B: 4 households, 3 reached — half at the 2nd (330 s); 90 % needs all 4, which never happens.
    assert seconds(rows[d.grid_b.id]) == (None, 330, None, None)
    assert (rows[d.grid_b.id].households, rows[d.grid_b.id].reached) == (4, 3)
    assert rows[d.grid_b.id].receipt_state == "issued"
    # The district: 14 households, 13 reached; 7th at 330 s, 13th at 20 minutes.
    assert seconds(rows[d.district.id]) == (None, 330, 1200, None)  # it issued: no receipt of its own
    assert seconds(rows[d.office.id]) == (45, 330, 1200, None)
    assert (rows[d.district.id].households, rows[d.district.id].reached) == (14, 13)


def test_rows_follow_the_tree_down_to_the_grids_and_skip_units_out_of_scope(drill):
    d = drill
    rows = readiness_report(d.directive)
    assert [r.path for r in rows] == sorted(r.path for r in rows)
    ids = [r.unit_id for r in rows]
    assert ids[0] == d.district.id
    assert {d.grid_a.id, d.grid_b.id, d.group_b.id, d.village_b.id} <= set(ids)
    assert d.department.id not in ids  # a department is not sent a district-wide directive
    assert all(r.time_to == {50: None, 90: None, 100: None} for r in rows)  # nobody reached yet


def test_a_household_marked_back_to_pending_does_not_count(drill):
    d = drill
    for i, home in enumerate(d.grid_a_homes, start=1):
        mark_at(d, home, i * MIN)
    do_mark_households(directive=d.directive, household_ids=[d.grid_a_homes[-1].id], status=ReachStatus.PENDING,
                       acting_user=d.users["grid_a"])
    row = by_unit(readiness_report(d.directive))[d.grid_a.id]
    assert row.reached == 9 and seconds(row)[1:] == (300, 540, None)


def test_the_report_takes_a_fixed_number_of_queries(drill, django_assert_max_num_queries):
    d = drill
    for i, home in enumerate(d.grid_a_homes, start=1):
        mark_at(d, home, i * MIN)
    with django_assert_max_num_queries(4):
        small = readiness_report(d.directive)
    # Many more units and households: still the same queries.
    for i in range(6):
        compound = create_unit(d.community_a, f"扩展小区{i}", "compound")
        grid = create_unit(compound, f"扩展小区{i}网格", "grid")
        for j in range(3):
            create_household(grid, f"扩展小区{i}-{j}")
    directive = do_issue_directive(acting_user=d.users["commander"], title="再演练", body="逐户通知", is_exercise=True)
    directive = Directive.objects.select_related("issuer_unit", "scope_unit").get(pk=directive.pk)
    Reach.objects.filter(directive=directive).update(status=ReachStatus.REACHED, method="visit",
                                                     marked_at=timezone.now())
    with django_assert_max_num_queries(4):
        big = readiness_report(directive)
    assert len(big) > len(small) + 10


def test_the_excel_export_has_a_row_per_unit_with_durations(drill):
    d = drill
    for i, home in enumerate(d.grid_a_homes, start=1):
        mark_at(d, home, i * MIN)
    sign_at(d, d.grid_a, 12 * MIN)
    rows = readiness_report(d.directive)
    wb = load_workbook(io.BytesIO(readiness_workbook(d.directive, rows)))
    ws = wb.active
    assert ws.title == "演练报告"
    assert "演练" in ws["A1"].value
    values = list(ws.iter_rows(values_only=True))
    header = values[3]
    assert header[:6] == ("层级", "单位", "户数", "已触达", "签收时间", "签收用时")
    assert header[6:] == ("触达 50% 用时", "触达 90% 用时", "触达 100% 用时")
    body = values[4:]
    assert [r[1] for r in body] == [r.name for r in rows]
    grid = next(r for r in body if r[1] == d.grid_a.name)
    assert grid[2:4] == (10, 10)
    assert grid[5:] == (12 * MIN, 5 * MIN, 9 * MIN, 10 * MIN)
    assert ws.cell(4 + 1 + [r[1] for r in body].index(d.grid_a.name), 7).number_format == "[h]:mm:ss"
