"""The control-and-care dashboard as a conventional daily table (分级分类管控日报) in .xlsx: a title row, merged
header groups, one row per unit down to a level (indented), a totals row. Only counts: no personal data."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from bihuan.core import excel
from bihuan.register.coverage import UnitRow
from bihuan.register.models import Unit, UnitKind

from . import dashboard
from .dashboard import ControlCounts, TypeInfo


def columns(types: list[TypeInfo]) -> list[tuple[str, list[tuple[str, object]]]]:
    """The header groups and columns: (group label, [(column label, getter(counts))]). Chinese, whatever the
    UI language: the table is a Chinese document."""

    def under(code: str):
        return lambda c: c.under.get(code, 0)

    def attr(name: str):
        return lambda c: getattr(c, name)

    return [
        ("在管人数", [*[(t.name_zh, under(t.code)) for t in types], ("合计", attr("open_cases")),
                      ("待解除", attr("release_proposed")), ("今日期满", attr("ending"))]),
        ("健康打卡", [("应打卡人数", attr("checkin_people")), ("应报次数", attr("checkins_due")),
                      ("已报次数", attr("checkins_done")), ("未报次数", attr("checkins_missing")),
                      ("体温 / 症状异常人数", attr("abnormal"))]),
        ("上门核酸", [("应采样", attr("tests_due")), ("已采样", attr("tests_done")),
                      ("阳性", attr("tests_positive")), ("未采样", attr("tests_missed"))]),
        ("服务需求", [("待办", attr("services_open")), ("超时", attr("services_overdue")),
                      ("待确认", attr("services_unconfirmed"))]),
    ]


def flat_header(types: list[TypeInfo]) -> list[str]:
    """``在管人数/集中隔离`` … for tests and readers that want one header row."""
    return [f"{g}/{label}" for g, cols in columns(types) for label, _get in cols]


def values_of(types: list[TypeInfo], counts: ControlCounts) -> list[int]:
    return [get(counts) for _g, cols in columns(types) for _label, get in cols]


def rows_of(units: list[UnitRow], totals: dict[int, ControlCounts], root_id: int, to_level: int
            ) -> list[tuple[UnitRow, ControlCounts]]:
    """Rows under the root in tree order down to ``to_level``; departments with nothing under control are
    left out (cases hang below the command office)."""
    return [(u, totals[u.id]) for u in units if u.id != root_id and u.level <= to_level
            and not (u.kind == UnitKind.DEPARTMENT and totals[u.id].is_zero)]


def title(root: Unit, day: dt.date) -> str:
    return f"{root.name}分级分类管控日报（{day.year}年{day.month}月{day.day}日）"


HEAD_ROW, SUB_ROW = excel.HEAD_ROW, excel.SUB_ROW  # the header rows; data starts below them


def dashboard_workbook(root: Unit, day: dt.date | None = None, *, to_level: int | None = None,
                       now: dt.datetime | None = None) -> bytes:
    day = day or timezone.localdate()
    units, _own, totals, types = dashboard.collect(root, day, now=now)
    to_level = to_level or dashboard.default_depth(root)
    stamp = timezone.localtime(now or timezone.now())
    rows = [excel.TableRow(unit.name, max(0, unit.level - root.level - 1), unit.level <= root.level + 1, counts)
            for unit, counts in rows_of(units, totals, root.id, to_level)]
    return excel.unit_table_workbook(sheet="日报", title=title(root, day), unit_name=root.name,
                                     stamp=f"统计时间：{stamp:%Y-%m-%d %H:%M}", groups=columns(types), rows=rows,
                                     totals=totals[root.id])
