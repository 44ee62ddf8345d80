"""The register workbook: one .xlsx with the sheets 单位, 户 and 居民 — template, import and export.

Format
------
Three sheets with Chinese headers (``UNIT_COLUMNS``, ``HOUSEHOLD_COLUMNS``, ``RESIDENT_COLUMNS``) and a
说明 sheet that lists the allowed values. The header row is the first of the first ten rows that holds the
sheet's required headers (so a title row above it is tolerated); headers match after removing spaces, a hint
in brackets (half- or full-width: ``层级（1-6）``) and a ``*`` marker. Data rows follow; blank rows are skipped.
A missing sheet is an empty sheet (a file with only 居民 adds residents to existing households); other sheets
are ignored. Row numbers in errors are the row numbers Excel shows.

Import (``import_workbook``)
----------------------------
Every row is checked first; any error and nothing at all is written (the errors come back as
``(sheet, row, field, reason)``). Otherwise everything is written in one transaction, set-based
(``bulk_create`` in batches, one ``UPDATE`` per batch of households for their head and member count), with one
audit row ``register.import`` that holds the counts and the file name, never a personal value.

- 单位: the parent (上级单位编码) must be in the register or on an earlier row of the sheet; the level must be
  the parent's level + 1 and the kind must be one of that level's kinds. New units get the next free path
  under their parent (as ``actions._child_path`` does). A unit code already in the register is not moved:
  its name and aliases are updated, and a different level, kind or parent is an error.
- 户: the unit (normally a grid) must be in the register or the 单位 sheet. A household code already in the
  register, on the same unit, is left as it is (counted as unchanged; the import never edits households);
  on another unit it is an error.
- 居民: the household must be in the register or the 户 sheet. ID numbers are validated (GB 11643, 15-digit
  numbers are converted, full-width digits accepted); a number that Excel stored as a number has lost its last
  digits and is refused. Sex and birth date come from the ID number when blank and must agree when given.
  A resident whose ID number is already registered in the same household is left as it is (unchanged); in
  another household it is an error, as is the same ID number twice in the file. A resident without an ID
  number is matched by household, name and birth date instead.

So importing the same file twice changes nothing the second time. Every unit and household row must be inside
the acting user's part of the district (``access.scope_of``), and inside ``root_unit`` when one is given;
``Perm.IMPORT_REGISTER`` is required. ``acting_user=None`` is the system itself (loading a new district into an
empty register, as the ``create_*`` test helpers do): no permission or scope check, an audit row without actor.

Export (``export_workbook`` / ``write_workbook``)
-------------------------------------------------
A unit's subtree in the same format, with ID numbers and phones in full (text cells, so Excel keeps every
digit): a personal-data export, so it needs ``Perm.EXPORT_REGISTER`` and access to the unit, and it writes an
audit row ``register.export`` with the unit and the row counts. The exported unit's ancestors are not in the
file; the exported unit's 上级单位编码 is the code of its real parent, so importing the file into another
register needs that parent to exist there (an export of the whole district has a blank parent and imports into
an empty register). Rows are streamed (``values_list().iterator()``, openpyxl write-only mode), in a constant
number of queries.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Case, Count, IntegerField, Max, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import from_excel
from openpyxl.worksheet.datavalidation import DataValidation

from bihuan.core import audit, crypto, excel
from bihuan.core.bulk import update_rows
from bihuan.core.personal import birth_date_from_id, sex_from_id
from bihuan.core.pinyin import initials
from bihuan.core.roles import Perm
from bihuan.core.tabular import (  # noqa: F401 - re-exported: the register's reason for mangled numbers
    MANGLED,
    chunks,
)
from bihuan.core.tabular import BadCell as _Bad
from bihuan.core.tabular import cell_text as _text
from bihuan.core.tabular import digits_text as _digits_text
from bihuan.core.tabular import header_key as _header_key
from bihuan.core.tabular import id_number_cell as _id_number
from bihuan.core.tabular import is_blank as _is_blank
from bihuan.core.tabular import phone_cell as _phone

from .access import Scope, access_unit, require
from .models import (
    KEY_GROUPS,
    KINDS_BY_LEVEL,
    MAX_LEVEL,
    SEGMENT,
    Household,
    HouseholdKind,
    Relation,
    Resident,
    ResidentStatus,
    Sex,
    Unit,
    UnitKind,
    subtree_q,
)

logger = logging.getLogger(__name__)

SHEET_UNITS, SHEET_HOUSEHOLDS, SHEET_RESIDENTS, SHEET_NOTES = "单位", "户", "居民", "说明"
BATCH = 1000  # rows per INSERT
LOOKUP_BATCH = 500  # values per IN (...) lookup
HEADER_SEARCH_ROWS = 10
FLAGS = tuple(KEY_GROUPS)  # elderly_alone, disabled, pregnant, chronic_illness, infant


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    required: bool = False  # the column must be in the sheet (a value may still be optional)
    note: str = ""
    width: int = 14
    aliases: tuple[str, ...] = ()


UNIT_COLUMNS = (
    Column("code", "单位编码", True, "必填，全区唯一。系统中已有的编码只更新名称和别名", 16),
    Column("name", "单位名称", True, "必填", 24),
    Column("level", "层级", True, "必填，1–6：1 区，2 指挥部办公室/区直部门，3 乡镇街道，4 村社区，5 小区/村民小组，6 网格", 8),
    Column("kind", "类型", True, "必填，见“说明”表", 18),
    Column("parent_code", "上级单位编码", True,
           "层级 1 留空；上级单位须已在系统中，或写在本表前面的行", 16, ("上级编码",)),
    Column("aliases", "别名", False, "可空；多个别名用 | 或 、 分隔", 24),
)
HOUSEHOLD_COLUMNS = (
    Column("code", "户编码", True, "必填，全区唯一", 18),
    Column("unit_code", "所属单位编码", True, "必填，通常是网格的编码", 16, ("网格编码",)),
    Column("kind", "类型", True, "必填：城镇 / 农村", 8),
    Column("building", "楼栋", False, "城镇户", 8),
    Column("entrance", "单元", False, "城镇户", 8),
    Column("room", "房号", False, "城镇户", 8),
    Column("house_number", "门牌号", False, "农村户", 10),
    Column("address", "详细地址", True, "必填", 36, ("地址", "住址")),
)
RESIDENT_COLUMNS = (
    Column("household_code", "户编码", True, "必填；户须已在系统中或在“户”表中", 18),
    Column("name", "姓名", True, "必填", 12),
    Column("id_number", "身份证号", True,
           "18 位（15 位旧号自动升位）。请把本列设为“文本”格式，否则 Excel 会改成科学计数法并丢掉后几位", 22,
           ("身份证号码", "公民身份号码", "证件号码")),
    Column("phone", "手机号", False, "可空；可带 +86、空格或短横线", 16, ("手机号码", "联系电话", "电话")),
    Column("sex", "性别", False, "男 / 女；有身份证号时可空（必须与身份证号一致）", 6),
    Column("birth_date", "出生日期", False,
           "有身份证号时可空（必须与身份证号一致）；如 1980-05-17、1980/5/17、1980年5月17日", 12),
    Column("relation", "与户主关系", False, "户主 / 配偶 / 子女 / 父母 / 孙子女 / 兄弟姐妹 / 其他；空 = 其他", 10,
           ("与户主的关系", "关系")),
    Column("status", "状态", False, "在住 / 外出 / 已迁出 / 已故；空 = 在住", 8),
    Column("elderly_alone", "独居老人", False, "是 / 否，空 = 否", 8),
    Column("disabled", "残疾人", False, "是 / 否，空 = 否", 8),
    Column("pregnant", "孕产妇", False, "是 / 否，空 = 否", 8),
    Column("chronic_illness", "慢性病患者", False, "是 / 否，空 = 否", 10),
    Column("infant", "婴幼儿", False, "是 / 否，空 = 否", 8),
)
SHEETS = ((SHEET_UNITS, UNIT_COLUMNS), (SHEET_HOUSEHOLDS, HOUSEHOLD_COLUMNS), (SHEET_RESIDENTS, RESIDENT_COLUMNS))
_SHEET_ORDER = {name: i for i, (name, _c) in enumerate(SHEETS)}
_COLUMN_ORDER = {name: {c.header: i for i, c in enumerate(cols)} for name, cols in SHEETS}
_TEXT_KEYS = {"code", "parent_code", "unit_code", "household_code", "id_number", "phone"}


# --- results -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowError:
    """One problem in the file: the sheet, the row number Excel shows, the column header and the reason."""

    sheet: str
    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.sheet} 第 {self.row} 行" if self.row else (self.sheet or "文件")
        return f"{where} [{self.field}] {self.reason}" if self.field else f"{where} {self.reason}"


def _zero_counts() -> dict[str, dict[str, int]]:
    return {
        "units": {"created": 0, "updated": 0, "unchanged": 0},
        "households": {"created": 0, "unchanged": 0},
        "residents": {"created": 0, "unchanged": 0},
    }


@dataclass
class ImportResult:
    file_name: str
    errors: list[RowError] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=_zero_counts)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def summary(self) -> dict[str, int]:
        """Counts with Chinese labels, in display order (what the import page lists)."""
        c = self.counts
        return {
            "新建单位": c["units"]["created"], "更新单位": c["units"]["updated"], "未变单位": c["units"]["unchanged"],
            "新建户": c["households"]["created"], "未变户": c["households"]["unchanged"],
            "新建居民": c["residents"]["created"], "未变居民": c["residents"]["unchanged"],
        }


@dataclass
class ExportCounts:
    units: int = 0
    households: int = 0
    residents: int = 0


# --- choices (Chinese labels are the msgids of the models' choices) ------------------------------------

def _norm(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


@lru_cache(maxsize=1)
def _choices() -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """name -> (accepted spelling -> value, value -> Chinese label)."""
    synonyms = {
        "relation": {"本人": "head", "妻子": "spouse", "丈夫": "spouse", "妻": "spouse", "夫": "spouse",
                     "儿子": "child", "女儿": "child", "子": "child", "女": "child", "父亲": "parent",
                     "母亲": "parent", "孙子": "grandchild", "孙女": "grandchild", "外孙子": "grandchild",
                     "外孙女": "grandchild", "兄弟": "sibling", "姐妹": "sibling"},
        "status": {"迁出": "moved_out", "死亡": "deceased", "去世": "deceased", "在家": "present"},
        "sex": {"男性": "M", "女性": "F", "male": "M", "female": "F"},
    }
    out = {}
    with translation.override(None):  # the Chinese source strings, whatever language is active
        for name, choices in (("unit_kind", UnitKind), ("household_kind", HouseholdKind), ("relation", Relation),
                              ("status", ResidentStatus), ("sex", Sex)):
            to_label = {value: str(label) for value, label in choices.choices}
            accepted = {_norm(label): value for value, label in to_label.items()}
            accepted.update({_norm(value): value for value in to_label})
            accepted.update({_norm(k): v for k, v in synonyms.get(name, {}).items()})
            out[name] = (accepted, to_label)
    return out


def _label(name: str, value: str) -> str:
    return _choices()[name][1].get(value, value)


# --- cell parsing ----------------------------------------------------------------------------------------

REQUIRED = "必填 (required)"
OUT_OF_SCOPE = "不在您的管辖范围内 (outside your part of the district)"


def _code(value: Any, max_length: int) -> str:
    return unicodedata.normalize("NFKC", _digits_text(value, max_length)).strip()


def _choice(name: str, value: Any) -> str:
    text = _text(value)
    accepted, to_label = _choices()[name]
    try:
        return accepted[_norm(text)]
    except KeyError:
        allowed = " / ".join(to_label.values())
        raise _Bad(f"“{text}”不是可选值（可选：{allowed}）(not one of the allowed values)") from None


def _flag(value: Any) -> bool:
    if _is_blank(value):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = _norm(str(value))
    if text in {"是", "y", "yes", "true", "1", "√", "✓", "✔", "有"}:
        return True
    if text in {"否", "n", "no", "false", "0", "×", "✗", "无", "-"}:
        return False
    raise _Bad(f"应填 是 或 否（空 = 否）(must be 是 or 否): “{_text(value)}”")


def _level(value: Any) -> int:
    try:
        number = float(unicodedata.normalize("NFKC", str(value)).strip())
    except ValueError:
        number = 0
    if not number.is_integer() or not 1 <= number <= MAX_LEVEL:
        raise _Bad(f"层级应为 1–{MAX_LEVEL} 的整数 (level must be a whole number from 1 to {MAX_LEVEL})")
    return int(number)


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$")


def _date(value: Any) -> dt.date:
    bad = _Bad("无法识别的日期，请写成 1980-05-17 (cannot read this date; write it as 1980-05-17)")
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not float(value).is_integer():
            raise bad
        number = int(value)
        if 10_000_000 <= number <= 99_999_999:  # 19800517
            value = str(number)
        elif 1 <= number <= 2_958_465:  # an Excel serial date in a cell without a date format
            return _check_date(from_excel(number).date())
        else:
            raise bad
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        match = _DATE.match(text) or re.match(r"^(\d{4})(\d{2})(\d{2})$", text)
        if not match:
            raise bad
        try:
            day = dt.date(*(int(g) for g in match.groups()))
        except ValueError:
            raise _Bad("日期不存在 (no such date)") from None
    return _check_date(day)


def _check_date(day: dt.date) -> dt.date:
    if day > timezone.localdate() or day.year < 1880:
        raise _Bad("日期不合理：晚于今天或早于 1880 年 (the date is in the future or before 1880)")
    return day


def _aliases(value: Any) -> str:
    parts = [p.strip() for p in re.split(r"[|｜、,，;；]", _text(value))]
    joined = "|".join(p for p in parts if p)
    if len(joined) > Unit._meta.get_field("aliases").max_length:
        raise _Bad(f"不能超过 {Unit._meta.get_field('aliases').max_length} 个字符 (too long)")
    return joined


def _max(model, name: str) -> int:
    return model._meta.get_field(name).max_length


# --- reading the file ------------------------------------------------------------------------------------

@dataclass
class _Sheet:
    name: str
    header_row: int
    columns: dict[str, int]  # key -> index in the stored row tuples
    rows: list[tuple[int, tuple]]  # (Excel row number, the raw values of the known columns)

    def take_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Each row as key -> raw value, once: the raw rows are dropped (a large file is held only once)."""
        rows, self.rows = self.rows, []
        for number, values in rows:
            yield number, {key: values[i] for key, i in self.columns.items()}


