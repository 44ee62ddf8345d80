"""Workbooks are read by calamine when it is installed, and give exactly the values openpyxl gives: whole numbers
as int, empty cells as None, date cells as datetime, rows without their trailing empty cells, the row numbers
Excel shows, and only worksheets."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import xlsxwriter

from bihuan.core import excel, tabular
from bihuan.core.tabular import read_sheets

pytest.importorskip("python_calamine")


def messy_workbook() -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_numbers": False})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    minute = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    clock = book.add_format({"num_format": "hh:mm"})
    sheet = book.add_worksheet("推送人员")
    sheet.write_string(1, 1, "2022年3月5日名单")  # the data start at B2: rows and columns before it count
    sheet.write_row(2, 1, ["序号", "姓名", "身份证号", "手机号", "抵达时间", "备注"])
    sheet.write_number(3, 1, 1)
    sheet.write_string(3, 2, "张三")
    sheet.write_number(3, 3, 1.10101199e17)  # an ID number Excel turned into a number
    sheet.write_number(3, 4, 13800138000)
    sheet.write_datetime(3, 5, dt.datetime(2022, 3, 1), day)
    sheet.write_number(3, 6, 2.5)
    sheet.write_number(4, 1, 2)
    sheet.write_string(4, 2, " 李 四 ")
    sheet.write_string(4, 3, "110101199003077777")
    sheet.write_number(4, 4, 44621)  # a serial date in a number cell
    sheet.write_datetime(4, 5, dt.datetime(2022, 3, 1, 8, 30), minute)
    sheet.write_datetime(4, 6, dt.time(8, 30), clock)
    sheet.write_boolean(5, 7, True)
    sheet.write_number(7, 2, -3)  # a blank row above
    sheet.write_string(8, 1, "   ")
    sheet.write_number(9, 2, 123456789012345)  # 15 digits: still whole
    book.add_worksheet("空白")
    chart = book.add_chart({"type": "line"})
    chart.add_series({"values": "='推送人员'!$B$4:$B$5"})
    book.add_chartsheet("图").set_chart(chart)
    book.close()
    return out.getvalue()


def by_openpyxl(data: bytes) -> list:
    return [(name, [(n, tuple(v)) for n, v in rows]) for name, rows in tabular._openpyxl_sheets(data)]


def by_calamine(data: bytes) -> list:
    return [(name, list(rows)) for name, rows in tabular._calamine_sheets(tabular._calamine_book(data))]


def without_blank_rows(sheets: list) -> list:
    return [(name, [(n, v) for n, v in rows if any(not tabular.is_blank(x) for x in v)]) for name, rows in sheets]


def test_calamine_reads_the_values_openpyxl_reads():
    data = messy_workbook()
    fast = by_calamine(data)
    assert without_blank_rows(fast) == without_blank_rows(by_openpyxl(data))
    rows = dict(fast[0][1])
    assert rows[4] == (None, 1, "张三", 1.10101199e17, 13800138000, dt.datetime(2022, 3, 1), 2.5)
    assert rows[5][4:7] == (44621, dt.datetime(2022, 3, 1, 8, 30), dt.time(8, 30))
    assert rows[10] == (None, None, 123456789012345)
    assert [name for name, _rows in fast] == ["推送人员", "空白"]  # the chart sheet is no table


def test_read_sheets_uses_calamine_and_keeps_the_guards(monkeypatch):
    data = messy_workbook()
    used = []
    real = tabular._calamine_sheets
    monkeypatch.setattr(tabular, "_calamine_sheets", lambda book: used.append(1) or real(book))
    sheets = [(name, list(rows)) for name, rows in read_sheets(data, "名单.xlsx")]
    assert used and sheets[0][1][2] == (3, (None, "序号", "姓名", "身份证号", "手机号", "抵达时间", "备注"))


def test_a_workbook_calamine_cannot_open_is_read_by_openpyxl(monkeypatch):
    book = excel.workbook()
    book.active.append(["姓名", "手机号"])
    book.active.append(["张三", "13800138000"])
    data = excel.to_bytes(book)

    def broken(_data):
        raise ValueError("cannot open")

    monkeypatch.setattr(tabular, "_calamine_book", broken)
    rows = [list(r) for _name, r in read_sheets(data, "名单.xlsx")][0]
    assert rows == [(1, ("姓名", "手机号")), (2, ("张三", "13800138000"))]
