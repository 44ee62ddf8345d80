"""The control-and-care dashboard as a conventional daily table (分级分类管控日报) in .xlsx: a title row, merged
header groups, one row per unit down to a level (indented), a totals row. Only counts: no personal data."""

from __future__ import annotations

import datetime as dt
import io

from django.utils import timezone

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


HEAD_ROW, SUB_ROW = 3, 4  # the header rows; data starts below them


def dashboard_workbook(root: Unit, day: dt.date | None = None, *, to_level: int | None = None,
                       now: dt.datetime | None = None) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    day = day or timezone.localdate()
    units, _own, totals, types = dashboard.collect(root, day, now=now)
    to_level = to_level or dashboard.default_depth(root)
    rows = rows_of(units, totals, root.id, to_level)
    groups = columns(types)
    width = 2 + sum(len(cols) for _g, cols in groups)

    wb = Workbook()
    ws = wb.active
    ws.title = "日报"
    thin = Side(style="thin", color="000000")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    center = Alignment(horizontal="center", vertical="center", wrap_text=True)
    head_fill = PatternFill("solid", fgColor="DDEBF7")
    bold = Font(bold=True)

    ws.cell(1, 1, title(root, day)).font = Font(bold=True, size=16)
    ws.cell(1, 1).alignment = center
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    ws.row_dimensions[1].height = 30
    stamp = timezone.localtime(now or timezone.now())
    ws.cell(2, 1, f"填报单位：{root.name}")
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=min(width, 6))
    ws.cell(2, width - 5, f"统计时间：{stamp:%Y-%m-%d %H:%M}")
    ws.merge_cells(start_row=2, start_column=width - 5, end_row=2, end_column=width)
    ws.cell(2, width - 5).alignment = Alignment(horizontal="right")

    for col, label in ((1, "序号"), (2, "单位")):
        ws.cell(HEAD_ROW, col, label)
        ws.merge_cells(start_row=HEAD_ROW, start_column=col, end_row=SUB_ROW, end_column=col)
    col = 3
    for group, cols in groups:
        ws.cell(HEAD_ROW, col, group)
        ws.merge_cells(start_row=HEAD_ROW, start_column=col, end_row=HEAD_ROW, end_column=col + len(cols) - 1)
        for i, (label, _get) in enumerate(cols):
            ws.cell(SUB_ROW, col + i, label)
        col += len(cols)
    for r in (HEAD_ROW, SUB_ROW):
        ws.row_dimensions[r].height = 36 if r == SUB_ROW else 22
        for c in range(1, width + 1):
            cell = ws.cell(r, c)
            cell.font, cell.alignment, cell.fill, cell.border = bold, center, head_fill, border

    getters = [get for _g, cols in groups for _label, get in cols]
    line = SUB_ROW + 1
    for number, (unit, counts) in enumerate(rows, start=1):
        ws.cell(line, 1, number)
        ws.cell(line, 2, unit.name).alignment = Alignment(indent=max(0, unit.level - root.level - 1))
        if unit.level <= root.level + 1:
            ws.cell(line, 2).font = bold
        for i, get in enumerate(getters):
            ws.cell(line, 3 + i, get(counts))
        line += 1
    ws.cell(line, 1, "合计")
    ws.merge_cells(start_row=line, start_column=1, end_row=line, end_column=2)
    for i, get in enumerate(getters):
        ws.cell(line, 3 + i, get(totals[root.id]))
    for c in range(1, width + 1):
        ws.cell(line, c).font = bold
    ws.cell(line, 1).alignment = center
    for r in range(SUB_ROW + 1, line + 1):
        for c in range(1, width + 1):
            ws.cell(r, c).border = border
            if c >= 3:
                ws.cell(r, c).alignment = Alignment(horizontal="center")

    ws.column_dimensions["A"].width = 6
    ws.column_dimensions["B"].width = 30
    for c in range(3, width + 1):
        ws.column_dimensions[get_column_letter(c)].width = 9
    ws.freeze_panes = ws.cell(SUB_ROW + 1, 3)
    ws.print_title_rows = f"{HEAD_ROW}:{SUB_ROW}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