def _file_name(source: Any) -> str:
    if isinstance(source, str | os.PathLike):
        return os.path.basename(os.fspath(source))
    return os.path.basename(str(getattr(source, "name", "") or "")) or "workbook.xlsx"


def _read(source: Any) -> tuple[dict[str, _Sheet], list[RowError]]:
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    elif hasattr(source, "seek"):
        source.seek(0)
    book = load_workbook(source, read_only=True, data_only=True)
    sheets: dict[str, _Sheet] = {}
    errors: list[RowError] = []
    try:
        titles = {_header_key(title): title for title in book.sheetnames}
        for name, columns in SHEETS:
            title = titles.get(name)
            if title is None:
                continue
            ws = book[title]
            ws.reset_dimensions()  # some writers store wrong dimensions; read every row there is
            sheet, sheet_errors = _read_sheet(name, columns, ws.iter_rows(values_only=True))
            errors += sheet_errors
            if sheet is not None:
                sheets[name] = sheet
    finally:
        book.close()
    if not sheets and not errors:
        errors.append(RowError("", 0, "", f"工作簿中没有“{SHEET_UNITS}”“{SHEET_HOUSEHOLDS}”“{SHEET_RESIDENTS}”中的任何一张表 "
                                          "(the workbook has none of the register sheets)"))
    return sheets, errors


