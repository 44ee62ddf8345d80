"""Risk-area lists in and out of Excel (风险区名单).

Format
------
One sheet (the first that has the headers; .xlsx, .xls or .csv) with the columns 风险等级, 地区编码, 地区名称,
生效日期, 失效日期 (a title row above the header row is tolerated; headers match after removing spaces and a
hint in brackets). 风险等级 is 高 / 中 / 低 (or 高风险, 高风险区, high …); 地区编码 is an optional GB/T 2260 code
(6, 9 or 12 digits, as text); 地区名称 is required (``上海市浦东新区``); 生效日期 is required and 失效日期 optional
(the first day the area no longer applies). Dates may be date cells, ``2022-06-28``, ``2022/6/28``,
``2022年6月28日`` or ``20220628``.

Import (``import_risk_areas``)
------------------------------
Every row is checked first; any error and nothing is written — the errors come back per row
(``RowError``: sheet, row number as Excel shows it, column header, reason). Otherwise all areas are added in one
transaction with one audit row ``policy.risk_area.import`` (counts and the file name). A row equal to an area
already in force with the same dates is left as it is (so importing the same file twice changes nothing); the
same row twice in one file is an error. ``Perm.EDIT_POLICY`` is required.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from openpyxl.utils.datetime import from_excel

from bihuan.core import audit, excel
from bihuan.core.roles import Perm
from bihuan.core.tabular import (
    BadCell,
    UnreadableFile,
    cell_text,
    digits_text,
    header_key,
    is_blank,
    read_sheets,
)
from bihuan.register.access import require
from bihuan.register.workbook import RowError

from .models import RiskArea, RiskLevel
from .validation import PolicyError, clean_area

HEADER_SEARCH_ROWS = 10
MAX_ROWS = 20_000

# key, header, required, aliases, note
COLUMNS = (
    ("level", "风险等级", True, ("风险级别", "等级", "级别"), "高 / 中 / 低"),
    ("area_code", "地区编码", False, ("区划代码", "行政区划代码", "编码", "代码"), "可空；GB/T 2260 代码，6、9 或 12 位，请设为文本格式"),
    ("name", "地区名称", True, ("地区", "名称", "风险区", "区域", "风险区域"), "必填，如 上海市浦东新区"),
    ("effective_from", "生效日期", True, ("开始日期", "公布日期", "起始日期"), "必填，如 2022-06-28"),
    ("effective_to", "失效日期", False, ("解除日期", "结束日期", "截止日期"),
     "可空；当天起不再是风险区（解除日期）"),
)
HEADERS = {key: header for key, header, *_ in COLUMNS}
_LEVELS = {"高": RiskLevel.HIGH, "中": RiskLevel.MEDIUM, "低": RiskLevel.LOW,
           "high": RiskLevel.HIGH, "medium": RiskLevel.MEDIUM, "low": RiskLevel.LOW}
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$")


@dataclass
class RiskImportResult:
    file_name: str
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    unchanged: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _level(value: Any) -> str:
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", cell_text(value))).lower()
    text = re.sub(r"(风险)?(地区|区)?$", "", text)
    if text in _LEVELS:
        return _LEVELS[text]
    raise BadCell(f"“{cell_text(value)}”不是风险等级，应填 高 / 中 / 低 (must be 高, 中 or 低)")


def _date(value: Any, required: bool) -> dt.date | None:
    if is_blank(value):
        if required:
            raise BadCell("必填 (required)")
        return None
    bad = BadCell("无法识别的日期，请写成 2022-06-28 (cannot read this date; write it as 2022-06-28)")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not float(value).is_integer():
            raise bad
        number = int(value)
        if 19_000_101 <= number <= 29_991_231:
            value = str(number)
        elif 1 <= number <= 2_958_465:
            return from_excel(number).date()
        else:
            raise bad
    text = unicodedata.normalize("NFKC", str(value)).strip()
    match = _DATE.match(text) or re.match(r"^(\d{4})(\d{2})(\d{2})$", text)
    if not match:
        raise bad
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        raise BadCell("日期不存在 (no such date)") from None


def _find_header(rows) -> tuple[int, dict[str, int], list[RowError]] | None:
    """(header row number, key → column index, errors for missing required columns), or None."""
    spellings = {}
    for key, header, _required, aliases, _note in COLUMNS:
        for spelling in (header, *aliases):
            spellings[header_key(spelling)] = key
    required = {key for key, _h, req, *_ in COLUMNS if req}
    best = None
    for number, row in rows:
        found: dict[str, int] = {}
        for index, cell in enumerate(row):
            key = spellings.get(header_key(cell))
            if key is not None and key not in found:
                found[key] = index
        if required <= set(found):
            return number, found, []
        if found and (best is None or len(found) > len(best[1])):
            best = (number, found)
        if number >= HEADER_SEARCH_ROWS:
            break
    if best is None:
        return None
    number, found = best
    missing = [HEADERS[k] for k in HEADERS if k in required and k not in found]
    return number, found, [RowError("", number, h, "缺少这一列 (column missing)") for h in missing]


def read_rows(data: bytes, file_name: str) -> tuple[str, list[tuple[int, dict[str, Any]]], list[RowError]]:
    """(sheet name, [(row number, key → raw value)], errors) of the first sheet with the headers."""
    try:
        sheets = read_sheets(data, file_name)
        for title, rows in sheets:
            rows = iter(rows)
            head = []
            for item in rows:
                head.append(item)
                if len(head) >= HEADER_SEARCH_ROWS:
                    break
            found = _find_header(iter(head))
            if found is None:
                continue
            header_row, columns, errors = found
            if errors:
                return title, [], [RowError(title, e.row, e.field, e.reason) for e in errors]
            out = []
            for number, row in [*head, *rows]:
                if number <= header_row:
                    continue
                values = {key: (row[i] if i < len(row) else None) for key, i in columns.items()}
                if all(is_blank(v) for v in values.values()):
                    continue
                out.append((number, values))
                if len(out) > MAX_ROWS:
                    return title, [], [RowError(title, number, "", f"行数超过 {MAX_ROWS} (too many rows)")]
            return title, out, []
    except UnreadableFile as exc:
        return "", [], [RowError("", 0, "", str(exc))]
    headers = "、".join(HEADERS.values())
    return "", [], [RowError("", 0, "", f"找不到表头行（需要 {headers}）(no header row found)")]


def _key(values: dict) -> tuple:
    return (values["level"], values["area_code"], values["name"], values["effective_from"], values["effective_to"])


def import_risk_areas(data: bytes, file_name: str = "", *, acting_user, list_name: str = "") -> RiskImportResult:
    """Check every row, then add all areas in one transaction (or none: the errors say why)."""
    if acting_user is not None:
        require(acting_user, Perm.EDIT_POLICY)
    result = RiskImportResult(file_name=file_name or "risk-areas.xlsx")
    list_name = (list_name or file_name or "").strip()[: RiskArea._meta.get_field("list_name").max_length]
    sheet, rows, errors = read_rows(data, file_name)
    if errors:
        result.errors = errors
        return result
    if not rows:
        result.errors = [RowError(sheet, 0, "", "没有数据行 (no data rows)")]
        return result
    clean: list[tuple[int, dict]] = []
    seen: dict[tuple, int] = {}
    for number, raw in rows:
        values: dict[str, Any] = {"list_name": list_name}
        row_errors = []
        for key, parse in (("level", _level), ("area_code", lambda v: digits_text(v, 12)),
                           ("name", lambda v: cell_text(v, 200)),
                           ("effective_from", lambda v: _date(v, True)), ("effective_to", lambda v: _date(v, False))):
            try:
                values[key] = parse(raw.get(key))
            except BadCell as exc:
                row_errors.append(RowError(sheet, number, HEADERS[key], str(exc)))
        if row_errors:
            result.errors += row_errors
            continue
        try:
            values = clean_area(**values)
        except PolicyError as exc:
            result.errors.append(RowError(sheet, number, HEADERS.get(exc.field, exc.field), exc.message))
            continue
        key = _key(values)
        if key in seen:
            result.errors.append(RowError(sheet, number, HEADERS["name"], f"与第 {seen[key]} 行重复 (same as row {seen[key]})"))
            continue
        seen[key] = number
        clean.append((number, values))
    if result.errors:
        return result
    with transaction.atomic():
        if acting_user is not None:
            require(acting_user, Perm.EDIT_POLICY)
        existing = set()
        names = {v["name"] for _n, v in clean}
        for area in RiskArea.objects.filter(name__in=names):
            existing.add((area.level, area.area_code, area.name, area.effective_from, area.effective_to))
        new = [RiskArea(**v) for _n, v in clean if _key(v) not in existing]
        RiskArea.objects.bulk_create(new, batch_size=1000)
        result.created, result.unchanged = len(new), len(clean) - len(new)
        audit.record(actor=acting_user, action="policy.risk_area.import", target_type="policy.riskarea",
                     changes={"file": result.file_name, "list_name": list_name, "created": result.created,
                              "unchanged": result.unchanged})
    return result


def template_bytes() -> bytes:
    """An empty risk-area workbook with the headers, one example row and notes."""
    from openpyxl.comments import Comment

    wb = excel.workbook()
    ws = wb.active
    ws.title = "风险区名单"
    ws.append([header for _k, header, *_ in COLUMNS])
    excel.header_style(ws[1], fill=True)
    for cell, (_k, _h, required, _a, note) in zip(ws[1], COLUMNS, strict=True):
        cell.comment = Comment(("必填。" if required else "") + note, "闭环")
    ws.append(["高", "310115", "上海市浦东新区", "2022-06-01", ""])
    for row in ws.iter_rows(min_row=2, max_row=2):
        row[1].number_format = "@"
    excel.set_widths(ws, (10, 16, 30, 14, 14))
    return excel.to_bytes(wb)
