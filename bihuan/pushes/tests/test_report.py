"""The daily report of pushed lists: at every unit of every level it equals a recount from the raw rows; the
Excel 日报 opens, is laid out as a daily report and its totals match; the series by day; fixed query counts."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from bihuan.loops.models import Loop, LoopState
from bihuan.pushes import report
from bihuan.pushes.models import (
    VERIFICATION,
    PushedPerson,
    Transfer,
    TransferState,
    Verification,
)
from bihuan.register.coverage import load_units
from bihuan.register.models import Unit

from .helpers import DAY, NOW, YESTERDAY, Builder, build_day, local

# ------------------------------------------------------------------------------------------ the recount


def recount(unit: Unit, day: dt.date, now: dt.datetime, office: Unit) -> dict:
    """The report's figures for ``unit``, counted row by row from everything in the database."""
    low, high = report.day_bounds(day)

    def inside(path: str) -> bool:
        return path.startswith(unit.path)

    def during(at) -> bool:
        return at is not None and low <= at < high

    def path_of(p: PushedPerson) -> str:
        return p.path if p.unit_id else office.path

    c = report.PushCounts()
    for p in PushedPerson.objects.select_related("unit"):
        if during(p.first_pushed_at) and inside(path_of(p)):
            c.pushed += 1
            if p.unit_id is None or p.unit.kind == "command_office":
                c.unrouted += 1
            else:
                c.routed[p.route_method] += 1
    for v in Verification.objects.select_related("person"):
        if during(v.verified_at) and inside(path_of(v.person)):
            c.verified += 1
            c.outcomes[v.outcome] += 1
            if v.measure:
                c.measures[v.measure] += 1
    for loop in Loop.objects.filter(kind=VERIFICATION):
        if inside(loop.path) and loop.is_overdue(now):
            c.overdue += 1
    for t in Transfer.objects.select_related("from_unit", "to_unit"):
        if during(t.created_at) and inside(t.from_unit.path):
            c.transferred_out += 1
            c.ping_pong += t.ping_pong
        if during(t.created_at) and inside(t.to_unit.path):
            c.transferred_in += 1
        if during(t.answered_at) and inside(t.to_unit.path):
            c.accepted += t.state == TransferState.ACCEPTED
            c.returned += t.state == TransferState.RETURNED
    return c.as_dict()


def test_the_daily_report_at_every_unit_equals_a_recount_from_the_raw_rows(district):
    d = district
    build_day(d)
    units, totals = report.daily_report(d.district, DAY, now=NOW)
    assert {u.id for u in units} == set(Unit.objects.values_list("id", flat=True))
    for u in Unit.objects.all():
        assert totals[u.id].as_dict() == recount(u, DAY, NOW, d.office), u.name

    top = totals[d.district.id]
    assert (top.pushed, top.unrouted, top.verified, top.overdue) == (10, 2, 6, 2)
    assert top.routed == {"resident": 2, "address": 4, "manual": 1, "transfer": 1}
    assert (top.transferred_out, top.transferred_in, top.accepted, top.returned, top.ping_pong) == (3, 3, 2, 1, 1)
    assert top.outcomes["new_control"] == 2 and top.measures["home_isolation"] == 2
    a = totals[d.township_a.id]
    assert (a.pushed, a.unrouted, a.overdue, a.transferred_out, a.transferred_in, a.returned) == (5, 0, 1, 2, 1, 0)
    grid_b = totals[d.grid_b.id]
    assert (grid_b.overdue, grid_b.transferred_in, grid_b.returned) == (1, 1, 1)
    assert totals[d.office.id].unrouted == 2  # the queue lives at the command office


def test_a_report_of_a_township_equals_the_districts_figures_for_its_units(district):
    d = district
    build_day(d)
    _, everything = report.daily_report(d.district, DAY, now=NOW)
    units, part = report.daily_report(d.township_a, DAY, now=NOW)
    assert {u.id for u in units} == {d.township_a.id, d.community_a.id, d.compound_a.id, d.grid_a.id}
    for u in units:
        assert part[u.id].as_dict() == everything[u.id].as_dict()


def test_the_day_before_and_a_range_of_days(district):
    d = district
    build_day(d)
    _, before = report.daily_report(d.district, YESTERDAY, now=NOW)
    top = before[d.district.id]
    assert (top.pushed, top.unrouted, top.verified, top.transferred_out) == (4, 1, 1, 1)
    _, both = report.report(d.district, YESTERDAY, DAY, now=NOW)
    _, today = report.daily_report(d.district, DAY, now=NOW)
    for u in load_units(d.district.path):
        t, y, r = today[u.id], before[u.id], both[u.id]
        assert r.pushed == t.pushed + y.pushed and r.verified == t.verified + y.verified, u.name
        assert r.transferred_in == t.transferred_in + y.transferred_in
        assert r.overdue == t.overdue  # a snapshot at the end of the range