def _read_sheet(name: str, columns: tuple[Column, ...], rows: Iterator[tuple]) -> tuple[_Sheet | None, list]:
    spellings = {}
    for column in columns:
        for spelling in (column.header, *column.aliases):
            spellings[_header_key(spelling)] = column.key
    required = {c.key for c in columns if c.required}
    head: list[tuple] = []
    best: tuple[int, int, dict[str, int]] | None = None  # (matched, row number, columns)
    found = None
    for number, row in enumerate(rows, start=1):
        head.append(row)
        found_columns: dict[str, int] = {}
        for index, cell in enumerate(row):
            key = spellings.get(_header_key(cell))
            if key is not None and key not in found_columns:
                found_columns[key] = index
        if required <= set(found_columns):
            found = (number, found_columns)
            break
        if found_columns and (best is None or len(found_columns) > best[0]):
            best = (len(found_columns), number, found_columns)
        if number >= HEADER_SEARCH_ROWS:
            break
    if found is None:
        if best is None:
            if all(all(_is_blank(v) for v in row) for row in head):
                return _Sheet(name, 1, {}, []), []  # an empty sheet
            return None, [RowError(name, 1, "", "找不到表头行 (no header row found)")]
        _, number, found_columns = best
        missing = [c.header for c in columns if c.required and c.key not in found_columns]
        return None, [RowError(name, number, h, "缺少这一列 (column missing)") for h in missing]
    header_row, found_columns = found
    keys, positions = list(found_columns), list(found_columns.values())
    data: list[tuple[int, tuple]] = []
    for number, row in enumerate(rows, start=header_row + 1):
        values = tuple(row[i] if i < len(row) else None for i in positions)
        if all(_is_blank(v) for v in values):
            continue
        data.append((number, values))
    return _Sheet(name, header_row, {key: i for i, key in enumerate(keys)}, data), []


# --- import ----------------------------------------------------------------------------------------------

@dataclass
class _UnitRef:
    code: str
    level: int
    path: str | None  # None: the row is invalid (its dependants are not checked against it)
    id: int | None = None  # None: created by this import
    row: int = 0  # row in the 单位 sheet, 0 if only in the register


@dataclass
class _HouseholdRef:
    code: str
    unit_code: str
    path: str | None
    id: int | None = None
    unit_id: int | None = None


