"""The one writer of the workbooks and CSV files the app makes (openpyxl), in one place: no text from outside ever
reaches a spreadsheet as a formula, plus the look (header styles, borders, column widths, title rows) and the
conventional per-unit daily table (日报) of the dashboards' exports.

Formula injection (OWASP "CSV injection"): a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is written with a leading apostrophe (``'=HYPERLINK(…)``), so Excel, WPS and LibreOffice show it as text and
never evaluate it; numbers, dates and booleans stay what they are. The guard sits where openpyxl binds every cell
value (``Cell._bind_value``, used by normal and write-only sheets alike), installed when this module is imported
(``core.apps`` imports it at start), so no writer can forget it. A formula the app writes on purpose is a
``Formula("=SUM(B2:B9)")``. Make workbooks with ``workbook()``, CSV with ``csv_writer()``, bytes with
``to_bytes()``; the tabular readers drop the apostrophe again (``core.tabular.cell_text``), so an export reads back
as it was.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

# Characters that make a spreadsheet read a cell as a formula (OWASP CSV injection guidance).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Formula(str):
    """A formula the app writes itself (``Formula("=SUM(B2:B9)")``): the only text written as a formula."""


def neutral(value):
    """``value`` safe for a spreadsheet cell: text that starts like a formula gets a leading apostrophe, control
    characters a workbook cannot hold (openpyxl refuses them: a 500 for a title typed with one) are dropped;
    numbers, dates, booleans, ``None`` and ``Formula`` pass unchanged."""
    if isinstance(value, str) and not isinstance(value, Formula):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if value[:1] in FORMULA_STARTS:
            return "'" + value
    return value


def _install_guard() -> None:
    """Route every cell value openpyxl binds through ``neutral`` (once per process)."""
    if getattr(Cell._bind_value, "_bihuan_guard", False):
        return
    original = Cell._bind_value

    def _bind_value(self, value):
        original(self, neutral(value))

    _bind_value._bihuan_guard = True
    Cell._bind_value = _bind_value


_install_guard()


def workbook(*, write_only: bool = False) -> Workbook:
    """A new workbook (every workbook the app makes comes from here)."""
    return Workbook(write_only=write_only)


class _NeutralWriter:
    def __init__(self, writer):
        self._writer = writer

    def writerow(self, row):
        return self._writer.writerow([neutral(v) for v in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def csv_writer(stream, **kwargs) -> _NeutralWriter:
    """``csv.writer(stream)`` whose every cell goes through ``neutral`` (the one CSV writer)."""
    return _NeutralWriter(csv.writer(stream, **kwargs))


HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
THIN = Side(style="thin", color="000000")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)


def to_bytes(wb: Workbook) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def set_widths(ws, widths: Iterable[float], first: int = 1) -> None:
    """Column widths from column ``first`` on (1 = A)."""
    for index, width in enumerate(widths, start=first):
        ws.column_dimensions[get_column_letter(index)].width = width


def title_row(ws, text: str, size: int = 13) -> None:
    """Append a one-cell title row in bold."""
    ws.append([text])
    ws.cell(ws.max_row, 1).font = Font(bold=True, size=size)


def header_style(cells: Iterable, *, fill: bool = False, center: bool = False) -> None:
    """Bold header cells, optionally shaded and centred."""
    for cell in cells:
        cell.font = HEADER_FONT
        if fill:
            cell.fill = HEADER_FILL
        if center:
            cell.alignment = Alignment(horizontal="center")


@dataclass(frozen=True)
class TableRow:
    name: str
    indent: int
    bold: bool
    counts: object


Groups = Sequence[tuple[str, Sequence[tuple[str, Callable[[object], object]]]]]

HEAD_ROW, SUB_ROW = 3, 4  # the header rows of a unit table; data starts below them


def unit_table_workbook(*, sheet: str, title: str, unit_name: str, stamp: str, groups: Groups,
                        rows: Iterable[TableRow], totals: object) -> bytes:
    """A conventional daily table: a merged title row, 填报单位 and ``stamp`` (right) on row 2, merged header
    groups (序号 / 单位 / each group's columns), one row per unit, a totals row (合计), borders everywhere,
    landscape and fitted to the page width. ``groups`` is [(group label, [(column label, getter(counts))])]."""
    width = 2 + sum(len(cols) for _g, cols in groups)
    wb = workbook()
    ws = wb.active
    ws.title = sheet

    ws.cell(1, 1, title).font = Font(bold=True, size=16)
    ws.cell(1, 1).alignment = CENTER
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    ws.row_dimensions[1].height = 30
    ws.cell(2, 1, f"填报单位：{unit_name}")
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=min(width, 6))
    right = max(1, width - 5)
    ws.cell(2, right, stamp)
    ws.merge_cells(start_row=2, start_column=right, end_row=2, end_column=width)
    ws.cell(2, right).alignment = Alignment(horizontal="right")

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
            cell.font, cell.alignment, cell.fill, cell.border = HEADER_FONT, CENTER, HEADER_FILL, BORDER

    getters = [get for _g, cols in groups for _label, get in cols]
    line = SUB_ROW + 1
    for number, row in enumerate(rows, start=1):
        ws.cell(line, 1, number)
        ws.cell(line, 2, row.name).alignment = Alignment(indent=row.indent)
        if row.bold:
            ws.cell(line, 2).font = HEADER_FONT
        for i, get in enumerate(getters):
            ws.cell(line, 3 + i, get(row.counts))
        line += 1
    ws.cell(line, 1, "合计")
    ws.merge_cells(start_row=line, start_column=1, end_row=line, end_column=2)
    for i, get in enumerate(getters):
        ws.cell(line, 3 + i, get(totals))
    for c in range(1, width + 1):
        ws.cell(line, c).font = HEADER_FONT
    ws.cell(line, 1).alignment = CENTER
    for r in range(SUB_ROW + 1, line + 1):
        for c in range(1, width + 1):
            ws.cell(r, c).border = BORDER
            if c >= 3:
                ws.cell(r, c).alignment = Alignment(horizontal="center")

    set_widths(ws, [6, 30] + [9] * (width - 2))
    ws.freeze_panes = ws.cell(SUB_ROW + 1, 3)
    ws.print_title_rows = f"{HEAD_ROW}:{SUB_ROW}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    return to_bytes(wb)
