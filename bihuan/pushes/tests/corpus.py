"""A corpus of messy pushed lists, as they arrive: GBK, UTF-8 with BOM and GB18030 CSV, .xlsx, .xls and a web
page named .xls, with
title rows, blank lines, renamed and missing columns, full-width digits, 15-digit and Excel-mangled ID
numbers, phones with +86 and dashes, Chinese, slashed and serial dates, and duplicate rows.

Each builder writes one file into a folder and returns a ``CorpusFile`` that says, for every row, the result
and the reason the import must give, and which clear values (ID numbers, phones) are in the file — so the
tests can check that none of them is ever stored or logged in clear.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from bihuan.core.personal import id_checksum, normalize_id_number
from bihuan.core.tabular import MANGLED
from bihuan.pushes.dedupe import BY_ID, BY_NAME_BIRTH, BY_PHONE
from bihuan.pushes.normalize import (
    BAD_ARRIVAL,
    BAD_PHONE,
    FIRST_PHONE,
    ID_TO_FIX,
    NO_NAME,
    NO_PHONE,
    UNIDENTIFIABLE,
)
from bihuan.testing import make_id_number

IMPORTED, MERGED, REJECTED = "imported", "merged", "rejected"
CHECKSUM = "身份证号校验位错误"
# A broken ID number with a usable phone: imported as "ID to fix", verified by phone.
FIX_MANGLED = f"{ID_TO_FIX}：{MANGLED}"
FIX_CHECKSUM = f"{ID_TO_FIX}：{CHECKSUM}"
ID_LENGTH = "身份证号应为 18 位"


@dataclass
class Expect:
    result: str
    reason: str = ""  # the exact reason; for ID errors the reason starts with it
    field: str = ""
    exact: bool = True


@dataclass
class CorpusFile:
    path: Path
    source: str
    expect: dict[int, Expect] = field(default_factory=dict)  # every data row: row number -> what it must give
    secrets: set[str] = field(default_factory=set)  # clear ID numbers and phones in the file
    people: dict[str, str] = field(default_factory=dict)  # label -> 18-digit ID number, for checks
    arrivals: dict[int, dt.date | None] = field(default_factory=dict)  # row -> expected arrival date

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    def count(self, result: str) -> int:
        return sum(1 for e in self.expect.values() if e.result == result)

    @property
    def rows(self) -> int:
        return len(self.expect)


class _Sheet:
    """Rows as they will be written, with the row numbers Excel shows, and what each data row must give."""

    def __init__(self, out: CorpusFile, above: list[list[Any]], header: list[str]):
        self.out = out
        self.cells: list[list[Any]] = [*above, header]
        self.header = header

    @property
    def next_number(self) -> int:
        return len(self.cells) + 1

    def blank(self) -> None:
        self.cells.append([])

    def add(self, values: dict[str, Any], expect: Expect, *, arrival: dt.date | None = None,
            secrets: tuple[str, ...] = ()) -> int:
        number = self.next_number
        self.cells.append([values.get(h, "") for h in self.header])
        self.out.expect[number] = expect
        self.out.secrets.update(s for s in secrets if s)
        if "arrival" in values or arrival is not None:
            self.out.arrivals[number] = arrival
        return number


def _phone(n: int) -> str:
    return f"1390{n:07d}"


def _bad_checksum(id_number: str) -> str:
    wrong = "0" if id_number[-1] != "0" else "1"
    assert id_checksum(id_number[:17]) != wrong
    return id_number[:17] + wrong


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() or c in "X" else c for c in text)


def _mangled(id_number: str) -> str:
    """What is left of an ID number after Excel kept 15 significant digits and it was saved as text."""
    value = id_number[:15] + "000"
    if id_checksum(value[:17]) == value[17]:  # by chance still valid: change the 15th digit
        value = id_number[:14] + str((int(id_number[14]) + 1) % 10) + "000"
    return value


def _old_id(birth: dt.date, serial: int) -> tuple[str, str]:
    """A first-generation 15-digit number and its 18-digit form."""
    old = f"141002{birth:%y%m%d}{serial:03d}"
    return old, normalize_id_number(old)


def _write_csv(path: Path, cells: list[list[Any]], encoding: str) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in cells:
        writer.writerow(["" if v is None else v for v in row])
    path.write_bytes(buffer.getvalue().encode(encoding))


# --- GBK CSV: the classic export from the provincial platform ---------------------------------------------

GBK_HEADER = ["序号", "姓名", "身份证号", "手机号", "来源地", "途经地", "抵达时间", "现住址", "所属乡镇（街道）",
              "所属社区（村）"]


def gbk_csv(folder: Path, today: dt.date) -> CorpusFile:
    out = CorpusFile(folder / "推送名单-省平台-GBK.csv", "省大数据中心")
    sheet = _Sheet(out, [["尧都区大数据推送人员名单（2022年3月4日）"], []], GBK_HEADER)
    ids = {k: make_id_number(b, s) for k, b, s in (
        ("zhang", dt.date(1990, 1, 1), "M"), ("li", dt.date(1985, 6, 15), "F"), ("wang", dt.date(1972, 11, 30), "M"),
        ("zhao", dt.date(2001, 2, 28), "F"), ("sun", dt.date(1964, 8, 8), "M"), ("zhou", dt.date(1995, 12, 1), "F"),
        ("wu", dt.date(1988, 3, 3), "M"))}
    out.people.update(ids)
    old, old18 = _old_id(dt.date(1968, 4, 5), 123)
    out.people["chen"] = old18
    zhang = sheet.add({"序号": 1, "姓名": "张伟", "身份证号": ids["zhang"], "手机号": "+86 139-0000-0001",
                       "来源地": "上海市浦东新区", "途经地": "北京市", "抵达时间": "2022年3月4日",
                       "现住址": "锦悦小区3号楼2单元401", "所属乡镇（街道）": "解放路街道", "所属社区（村）": "鼓楼社区"},
                      Expect(IMPORTED), arrival=dt.date(2022, 3, 4), secrets=(ids["zhang"], _phone(1)))
    sheet.add({"序号": 2, "姓名": "陈 建 华", "身份证号": old, "手机号": "0086 139 0000 0002", "来源地": "西安市",
               "抵达时间": "2022/3/4", "现住址": "鼓楼社区南街5号"},
              Expect(IMPORTED), arrival=dt.date(2022, 3, 4), secrets=(old, old18, _phone(2)))
    sheet.add({"序号": 3, "姓名": "李娜", "身份证号": _fullwidth(ids["li"]), "手机号": _fullwidth(_phone(3)),
               "来源地": "太原市", "抵达时间": "2022-03-05 14:30", "现住址": "锦悦小区1号楼"},
              Expect(IMPORTED), arrival=dt.date(2022, 3, 5), secrets=(ids["li"], _phone(3)))
    sheet.add({"序号": 4, "姓名": "王强", "身份证号": "1.41002E+17", "手机号": _phone(4), "抵达时间": "2022.3.4"},
              Expect(IMPORTED, FIX_MANGLED), secrets=(_phone(4),))
    sheet.blank()
    sheet.add({"序号": 5, "姓名": "张伟", "身份证号": ids["zhang"], "手机号": _phone(1), "来源地": "上海市浦东新区",
               "抵达时间": "2022年3月4日"},
              Expect(MERGED, f"与第 {zhang} 行同一人（{BY_ID}）"), arrival=dt.date(2022, 3, 4))
    sheet.add({"序号": 6, "姓名": "", "身份证号": ids["wang"], "手机号": _phone(6)},
              Expect(REJECTED, NO_NAME, "name"), secrets=(ids["wang"], _phone(6)))
    bad = _bad_checksum(ids["zhao"])
    sheet.add({"序号": 7, "姓名": "赵敏", "身份证号": bad, "手机号": _phone(7)},
              Expect(IMPORTED, FIX_CHECKSUM, exact=False), secrets=(bad, _phone(7)))
    sheet.add({"序号": 8, "姓名": "钱多多", "身份证号": "", "手机号": "", "来源地": "郑州市"},
              Expect(REJECTED, UNIDENTIFIABLE, "id_number"))
    mangled = _mangled(ids["sun"])
    sheet.add({"序号": 9, "姓名": "孙立", "身份证号": mangled, "手机号": _phone(9)},
              Expect(IMPORTED, FIX_MANGLED), secrets=(mangled, _phone(9)))
    sheet.add({"序号": 10, "姓名": "周芳", "身份证号": ids["zhou"], "手机号": "", "抵达时间": "44621"},
              Expect(IMPORTED, NO_PHONE), arrival=dt.date(2022, 3, 1), secrets=(ids["zhou"],))
    sheet.add({"序号": 11, "姓名": "张伟", "身份证号": "", "手机号": "139 0000 0001", "抵达时间": "3月4日"},
              Expect(MERGED, f"与第 {zhang} 行同一人（{BY_PHONE}）"), arrival=_short_date(3, 4, today))
    sheet.add({"序号": 12, "姓名": "吴磊", "身份证号": ids["wu"], "手机号": "12345", "抵达时间": "下周"},
              Expect(IMPORTED, f"{BAD_PHONE}；{BAD_ARRIVAL}"), arrival=None, secrets=(ids["wu"],))
    sheet.blank()
    sheet.blank()
    _write_csv(out.path, sheet.cells, "gbk")
    return out


def _short_date(month: int, day: int, today: dt.date) -> dt.date:
    value = dt.date(today.year, month, day)
    return value.replace(year=today.year - 1) if value > today + dt.timedelta(days=31) else value


# --- UTF-8 with BOM: renamed columns from the city's platform --------------------------------------------

BOM_HEADER = ["姓名", "证件号码", "联系电话", "出发地", "途经城市", "到达时间", "目的地址", "数据来源", "所属街道",
              "所属社区", "备注"]


def utf8_bom_csv(folder: Path, today: dt.date) -> CorpusFile:
    out = CorpusFile(folder / "city-push-utf8-bom.csv", "市疫情防控指挥部")
    sheet = _Sheet(out, [], BOM_HEADER)
    ids = {k: make_id_number(b, s) for k, b, s in (
        ("liu", dt.date(1979, 7, 7), "M"), ("huang", dt.date(1999, 9, 19), "F"), ("he", dt.date(1958, 5, 20), "M"),
        ("gao", dt.date(2010, 10, 10), "F"))}
    out.people.update(ids)
    spaced = f"{ids['liu'][:6]} {ids['liu'][6:14]} {ids['liu'][14:]}"
    liu = sheet.add({"姓名": " 刘洋 ", "证件号码": spaced, "联系电话": "139-0000-0101", "出发地": "广州市",
                     "途经城市": "武汉市、郑州市", "到达时间": "2022/3/4 10:30", "目的地址": "鼓楼社区北街8号",
                     "数据来源": "市公安局", "所属街道": "解放路街道", "所属社区": "鼓楼社区",
                     "备注": f"同行人电话 {_phone(199)}"},
                    Expect(IMPORTED), arrival=dt.date(2022, 3, 4), secrets=(ids["liu"], _phone(101), _phone(199)))
    sheet.add({"姓名": "黄丽", "证件号码": ids["huang"].lower() if ids["huang"].endswith("X") else ids["huang"],
               "联系电话": f"{_phone(102)}/{_phone(103)}", "出发地": "成都市", "到达时间": "2022-03-04",
               "目的地址": "锦悦小区2号楼"},
              Expect(IMPORTED, FIRST_PHONE), arrival=dt.date(2022, 3, 4),
              secrets=(ids["huang"], _phone(102), _phone(103)))
    sheet.add({"姓名": "何军", "证件号码": ids["he"][:17], "联系电话": _phone(104)},
              Expect(IMPORTED, f"{ID_TO_FIX}：{ID_LENGTH}", exact=False), secrets=(ids["he"][:17], _phone(104)))
    sheet.add({"姓名": "刘洋", "证件号码": ids["liu"], "联系电话": _phone(101), "到达时间": "2022.3.4"},
              Expect(MERGED, f"与第 {liu} 行同一人（{BY_ID}）"), arrival=dt.date(2022, 3, 4))
    sheet.add({"姓名": "高洁", "证件号码": ids["gao"], "联系电话": "", "到达时间": "2022年3月6日 8时30分"},
              Expect(IMPORTED, NO_PHONE), arrival=dt.date(2022, 3, 6), secrets=(ids["gao"],))
    sheet.add({"姓名": "匿名", "证件号码": "", "联系电话": "不详"}, Expect(REJECTED, UNIDENTIFIABLE, "id_number"))
    path_text = io.StringIO(newline="")
    writer = csv.writer(path_text, lineterminator="\n")
    for row in sheet.cells:
        writer.writerow(row)
    out.path.write_bytes(path_text.getvalue().encode("utf-8-sig"))
    return out


# --- GB18030: a county's list with no phone column and a rare character in a name ------------------------

GB18030_HEADER = ["姓名", "公民身份号码", "性别", "出生日期", "出发地", "返回日期", "居住地址", "所属乡镇", "所属村"]


def gb18030_csv(folder: Path, today: dt.date) -> CorpusFile:
    out = CorpusFile(folder / "county-gb18030.csv", "县大数据中心")
    sheet = _Sheet(out, [], GB18030_HEADER)
    ids = {k: make_id_number(b, s) for k, b, s in (("ji", dt.date(1983, 1, 23), "M"), ("ma", dt.date(1990, 2, 2), "F"))}
    out.people.update(ids)
    sheet.add({"姓名": "王𠮷", "公民身份号码": ids["ji"], "出发地": "天津市", "返回日期": "2022年3月3日",
               "居住地址": "东羊村一组", "所属乡镇": "屯里镇", "所属村": "东羊村"},
              Expect(IMPORTED, NO_PHONE), arrival=dt.date(2022, 3, 3), secrets=(ids["ji"],))
    sheet.add({"姓名": "马兰", "公民身份号码": ids["ma"], "返回日期": 44623},
              Expect(IMPORTED, NO_PHONE), arrival=dt.date(2022, 3, 3), secrets=(ids["ma"],))
    sheet.blank()
    no_id = sheet.add({"姓名": "牛大壮", "公民身份号码": "", "性别": "男", "出生日期": "1960年5月1日",
                       "返回日期": "2022/3/2"},
                      Expect(IMPORTED, NO_PHONE), arrival=dt.date(2022, 3, 2))
    sheet.add({"姓名": "牛大壮", "公民身份号码": "", "性别": "男", "出生日期": "1960-05-01"},
              Expect(MERGED, f"与第 {no_id} 行同一人（{BY_NAME_BIRTH}）"))
    sheet.add({"姓名": "羊小羊", "公民身份号码": ""}, Expect(REJECTED, UNIDENTIFIABLE, "id_number"))
    _write_csv(out.path, sheet.cells, "gb18030")
    return out


# --- .xlsx: numbers as numbers, date cells, headers with colons, spaces and brackets ---------------------

XLSX_HEADER = ["编号", "姓名：", "身 份 证 号", "手机号码", "来源地", "途经地", "抵达日期", "详细地址",
               "所属乡镇（街道）", "所属社区(村)"]


def xlsx(folder: Path, today: dt.date) -> CorpusFile:
    out = CorpusFile(folder / "推送名单.xlsx", "省大数据中心")
    sheet = _Sheet(out, [["大数据推送名单"], ["推送日期：2022-03-04", None, None, "请于24小时内完成核查"]], XLSX_HEADER)
    ids = {k: make_id_number(b, s) for k, b, s in (
        ("yang", dt.date(1991, 4, 4), "M"), ("xu", dt.date(1987, 7, 17), "F"), ("zhu", dt.date(1970, 1, 9), "M"),
        ("hu", dt.date(2003, 3, 13), "F"), ("guo", dt.date(1993, 12, 12), "M"))}
    out.people.update(ids)
    old, old18 = _old_id(dt.date(1955, 5, 5), 457)
    out.people["lin"] = old18
    yang = sheet.add({"编号": 1, "姓名：": "杨帆", "身 份 证 号": ids["yang"], "手机号码": int(_phone(201)),
                      "来源地": "北京市朝阳区", "抵达日期": dt.datetime(2022, 3, 4, 9, 15), "详细地址": "锦悦小区3号楼"},
                     Expect(IMPORTED), arrival=dt.date(2022, 3, 4), secrets=(ids["yang"], _phone(201)))
    sheet.add({"编号": 2, "姓名：": "徐静", "身 份 证 号": int(ids["xu"]) if ids["xu"][-1] != "X" else 1.41e17,
               "手机号码": _phone(202)},
              Expect(IMPORTED, FIX_MANGLED), secrets=(_phone(202),))
    sheet.add({"编号": 3, "姓名：": "朱明", "身 份 证 号": float(ids["zhu"][:17] + "0"), "手机号码": _phone(203)},
              Expect(IMPORTED, FIX_MANGLED), secrets=(_phone(203),))
    sheet.add({"编号": 4, "姓名：": "林老汉", "身 份 证 号": int(old), "手机号码": f"+86{_phone(204)}",
               "抵达日期": 44625},
              Expect(IMPORTED), arrival=dt.date(2022, 3, 5), secrets=(old, old18, _phone(204)))
    sheet.blank()
    sheet.add({"编号": 5, "姓名：": "胡月", "身 份 证 号": ids["hu"], "手机号码": None, "抵达日期": dt.date(2022, 3, 6)},
              Expect(IMPORTED, NO_PHONE), arrival=dt.date(2022, 3, 6), secrets=(ids["hu"],))
    sheet.add({"编号": 6, "姓名：": "杨帆", "身 份 证 号": ids["yang"], "手机号码": _phone(201)},
              Expect(MERGED, f"与第 {yang} 行同一人（{BY_ID}）"))
    sheet.add({"编号": 7, "姓名：": "郭涛", "身 份 证 号": _bad_checksum(ids["guo"]), "手机号码": _phone(207)},
              Expect(IMPORTED, FIX_CHECKSUM, exact=False), secrets=(_bad_checksum(ids["guo"]), _phone(207)))
    book = Workbook()
    ws = book.active
    ws.title = "推送名单"
    for row in sheet.cells:
        ws.append(row)
    book.save(out.path)
    return out


# --- .xls: the legacy format, written with xlwt -----------------------------------------------------------

XLS_HEADER = ["姓名", "身份证号码", "电话", "出发地", "到达时间", "居住地址", "推送来源"]


def xls(folder: Path, today: dt.date) -> CorpusFile:
    import xlwt

    out = CorpusFile(folder / "legacy.xls", "卫健委")
    sheet = _Sheet(out, [["2022年3月4日推送"]], XLS_HEADER)
    ids = {k: make_id_number(b, s) for k, b, s in (("song", dt.date(1982, 2, 14), "M"), ("tang", dt.date(1976, 6, 6), "F"))}
    out.people.update(ids)
    song = sheet.add({"姓名": "宋江", "身份证号码": ids["song"], "电话": int(_phone(301)), "出发地": "深圳市",
               "到达时间": dt.datetime(2022, 3, 4), "居住地址": "鼓楼社区", "推送来源": "市卫健委"},
              Expect(IMPORTED), arrival=dt.date(2022, 3, 4), secrets=(ids["song"], _phone(301)))
    sheet.add({"姓名": "唐糖", "身份证号码": int(ids["tang"]) if ids["tang"][-1] != "X" else 1.41e17,
               "电话": int(_phone(302))},
              Expect(IMPORTED, FIX_MANGLED), secrets=(_phone(302),))
    sheet.blank()
    sheet.add({"姓名": "宋江", "身份证号码": "", "电话": _phone(301), "到达时间": 44624.5},
              Expect(MERGED, f"与第 {song} 行同一人（{BY_PHONE}）"), arrival=dt.date(2022, 3, 4))
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet("Sheet1")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for r, row in enumerate(sheet.cells):
        for c, value in enumerate(row):
            if value in ("", None):
                continue
            if isinstance(value, dt.datetime | dt.date):
                ws.write(r, c, value, date_style)
            else:
                ws.write(r, c, value)
    book.save(str(out.path))
    return out


# --- a web page named .xls: what many government systems export; Excel opens it as a sheet -------------------

HTML_HEADER = ["序号", "姓名", "证件号码", "联系电话", "来源地区", "抵达日期", "现居住地址"]


def html_xls(folder: Path, today: dt.date) -> CorpusFile:
    out = CorpusFile(folder / "协查名单导出.xls", "市公安局")
    # Row 1: a heading above the table; row 2: a title cell merged across the table.
    sheet = _Sheet(out, [["协查推送名单"], ["导出时间：2022-03-05 08:00"]], HTML_HEADER)
    ids = {k: make_id_number(b, s) for k, b, s in (("guan", dt.date(1979, 9, 9), "M"), ("ma", dt.date(1996, 2, 2), "F"))}
    out.people.update(ids)
    guan = sheet.add({"序号": 1, "姓名": "关 羽", "证件号码": ids["guan"], "联系电话": f"139-{_phone(401)[3:7]}-{_phone(401)[7:]}",
                      "来源地区": "上海市浦东新区", "抵达日期": "2022-03-05", "现居住地址": "锦悦小区<br>5号楼1单元"},
                     Expect(IMPORTED), arrival=dt.date(2022, 3, 5), secrets=(ids["guan"], _phone(401)))
    sheet.add({"序号": 2, "姓名": "马超", "证件号码": _bad_checksum(ids["ma"]), "联系电话": _phone(402)},
              Expect(IMPORTED, FIX_CHECKSUM, exact=False), secrets=(_bad_checksum(ids["ma"]), _phone(402)))
    sheet.blank()
    sheet.add({"序号": 3, "姓名": "关羽", "证件号码": ids["guan"], "联系电话": _phone(401), "来源地区": "上海&amp;浦东"},
              Expect(MERGED, f"与第 {guan} 行同一人（{BY_ID}）"))
    heading, title, *table = sheet.cells

    def tr(row: list[Any]) -> str:
        # ID numbers as the exporters write them: text, kept so by Excel's number format for text.
        return "<tr>" + "".join(f"<td style=\"mso-number-format:'\\@'\">{'' if v is None else v}</td>" for v in row) + "</tr>"

    page = ('<html xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:x="urn:schemas-microsoft-com:office:excel">'
            '<head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head><body>'
            f"<h3>{heading[0]}</h3><table border=1>"
            f'<tr><td colspan="{len(HTML_HEADER)}" align="center">{title[0]}</td></tr>'
            + "\n".join(tr(row) for row in table) + "</table></body></html>")
    out.path.write_bytes(page.encode("gbk"))
    return out


BUILDERS = {"gbk_csv": gbk_csv, "utf8_bom_csv": utf8_bom_csv, "gb18030_csv": gb18030_csv, "xlsx": xlsx, "xls": xls,
            "html_xls": html_xls}


def simple_csv(path: Path, rows: list[dict[str, Any]], *, encoding: str = "utf-8-sig",
               header: list[str] | None = None) -> Path:
    """A plain list with the usual headers (for the tests that import the same people twice)."""
    header = header or ["姓名", "身份证号", "手机号", "来源地", "抵达时间", "现住址"]
    _write_csv(path, [header, *[[r.get(h, "") for h in header] for r in rows]], encoding)
    return path