class _Importer:
    def __init__(self, scope: Scope | None, root_unit: Unit | None):
        self.scope = scope
        self.root = root_unit
        self.errors: list[RowError] = []
        self.counts = _zero_counts()
        self.new_units: list[dict] = []
        self.unit_updates: list[dict] = []
        self.new_households: list[dict] = []
        self.new_residents: list[dict] = []

    def error(self, sheet: str, row: int, header: str, reason: str) -> None:
        self.errors.append(RowError(sheet, row, header, reason))

    def outside(self, path: str) -> str | None:
        """Why ``path`` may not be written by this import, or None."""
        if self.scope is not None and not self.scope.contains(path):
            return OUT_OF_SCOPE
        if self.root is not None and not path.startswith(self.root.path):
            return f"不在导入的单位“{self.root.name}”之下 (outside the unit being imported into)"
        return None

    def parse(self, sheet: str, columns: tuple[Column, ...], number: int, raw: dict, parsers: dict,
              required: Iterable[str] = ()) -> dict:
        """Parse one row's cells. ``_ok`` is False after any error; ``_bad`` names the cells in error."""
        values: dict[str, Any] = {"_row": number, "_ok": True, "_bad": ()}
        for column in columns:
            parser = parsers.get(column.key)
            if parser is None:
                continue
            try:
                if column.key in required and _is_blank(raw.get(column.key)):
                    raise _Bad(REQUIRED)
                values[column.key] = parser(raw.get(column.key))
            except _Bad as exc:
                values[column.key] = None
                values["_ok"] = False
                values["_bad"] = (*values["_bad"], column.key)
                self.error(sheet, number, column.header, str(exc))
        return values

    # -- lookups in the register, in batches --

    @staticmethod
    def units_by_code(codes: Iterable[str]) -> dict[str, dict]:
        found = {}
        for chunk in chunks(sorted(set(codes)), LOOKUP_BATCH):
            for row in Unit.objects.filter(code__in=chunk).values(
                    "id", "code", "path", "level", "kind", "name", "aliases", "parent__code"):
                found[row["code"]] = row
        return found

    @staticmethod
    def households_by_code(codes: Iterable[str]) -> dict[str, dict]:
        found = {}
        for chunk in chunks(sorted(set(codes)), LOOKUP_BATCH):
            rows = Household.objects.filter(code__in=chunk).values("id", "code", "path", "unit_id", "unit__code")
            for row in rows:
                found[row["code"]] = row
        return found

    # -- the three sheets --

    def check_units(self, sheet: _Sheet | None) -> dict[str, _UnitRef]:
        refs: dict[str, _UnitRef] = {}
        if sheet is None:
            return refs
        name, cols = SHEET_UNITS, UNIT_COLUMNS
        header = {c.key: c.header for c in cols}
        parsers = {
            "code": lambda v: _code(v, _max(Unit, "code")),
            "name": lambda v: _text(v, _max(Unit, "name")),
            "level": _level,
            "kind": lambda v: _choice("unit_kind", v),
            "parent_code": lambda v: _code(v, _max(Unit, "code")),
            "aliases": _aliases,
        }
        rows = [self.parse(name, cols, n, raw, parsers, ("code", "name", "level", "kind"))
                for n, raw in sheet.take_rows()]
        first_row = {}
        for values in rows:
            if values.get("code"):
                first_row.setdefault(values["code"], values["_row"])
        in_db = self.units_by_code({v["code"] for v in rows if v.get("code")}
                                   | {v["parent_code"] for v in rows if v.get("parent_code")})
        next_number = self._next_child_numbers(rows, in_db)
        for values in rows:
            row, code = values["_row"], values.get("code")
            if not code:
                continue
            if first_row[code] != row:
                self.error(name, row, header["code"],
                           f"单位编码与第 {first_row[code]} 行重复 (duplicate of row {first_row[code]})")
                continue
            level, kind, parent_code = values.get("level"), values.get("kind"), values.get("parent_code")
            existing = in_db.get(code)
            if existing is not None:
                ok = values["_ok"]
                why = self.outside(existing["path"])
                if why:
                    self.error(name, row, header["code"], why)
                    ok = False
                if level is not None and level != existing["level"]:
                    self.error(name, row, header["level"],
                               f"与系统中的层级 {existing['level']} 不同，导入不改变单位的层级 "
                               "(differs from the register; an import does not move units)")
                    ok = False
                if kind is not None and kind != existing["kind"]:
                    self.error(name, row, header["kind"],
                               f"与系统中的类型“{_label('unit_kind', existing['kind'])}”不同，导入不改变单位类型 "
                               "(differs from the register)")
                    ok = False
                if parent_code is not None and parent_code != (existing["parent__code"] or ""):
                    self.error(name, row, header["parent_code"],
                               f"与系统中的上级单位 {existing['parent__code'] or '（无）'} 不同，导入不移动单位 "
                               "(an import does not move units)")
                    ok = False
                refs[code] = _UnitRef(code, existing["level"], existing["path"] if ok else None, existing["id"], row)
                if ok:
                    aliases = values["aliases"] if "aliases" in sheet.columns else existing["aliases"]
                    if values["name"] != existing["name"] or aliases != existing["aliases"]:
                        self.unit_updates.append({"id": existing["id"], "name": values["name"], "aliases": aliases})
                        self.counts["units"]["updated"] += 1
                    else:
                        self.counts["units"]["unchanged"] += 1
                continue
            path = self._check_new_unit(values, refs, in_db, first_row, next_number)
            refs[code] = _UnitRef(code, level or 0, path, None, row)
            if path is not None:
                parent = refs.get(parent_code) if parent_code else None
                self.new_units.append({**values, "path": path, "parent_code": parent_code,
                                       "parent_id": parent.id if parent else None})
                self.counts["units"]["created"] += 1
        return refs

    def _next_child_numbers(self, rows: list[dict], in_db: dict[str, dict]) -> dict[str | None, int]:
        """Parent path ('' for the top level) -> the next free child number, from one grouped query."""
        parents = {in_db[v["parent_code"]]["id"]: in_db[v["parent_code"]]["path"] for v in rows
                   if v.get("parent_code") in in_db and v.get("code") not in in_db}
        numbers: dict[str | None, int] = {}
        for chunk in chunks(sorted(parents), LOOKUP_BATCH):
            # Children are numbered under a locked parent (PostgreSQL), so two imports cannot take one path.
            list(Unit.objects.select_for_update().filter(pk__in=chunk).values_list("pk", flat=True))
            for row in (Unit.objects.filter(parent_id__in=chunk).order_by().values("parent_id")
                        .annotate(last=Max("path"))):
                numbers[parents[row["parent_id"]]] = int(row["last"][-SEGMENT:]) + 1
        if any(not v.get("parent_code") and v.get("code") not in in_db for v in rows):
            last = Unit.objects.filter(level=1).aggregate(last=Max("path"))["last"]
            numbers[""] = int(last[-SEGMENT:]) + 1 if last else 1
        return numbers

    def _check_new_unit(self, values: dict, refs: dict[str, _UnitRef], in_db: dict[str, dict],
                        first_row: dict[str, int], next_number: dict) -> str | None:
        name, row = SHEET_UNITS, values["_row"]
        header = {c.key: c.header for c in UNIT_COLUMNS}
        ok = values["_ok"]
        level, kind, parent_code = values.get("level"), values.get("kind"), values.get("parent_code")
        parent: _UnitRef | None = None
        if parent_code is None:
            return None
        if parent_code == "":
            if level is not None and level != 1:
                self.error(name, row, header["parent_code"], "必填：只有层级 1（区）没有上级单位 (required below level 1)")
                return None
            if self.scope is not None or self.root is not None:
                self.error(name, row, header["parent_code"],
                           f"{OUT_OF_SCOPE}：新建层级 1 的区只能在空的系统中由系统导入")
                return None
            parent_path = ""
        else:
            if parent_code in refs:
                parent = refs[parent_code]
                if parent.path is None:
                    return None  # the parent's row has its own error
            elif parent_code in in_db:
                found = in_db[parent_code]
                parent = _UnitRef(parent_code, found["level"], found["path"], found["id"])
                refs.setdefault(parent_code, parent)
            elif parent_code in first_row:
                self.error(name, row, header["parent_code"],
                           f"上级单位 {parent_code} 在第 {first_row[parent_code]} 行，须写在本行之前 "
                           "(the parent must come on an earlier row)")
                return None
            else:
                self.error(name, row, header["parent_code"], f"上级单位编码 {parent_code} 不存在 (unknown parent unit)")
                return None
            if parent.level >= MAX_LEVEL:
                self.error(name, row, header["parent_code"], f"上级单位 {parent_code} 是第 {MAX_LEVEL} 级（网格），其下不能再有单位 "
                                                             "(a grid has no units below it)")
                return None
            if level is not None and level != parent.level + 1:
                self.error(name, row, header["level"], f"应为 {parent.level + 1}：上级单位 {parent_code} 的层级是 "
                                                       f"{parent.level} (must be the parent's level + 1)")
                ok = False
            why = self.outside(parent.path) if parent.id is not None else None
            if why:
                self.error(name, row, header["parent_code"], why)
                ok = False
            parent_path = parent.path
        # The kind must fit the level the unit gets (the parent's + 1), whatever the 层级 cell says.
        fit = parent.level + 1 if parent is not None else level
        if fit is not None and fit <= MAX_LEVEL and kind is not None and kind not in KINDS_BY_LEVEL[fit]:
            allowed = "、".join(_label("unit_kind", k) for k in UnitKind.values if k in KINDS_BY_LEVEL[fit])
            self.error(name, row, header["kind"], f"“{_label('unit_kind', kind)}”不是层级 {fit} 的类型（可选：{allowed}）"
                                                  "(this kind does not fit the level)")
            ok = False
        if not ok:
            return None
        number = next_number.get(parent_path, 1)
        if number >= 10**SEGMENT:
            self.error(name, row, header["parent_code"], "上级单位下已没有空余编号 (no room for another child)")
            return None
        next_number[parent_path] = number + 1
        return parent_path + str(number).zfill(SEGMENT)

    def check_households(self, sheet: _Sheet | None, units: dict[str, _UnitRef]) -> dict[str, _HouseholdRef]:
        refs: dict[str, _HouseholdRef] = {}
        if sheet is None:
            return refs
        name, cols = SHEET_HOUSEHOLDS, HOUSEHOLD_COLUMNS
        header = {c.key: c.header for c in cols}
        parsers: dict[str, Any] = {
            "code": lambda v: _code(v, _max(Household, "code")),
            "unit_code": lambda v: _code(v, _max(Unit, "code")),
            "kind": lambda v: _choice("household_kind", v),
            "address": lambda v: _text(v, _max(Household, "address")),
        }
        for key in ("building", "entrance", "room", "house_number"):
            parsers[key] = (lambda k: lambda v: _text(v, _max(Household, k)))(key)
        rows = [self.parse(name, cols, n, raw, parsers, ("code", "unit_code", "kind", "address"))
                for n, raw in sheet.take_rows()]
        db_units = self.units_by_code({v["unit_code"] for v in rows if v.get("unit_code")} - set(units))
        in_db = self.households_by_code(v["code"] for v in rows if v.get("code"))
        first_row: dict[str, int] = {}
        for values in rows:
            row, code, unit_code = values["_row"], values.get("code"), values.get("unit_code")
            if not code:
                continue
            if code in first_row:
                self.error(name, row, header["code"],
                           f"户编码与第 {first_row[code]} 行重复 (duplicate of row {first_row[code]})")
                continue
            first_row[code] = row
            ok = values["_ok"]
            unit: _UnitRef | None = None
            if unit_code:
                if unit_code in units:
                    unit = units[unit_code]
                elif unit_code in db_units:
                    found = db_units[unit_code]
                    unit = _UnitRef(unit_code, found["level"], found["path"], found["id"])
                else:
                    self.error(name, row, header["unit_code"], f"单位编码 {unit_code} 不存在（不在系统中，也不在“单位”表中）"
                                                               "(unknown unit)")
                    ok = False
                if unit is not None and unit.path is None:
                    ok = False  # the unit's row has its own error
                elif unit is not None and (why := self.outside(unit.path)):
                    self.error(name, row, header["unit_code"], why)
                    ok = False
            existing = in_db.get(code)
            if existing is not None:
                if self.outside(existing["path"]):
                    self.error(name, row, header["code"], "户编码已被您管辖范围以外的户使用 (code taken outside your part)")
                    ok = False
                elif unit_code and existing["unit__code"] != unit_code:
                    self.error(name, row, header["unit_code"], f"户编码 {code} 已在系统中，属于单位 {existing['unit__code']}；"
                                                               "导入不移动户 (an import does not move households)")
                    ok = False
                refs[code] = _HouseholdRef(code, existing["unit__code"], existing["path"] if ok else None,
                                           existing["id"], existing["unit_id"])
                if ok:
                    self.counts["households"]["unchanged"] += 1
                continue
            refs[code] = _HouseholdRef(code, unit_code or "", unit.path if ok and unit else None, None,
                                       unit.id if unit else None)
            if ok and unit is not None:
                self.new_households.append(values)
                self.counts["households"]["created"] += 1
        return refs

    def check_residents(self, sheet: _Sheet | None, households: dict[str, _HouseholdRef]) -> None:
        if sheet is None:
            return
        name, cols = SHEET_RESIDENTS, RESIDENT_COLUMNS
        header = {c.key: c.header for c in cols}
        parsers: dict[str, Any] = {
            "household_code": lambda v: _code(v, _max(Household, "code")),
            "name": lambda v: _text(v, _max(Resident, "name")),
            "id_number": _id_number,
            "phone": _phone,
            "sex": lambda v: "" if _is_blank(v) else _choice("sex", v),
            "birth_date": lambda v: None if _is_blank(v) else _date(v),
            "relation": lambda v: Relation.OTHER.value if _is_blank(v) else _choice("relation", v),
            "status": lambda v: ResidentStatus.PRESENT.value if _is_blank(v) else _choice("status", v),
        }
        parsers.update(dict.fromkeys(FLAGS, _flag))
        rows = [self.parse(name, cols, n, raw, parsers, ("household_code", "name")) for n, raw in sheet.take_rows()]
        for values in rows:
            self._sex_and_birth(values, header)
            if values.get("id_number"):
                values["id_hash"] = crypto.lookup_hash("id", values["id_number"])
        db_households = self.households_by_code(
            {v["household_code"] for v in rows if v.get("household_code")} - set(households))
        for code, found in db_households.items():
            households[code] = _HouseholdRef(code, found["unit__code"], found["path"], found["id"], found["unit_id"])
        known_ids = self._registered_ids(v["id_hash"] for v in rows if v.get("id_hash"))
        known_without_id = self._registered_without_id(
            {households[v["household_code"]].id for v in rows if v.get("household_code") in households
             and not v.get("id_number") and households[v["household_code"]].id})
        first_row: dict[Any, int] = {}
        for values in rows:
            row, code = values["_row"], values.get("household_code")
            ok = values["_ok"]
            household = households.get(code) if code else None
            if code and household is None:
                self.error(name, row, header["household_code"], f"户编码 {code} 不存在（不在系统中，也不在“户”表中）"
                                                                "(unknown household)")
                ok = False
            elif household is not None:
                if household.path is None:
                    ok = False  # the household's row has its own error
                elif household.id is not None and (why := self.outside(household.path)):
                    self.error(name, row, header["household_code"], why)
                    ok = False
            # duplicates within the file, then against the register
            if values.get("id_hash"):
                key: Any = values["id_hash"]
                if key in first_row:
                    self.error(name, row, header["id_number"], f"身份证号与第 {first_row[key]} 行重复 "
                                                               f"(duplicate of row {first_row[key]})")
                    continue
                first_row[key] = row
                registered = known_ids.get(key)
                if registered is not None:
                    if household is not None and registered["household_id"] == household.id:
                        if ok:
                            self.counts["residents"]["unchanged"] += 1
                        continue
                    where = (f"户 {registered['household__code']}" if not self.outside(registered["path"])
                             else "您管辖范围以外的户")
                    self.error(name, row, header["id_number"], f"该身份证号已登记在{where}（本行为户 {code}）"
                                                               "(already registered in another household)")
                    continue
            elif values.get("id_number") == "" and code and values.get("name") and values.get("birth_date"):
                key = (code, values["name"], values["birth_date"])
                if key in first_row:
                    self.error(name, row, header["name"], f"与第 {first_row[key]} 行是同一户、同名、同生日且都没有身份证号 "
                                                          f"(duplicate of row {first_row[key]})")
                    continue
                first_row[key] = row
                registered_key = (household.id, values["name"], values["birth_date"]) if household else None
                if registered_key in known_without_id:
                    if ok:
                        self.counts["residents"]["unchanged"] += 1
                    continue
            if ok and values["_ok"]:
                self.new_residents.append(values)
                self.counts["residents"]["created"] += 1

    def _sex_and_birth(self, values: dict, header: dict[str, str]) -> None:
        """Sex and birth date follow from the ID number; given ones must agree with it."""
        row, bad = values["_row"], values["_bad"]
        if "id_number" in bad:
            return  # the ID number itself is wrong: nothing to compare with
        id_number = values.get("id_number")
        if id_number:
            sex, birth = sex_from_id(id_number), birth_date_from_id(id_number)
            if values.get("sex") and values["sex"] != sex:
                self.error(SHEET_RESIDENTS, row, header["sex"], "性别与身份证号不符 (sex does not match the ID number)")
                values["_ok"] = False
            if values.get("birth_date") and values["birth_date"] != birth:
                self.error(SHEET_RESIDENTS, row, header["birth_date"],
                           "出生日期与身份证号不符 (birth date does not match the ID number)")
                values["_ok"] = False
            values["sex"], values["birth_date"] = sex, birth
            return
        for key in ("sex", "birth_date"):
            if not values.get(key) and key not in bad:
                self.error(SHEET_RESIDENTS, row, header[key], "没有身份证号时必填 (required without an ID number)")
                values["_ok"] = False

    @staticmethod
    def _registered_ids(hashes: Iterable[str]) -> dict[str, dict]:
        found = {}
        for chunk in chunks(sorted(set(hashes)), LOOKUP_BATCH):
            rows = Resident.objects.filter(id_hash__in=chunk).values("id_hash", "household_id", "household__code", "path")
            for row in rows:
                found.setdefault(row["id_hash"], row)
        return found

    @staticmethod
    def _registered_without_id(household_ids: set[int]) -> set[tuple]:
        found = set()
        for chunk in chunks(sorted(household_ids), LOOKUP_BATCH):
            found.update(Resident.objects.filter(household_id__in=chunk, id_hash="")
                         .values_list("household_id", "name", "birth_date"))
        return found

    # -- writing --

    def write(self) -> None:
        if self.unit_updates:
            update_rows(Unit, [Unit(id=u["id"], name=u["name"], aliases=u["aliases"]) for u in self.unit_updates],
                        ["name", "aliases"])
        unit_ids: dict[str, int] = {}
        by_level: dict[int, list[dict]] = defaultdict(list)
        for values in self.new_units:
            by_level[values["level"]].append(values)
        for level in sorted(by_level):
            batch = by_level[level]
            # parents created by this import, on the level above: their ids are known only now
            missing = {v["parent_code"] for v in batch if v["parent_code"] and v["parent_id"] is None}
            unit_ids.update(self._unit_ids(missing - set(unit_ids)))
            Unit.objects.bulk_create([
                Unit(level=v["level"], parent_id=v["parent_id"] or unit_ids.get(v["parent_code"]), code=v["code"],
                     name=v["name"], kind=v["kind"], path=v["path"], aliases=v.get("aliases") or "")
                for v in batch], batch_size=BATCH)
        unit_ids.update(self._unit_ids({v["unit_code"] for v in self.new_households} - set(unit_ids)))
        unit_paths: dict[int, str] = {}
        for chunk in chunks(sorted(set(unit_ids.values())), LOOKUP_BATCH):
            unit_paths.update(Unit.objects.filter(pk__in=chunk).values_list("id", "path"))
        for batch in chunks(self.new_households, BATCH):
            Household.objects.bulk_create([
                Household(unit_id=(unit_id := unit_ids[v["unit_code"]]), path=unit_paths[unit_id], code=v["code"],
                          kind=v["kind"], building=v.get("building") or "", entrance=v.get("entrance") or "",
                          room=v.get("room") or "", house_number=v.get("house_number") or "", address=v["address"])
                for v in batch])
        households = self.households_by_code(v["household_code"] for v in self.new_residents)
        for batch in chunks(self.new_residents, BATCH):
            objects = []
            for v in batch:
                h = households[v["household_code"]]
                resident = Resident(
                    household_id=h["id"], unit_id=h["unit_id"], path=h["path"], name=v["name"],
                    name_initials=initials(v["name"]), sex=v["sex"], birth_date=v["birth_date"],
                    relation=v["relation"], status=v["status"], **{flag: bool(v.get(flag)) for flag in FLAGS})
                resident.set_id_number(v.get("id_number") or "")
                resident.set_phone(v.get("phone") or "")
                objects.append(resident)
            Resident.objects.bulk_create(objects)
        refresh_households(h["id"] for h in households.values())

    @staticmethod
    def _unit_ids(codes: set[str]) -> dict[str, int]:
        found = {}
        for chunk in chunks(sorted(codes), LOOKUP_BATCH):
            found.update(Unit.objects.filter(code__in=chunk).values_list("code", "id"))
        return found

    def sorted_errors(self) -> list[RowError]:
        def key(e: RowError):
            return (_SHEET_ORDER.get(e.sheet, -1), e.row, _COLUMN_ORDER.get(e.sheet, {}).get(e.field, 99))
        return sorted(self.errors, key=key)