def test_overdue_is_the_state_at_the_end_of_a_past_day(district):
    d = district
    b = Builder(d, now=NOW)
    p = b.person(d.grid_a, at=local(YESTERDAY, 8))
    b.loop(p, d.grid_a, due_at=local(YESTERDAY, 12), created_at=local(YESTERDAY, 8), state=LoopState.REPORTED,
           reported_at=local(DAY, 9))
    _, before = report.daily_report(d.district, YESTERDAY, now=NOW)
    _, today = report.daily_report(d.district, DAY, now=NOW)
    assert before[d.grid_a.id].overdue == 1  # still open, and late, at midnight
    assert today[d.grid_a.id].overdue == 0  # reported this morning


def test_the_report_runs_a_fixed_number_of_queries(district):
    d = district
    build_day(d)
    with CaptureQueriesContext(connection) as small:
        report.daily_report(d.district, DAY, now=NOW)
    b = Builder(d, now=NOW)
    for _ in range(20):
        p = b.person(d.grid_b, at=local(DAY, 9))
        b.verify(p, "no_control_needed", "none", at=local(DAY, 10))
        b.transfer(p, d.grid_b, d.grid_a, at=local(DAY, 11))
    with CaptureQueriesContext(connection) as large:
        report.daily_report(d.district, DAY, now=NOW)
    # one query more per section other apps add (checkpoints: 卡口, 报备, 排查)
    assert len(small.captured_queries) == len(large.captured_queries) <= 8 + len(report._SECTIONS)


def test_the_series_by_day(district):
    d = district
    build_day(d)
    series = report.by_day(d.district, DAY - dt.timedelta(days=3), DAY)
    assert [s["day"] for s in series] == [DAY - dt.timedelta(days=i) for i in (3, 2, 1, 0)]
    assert [(s["pushed"], s["verified"], s["transferred"]) for s in series] == [
        (0, 0, 0), (0, 0, 0), (4, 1, 1), (10, 6, 3)]
    part = report.by_day(d.township_b, DAY, DAY)
    assert part[0]["pushed"] == 3  # grid B twice, and the transfer that ended in village B


# ------------------------------------------------------------------------------------------ Excel


def test_the_excel_daily_report_opens_and_its_totals_match(district):
    d = district
    build_day(d)
    data = report.report_workbook(d.district, DAY, now=NOW)
    ws = load_workbook(io.BytesIO(data)).active
    assert ws["A1"].value == "尧都区大数据推送人员核查日报（2022年3月4日）"
    merged = {str(r) for r in ws.merged_cells.ranges}
    width = 2 + len(report.flat_header())
    assert f"A1:{get_column_letter(width)}1" in merged
    assert {"A3:A4", "B3:B4"} <= merged
    groups = [ws.cell(3, c).value for c in range(1, width + 1) if ws.cell(3, c).value]
    assert groups == ["序号", "单位", "推送", "核查", "转办", "核查结果", "管控措施", *(s.group for s in report._SECTIONS)]
    assert ws.cell(4, 3).value == "推送人数" and ws.cell(3, 3).border.left.style == "thin"

    _, totals = report.daily_report(d.district, DAY, now=NOW)
    rows = {}
    for r in range(5, ws.max_row + 1):
        rows[ws.cell(r, 2).value or ws.cell(r, 1).value] = (r, [ws.cell(r, c).value for c in range(3, width + 1)])
    assert rows["合计"][1] == report.values_of(totals[d.district.id])
    for unit in (d.office, d.township_a, d.township_b, d.community_a, d.village_b):
        line, values = rows[unit.name]
        assert values == report.values_of(totals[unit.id]), unit.name
        assert ws.cell(line, 2).alignment.indent == unit.level - 2
    assert d.compound_a.name not in rows  # the district's report goes down to communities and villages
    assert d.department.name not in rows  # a department with nothing to report is left out
    # The unit rows add up to the totals: the top-level rows are the command office and its townships.
    office_line = rows[d.office.name][1]
    assert office_line == rows["合计"][1]


def test_a_range_report_is_titled_as_a_summary(district):
    title = report.report_title(district.district, dt.date(2022, 3, 1), DAY)
    assert title == "尧都区大数据推送人员核查汇总表（2022年3月1日—3月4日）"
    data = report.report_workbook(district.township_a, dt.date(2022, 3, 1), DAY, now=NOW)
    ws = load_workbook(io.BytesIO(data)).active
    names = [ws.cell(r, 2).value for r in range(5, ws.max_row)]
    assert names == [district.community_a.name]  # a township's report lists its communities and villages


@pytest.mark.parametrize("root", ["grid_a", "community_a"])
def test_small_units_get_a_report_too(district, root):
    d = district
    build_day(d)
    unit = getattr(d, root)
    data = report.report_workbook(unit, DAY, now=NOW)
    ws = load_workbook(io.BytesIO(data)).active
    _, totals = report.daily_report(unit, DAY, now=NOW)
    last = [ws.cell(ws.max_row, c).value for c in range(3, 3 + len(report.flat_header()))]
    assert ws.cell(ws.max_row, 1).value == "合计" and last == report.values_of(totals[unit.id])


# ------------------------------------------------------------------------------------------ end to end


