"""The register workbook's sheets and columns, the allowed values (Chinese labels of the models' choices), the
parsing of one cell, and the result types of an import (``RowError``, ``ImportResult``)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.utils import timezone, translation
from openpyxl.utils.datetime import from_excel

from bihuan.core.roles import Role
from bihuan.core.tabular import MANGLED  # noqa: F401 - re-exported: the register's reason for mangled numbers
from bihuan.core.tabular import BadCell as _Bad
from bihuan.core.tabular import cell_text as _text
from bihuan.core.tabular import digits_text as _digits_text
from bihuan.core.tabular import is_blank as _is_blank

from ..models import (
    KEY_GROUPS,
    MAX_LEVEL,
    HouseholdKind,
    Language,
    Relation,
    ResidentStatus,
    Sex,
    Unit,
    UnitKind,
)

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
SHEET_STAFF = "人员"
STAFF_COLUMNS = (
    Column("username", "登录名", False, "可空：空则自动生成；系统中已有的登录名 = 修改此人（姓名、手机号、角色、单位、负责户、语言）",
           14, ("账号", "用户名")),
    Column("name", "姓名", True, "必填", 12),
    Column("phone", "手机号", False, "可空；可带 +86、空格或短横线；修改时空 = 不改", 16, ("手机号码", "联系电话", "电话")),
    Column("unit_code", "单位编码", True, "必填：此人所在单位；单位须已在系统中或在“单位”表中", 16, ("所属单位编码",)),
    Column("role", "角色", True, "必填，须与单位层级相符（见“说明”表）", 16, ("职务",)),
    Column("households", "负责户", False, "网格员、楼长、村民代表负责的户编码，用 | 或 、 分隔；空 = 整个网格", 30),
    Column("language", "语言", False, "简体中文 / English；空 = 跟随浏览器", 10),
    Column("email", "邮箱", False, "可空；用于邮件通知；修改时空 = 不改", 22, ("电子邮箱", "Email")),
)
SHEETS = ((SHEET_UNITS, UNIT_COLUMNS), (SHEET_HOUSEHOLDS, HOUSEHOLD_COLUMNS), (SHEET_RESIDENTS, RESIDENT_COLUMNS))
_SHEET_ORDER = {name: i for i, (name, _c) in enumerate(SHEETS)}
_COLUMN_ORDER = {name: {c.header: i for i, c in enumerate(cols)} for name, cols in SHEETS}
_TEXT_KEYS = {"code", "parent_code", "unit_code", "household_code", "id_number", "phone", "username", "households",
              "email"}
# Every sheet the workbook reads, the register's three and the staff sheet (written after them).
ALL_SHEETS = (*SHEETS, (SHEET_STAFF, STAFF_COLUMNS))


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
    # the 人员 sheet: people appointed and changed, and the first passwords of new accounts (shown once)
    staff_counts: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0})
    logins: list[dict] = field(default_factory=list)

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
            "新建人员": self.staff_counts["created"], "更新人员": self.staff_counts["updated"],
        }


@dataclass
class ExportCounts:
    units: int = 0
    households: int = 0
    residents: int = 0
    staff: int = 0


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
        "language": {"中文": "zh-hans", "简体": "zh-hans", "英文": "en", "英语": "en"},
    }
    out = {}
    with translation.override(None):  # the Chinese source strings, whatever language is active
        for name, choices in (("role", Role), ("language", Language), ("unit_kind", UnitKind), ("household_kind", HouseholdKind), ("relation", Relation),
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