def refresh_households(household_ids: Iterable[int]) -> None:
    """Set head name, head initials and member count of households from their residents, set-based.

    The head is the first resident (by id) whose relation is 户主, else the first resident — as
    ``actions._refresh_head`` does for one household.
    """
    members = Resident.objects.filter(household=OuterRef("pk"))
    head = members.order_by(Case(When(relation=Relation.HEAD, then=Value(0)), default=Value(1),
                                 output_field=IntegerField()), "id")
    count = members.order_by().values("household").annotate(n=Count("id")).values("n")
    now = timezone.now()
    for chunk in chunks(sorted(set(household_ids)), LOOKUP_BATCH):
        Household.objects.filter(pk__in=chunk).update(
            head_name=Coalesce(Subquery(head.values("name")[:1]), Value("")),
            head_initials=Coalesce(Subquery(head.values("name_initials")[:1]), Value("")),
            member_count=Coalesce(Subquery(count), Value(0)),
            updated_at=now,
        )


def import_workbook(source: Any, *, acting_user, root_unit: Unit | None = None) -> ImportResult:
    """Check every row of the workbook; if all are good, write them in one transaction (see the module doc).

    ``source`` is a path, bytes or a binary file object (an upload). Raises PermissionDenied without
    ``Perm.IMPORT_REGISTER`` and Http404 for a ``root_unit`` outside the user's part of the district. Problems
    in the file are returned in ``ImportResult.errors``, and then nothing has been written.
    """
    scope = None
    if acting_user is not None:
        scope = require(acting_user, Perm.IMPORT_REGISTER)
        if root_unit is not None:
            root_unit = access_unit(acting_user, root_unit.pk)
    file_name = _file_name(source)
    result = ImportResult(file_name)
    try:
        sheets, read_errors = _read(source)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported as the user's error
        logger.info("register import of %r: unreadable file (%s)", file_name, type(exc).__name__)
        result.errors = [RowError("", 0, "", f"无法读取文件，请上传 .xlsx 工作簿 (not a readable .xlsx workbook: "
                                             f"{type(exc).__name__})")]
        return result
    if read_errors:
        result.errors = read_errors
        return result
    with transaction.atomic():
        job = _Importer(scope, root_unit)
        units = job.check_units(sheets.get(SHEET_UNITS))
        households = job.check_households(sheets.get(SHEET_HOUSEHOLDS), units)
        job.check_residents(sheets.get(SHEET_RESIDENTS), households)
        result.counts = job.counts
        if job.errors:
            result.errors = job.sorted_errors()
            result.counts = _zero_counts()
            logger.info("register import of %r refused: %d errors", file_name, len(result.errors))
            return result
        job.write()
        audit.record(actor=acting_user, action="register.import", target=root_unit,
                     target_type="" if root_unit else "register.workbook",
                     changes={"file": file_name[:200], **job.counts})
    logger.info("register import of %r: %s", file_name, job.counts)
    return result