def test_end_to_end_the_report_at_every_level_equals_a_recount(district):
    """A list is uploaded, imported and routed by the real pipeline; people are verified, transferred (one
    accepted, one returned, one sent back: a ping-pong), one is dispatched from the queue; then the day's
    report at every unit equals a recount from the raw rows."""
    from bihuan.pushes import importing
    from bihuan.pushes.actions import (
        do_accept_transfer,
        do_dispatch,
        do_record_call,
        do_return_transfer,
        do_save_verification,
        do_transfer,
    )
    from bihuan.testing import make_id_number

    d = district
    u = d.users
    ids = [make_id_number(dt.date(1980 + i, 1, 1 + i)) for i in range(8)]
    rows = [
        ("王建国", d.resident_a.reveal_id_number(), "13812345678", "无"),  # a registered resident → grid A
        ("甲", ids[0], "13900000001", "锦悦小区3号楼1单元101"),  # → grid A (the building)
        ("乙", ids[1], "13900000002", "鼓楼社区"),  # → community A
        ("丙", ids[2], "13900000003", "鼓楼社区"),
        ("丁", ids[3], "13900000004", "东羊村一组12号"),  # → village B
        ("戊", ids[4], "13900000005", "火星基地"),  # → the command office's queue
        ("己", ids[5], "13900000006", "月球背面"),  # → the queue, then dispatched
        ("庚", ids[6], "13900000007", "鼓楼社区"),
        ("甲", ids[0], "13900000001", "锦悦小区3号楼1单元101"),  # a duplicate row
        ("辛", "123", "", ""),  # rejected: a bad ID number and neither a phone nor an address
    ]
    text = "姓名,身份证号,手机号,来源地,抵达时间,现住址\n" + "\n".join(
        f"{n},{i},{p},上海市浦东新区,{timezone.localdate():%Y-%m-%d},{a}" for n, i, p, a in rows) + "\n"
    batch = importing.create_batch(text.encode("gb18030"), "推送.csv", source="省大数据中心", unit=d.office,
                                   acting_user=u["office"])
    assert (batch.rows_total, batch.imported, batch.merged, batch.rejected) == (10, 8, 1, 1)
    people = {p.name: p for p in PushedPerson.objects.select_related("unit")}
    assert people["王建国"].unit == d.grid_a and people["戊"].unit == d.office

    def ver(name: str) -> Verification:
        return Verification.objects.get(person=people[name])

    do_save_verification(ver("王建国"), {"outcome": "no_control_needed", "basis": "未到过风险区"},
                         acting_user=u["grid_a"])
    do_save_verification(ver("甲"), {"outcome": "new_control", "measure": "home_isolation",
                                     "override_reason": "居家条件符合"}, acting_user=u["grid_a"])
    do_record_call(ver("乙"), "no_answer", acting_user=u["community_a"])
    do_save_verification(ver("乙"), {"outcome": "no_such_person"}, acting_user=u["community_a"])
    # 丙 lives in village B: the verification transfers them, and village B signs for them.
    do_save_verification(ver("丙"), {"outcome": "elsewhere_in_district", "target_unit": d.village_b.pk},
                         acting_user=u["community_a"])
    do_accept_transfer(Transfer.objects.get(person=people["丙"]), acting_user=u["village_b"])
    do_save_verification(ver("丙"), {"outcome": "left", "left_date": timezone.localdate().isoformat(),
                                     "left_to": "太原"}, acting_user=u["village_b"])
    # 庚 is sent to village B, which returns them.
    do_return_transfer(do_transfer(people["庚"], d.village_b, "疑似住东羊村", acting_user=u["community_a"]),
                       "查无此人", acting_user=u["village_b"])
    # 丁 goes to community A and back: a ping-pong.
    home = people["丁"].unit
    assert home.path.startswith(d.village_b.path)
    first = do_transfer(PushedPerson.objects.get(pk=people["丁"].pk), d.community_a, "住鼓楼社区",
                        acting_user=u["village_b"])
    do_accept_transfer(first, acting_user=u["community_a"])
    back = do_transfer(PushedPerson.objects.get(pk=people["丁"].pk), home, "实际住东羊村",
                       acting_user=u["community_a"])
    assert back.ping_pong
    do_dispatch(PushedPerson.objects.get(pk=people["己"].pk), d.community_a, acting_user=u["office"])
    # One verification is late.
    Loop.objects.filter(kind=VERIFICATION, subject_id=people["己"].pk).update(due_at=timezone.now()
                                                                              - dt.timedelta(hours=1))

    now, day = timezone.now(), timezone.localdate()
    units, totals = report.daily_report(d.district, day, now=now)
    for unit in Unit.objects.all():
        assert totals[unit.id].as_dict() == recount(unit, day, now, d.office), unit.name
    top = totals[d.district.id]
    assert (top.pushed, top.unrouted, top.overdue) == (8, 1, 1)
    assert (top.transferred_out, top.transferred_in, top.accepted, top.returned, top.ping_pong) == (4, 4, 2, 1, 1)
    assert top.routed["manual"] == 1 and top.routed["resident"] == 1
    assert top.verified == 4 and top.measures["home_isolation"] == 1