# --- template and export ---------------------------------------------------------------------------------


def _notes_rows() -> list[list[str]]:
    choices = _choices()
    kinds = "；".join(f"{level} 级：" + "、".join(_label("unit_kind", k) for k in UnitKind.values
                                               if k in KINDS_BY_LEVEL[level]) for level in sorted(KINDS_BY_LEVEL))
    rows = [
        ["闭环登记表：单位、户、居民（Bihuan register workbook: units, households, residents）"],
        ["先检查全部行，只要有一行有错，就一行都不导入；同一文件导入两次不会重复登记。"],
        ["身份证号、手机号、编码请用“文本”格式填写，否则 Excel 会把长数字改成科学计数法并丢掉后几位。"],
        [],
        ["工作表", "列", "说明"],
    ]
    for sheet, columns in SHEETS:
        for column in columns:
            rows.append([sheet, column.header, column.note])
    rows += [
        [],
        ["可选值", ""],
        ["单位类型", kinds],
        ["户类型", "、".join(choices["household_kind"][1].values())],
        ["性别", "、".join(choices["sex"][1].values())],
        ["与户主关系", "、".join(choices["relation"][1].values())],
        ["状态", "、".join(choices["status"][1].values())],
        ["重点人群（独居老人、残疾人、孕产妇、慢性病患者、婴幼儿）", "是、否（空 = 否）"],
    ]
    return rows


def template_workbook() -> Workbook:
    """The empty workbook: three sheets with headers, dropdowns for the coded columns, and the 说明 sheet."""
    book = Workbook()
    book.remove(book.active)
    choices = _choices()
    lists = {
        ("单位", "level"): ",".join(str(n) for n in range(1, MAX_LEVEL + 1)),
        ("单位", "kind"): ",".join(choices["unit_kind"][1].values()),
        ("户", "kind"): ",".join(choices["household_kind"][1].values()),
        ("居民", "sex"): ",".join(choices["sex"][1].values()),
        ("居民", "relation"): ",".join(choices["relation"][1].values()),
        ("居民", "status"): ",".join(choices["status"][1].values()),
        **{("居民", flag): "是,否" for flag in FLAGS},
    }
    for sheet, columns in SHEETS:
        ws = book.create_sheet(sheet)
        ws.append([c.header for c in columns])
        ws.freeze_panes = "A2"
        for index, column in enumerate(columns, start=1):
            letter = get_column_letter(index)
            cell = ws.cell(row=1, column=index)
            cell.font, cell.fill = excel.HEADER_FONT, excel.HEADER_FILL
            if column.note:
                cell.comment = Comment(column.note, "闭环")
            ws.column_dimensions[letter].width = column.width
            if column.key in _TEXT_KEYS:
                ws.column_dimensions[letter].number_format = "@"  # typed values stay text
            if (sheet, column.key) in lists:
                validation = DataValidation(type="list", formula1=f'"{lists[(sheet, column.key)]}"',
                                            allow_blank=True)
                validation.add(f"{letter}2:{letter}1048576")
                ws.add_data_validation(validation)
    notes = book.create_sheet(SHEET_NOTES)
    for row in _notes_rows():
        notes.append(row)
    notes.column_dimensions["A"].width, notes.column_dimensions["B"].width = 16, 14
    notes.column_dimensions["C"].width = 80
    for cell in notes[5]:
        cell.font = excel.HEADER_FONT
    for row in notes.iter_rows(min_row=6):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    return book


def template_bytes() -> bytes:
    return excel.to_bytes(template_workbook())


def _header_cells(ws, columns: tuple[Column, ...]) -> list[WriteOnlyCell]:
    cells = []
    for column in columns:
        cell = WriteOnlyCell(ws, value=column.header)
        cell.font, cell.fill = excel.HEADER_FONT, excel.HEADER_FILL
        cells.append(cell)
    return cells


def _text_cell(ws, value: str) -> WriteOnlyCell | str:
    cell = WriteOnlyCell(ws, value=value)
    cell.number_format = "@"
    return cell


def _sheet(book: Workbook, name: str, columns: tuple[Column, ...]):
    ws = book.create_sheet(name)
    ws.freeze_panes = "A2"
    excel.set_widths(ws, [column.width for column in columns])
    ws.append(_header_cells(ws, columns))
    return ws


def write_workbook(root_unit: Unit, stream: IO[bytes], *, acting_user) -> ExportCounts:
    """Write ``root_unit``'s subtree to ``stream`` in the import format, audited (see the module doc).

    Raises PermissionDenied without ``Perm.EXPORT_REGISTER`` and Http404 for a unit outside the user's part.
    """
    if acting_user is None:
        raise PermissionDenied("an export of personal data needs an acting user")
    require(acting_user, Perm.EXPORT_REGISTER)
    unit = access_unit(acting_user, root_unit.pk)
    counts = ExportCounts()
    book = Workbook(write_only=True)
    subtree = subtree_q(unit.path)

    ws = _sheet(book, SHEET_UNITS, UNIT_COLUMNS)
    codes: dict[int, str] = {}
    units = (Unit.objects.filter(subtree).order_by("path")
             .values_list("id", "code", "name", "level", "kind", "parent__code", "aliases"))
    for pk, code, name, level, kind, parent_code, aliases in units.iterator(chunk_size=2000):
        codes[pk] = code
        ws.append([_text_cell(ws, code), name, level, _label("unit_kind", kind), _text_cell(ws, parent_code or ""),
                   aliases])
        counts.units += 1

    ws = _sheet(book, SHEET_HOUSEHOLDS, HOUSEHOLD_COLUMNS)
    households = (Household.objects.filter(subtree).order_by("path", "id")
                  .values_list("code", "unit_id", "kind", "building", "entrance", "room", "house_number", "address"))
    for code, unit_id, kind, building, entrance, room, house_number, address in households.iterator(chunk_size=2000):
        ws.append([_text_cell(ws, code), _text_cell(ws, codes[unit_id]), _label("household_kind", kind),
                   building, entrance, room, house_number, address])
        counts.households += 1

    ws = _sheet(book, SHEET_RESIDENTS, RESIDENT_COLUMNS)
    residents = (Resident.objects.filter(subtree).order_by("path", "household_id", "id")
                 .values_list("household__code", "name", "id_sealed", "phone_sealed", "sex", "birth_date", "relation",
                              "status", *FLAGS))
    for household_code, name, id_sealed, phone_sealed, sex, birth, relation, status, *flags in residents.iterator(
            chunk_size=2000):
        birth_cell = WriteOnlyCell(ws, value=birth)
        birth_cell.number_format = "yyyy-mm-dd"
        ws.append([_text_cell(ws, household_code), name, _text_cell(ws, crypto.unseal(id_sealed)),
                   _text_cell(ws, crypto.unseal(phone_sealed)), _label("sex", sex), birth_cell,
                   _label("relation", relation), _label("status", status), *("是" if f else "否" for f in flags)])
        counts.residents += 1

    notes = book.create_sheet(SHEET_NOTES)
    for row in _notes_rows():
        notes.append(row)
    book.save(stream)
    audit.record(actor=acting_user, action="register.export", target=unit,
                 changes={"unit": unit.code, "units": counts.units, "households": counts.households,
                          "residents": counts.residents})
    logger.info("register export of unit %s: %s", unit.code, counts)
    return counts


def export_workbook(root_unit: Unit, *, acting_user) -> bytes:
    """``write_workbook`` into memory: the .xlsx file's bytes."""
    buffer = io.BytesIO()
    write_workbook(root_unit, buffer, acting_user=acting_user)
    return buffer.getvalue()
