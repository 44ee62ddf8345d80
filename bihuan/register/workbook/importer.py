"""Reading a register workbook and importing it all or nothing (see the package doc)."""

from __future__ import annotations

import io
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Case, Count, IntegerField, Max, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from openpyxl import load_workbook

from bihuan.core import audit, crypto
from bihuan.core.bulk import update_rows
from bihuan.core.personal import birth_date_from_id, sex_from_id
from bihuan.core.pinyin import initials
from bihuan.core.roles import Perm
from bihuan.core.tabular import BadCell as _Bad
from bihuan.core.tabular import cell_text as _text
from bihuan.core.tabular import check_xlsx, chunks, guarded_rows
from bihuan.core.tabular import header_key as _header_key
from bihuan.core.tabular import id_number_cell as _id_number
from bihuan.core.tabular import is_blank as _is_blank
from bihuan.core.tabular import label_cell as _label_cell
from bihuan.core.tabular import name_cell as _name
from bihuan.core.tabular import phone_cell as _phone

from ..access import Scope, access_unit, require
from ..models import (
    KINDS_BY_LEVEL,
    MAX_LEVEL,
    SEGMENT,
    Household,
    Relation,
    Resident,
    ResidentStatus,
    Unit,
    UnitKind,
    child_path,
)
from .columns import (
    _COLUMN_ORDER,
    _SHEET_ORDER,
    ALL_SHEETS,
    BATCH,
    FLAGS,
    HEADER_SEARCH_ROWS,
    HOUSEHOLD_COLUMNS,
    LOOKUP_BATCH,
    OUT_OF_SCOPE,
    REQUIRED,
    RESIDENT_COLUMNS,
    SHEET_HOUSEHOLDS,
    SHEET_RESIDENTS,
    SHEET_STAFF,
    SHEET_UNITS,
    STAFF_COLUMNS,
    UNIT_COLUMNS,
    Column,
    ImportResult,
    RowError,
    _aliases,
    _choice,
    _code,
    _date,
    _flag,
    _label,
    _level,
    _max,
    _zero_counts,
)
from .staff_sheet import _RollBack, import_staff_rows

logger = logging.getLogger("bihuan.register.workbook")




# --- reading the file ------------------------------------------------------------------------------------

def unknown(what: str, code) -> str:
    """The one message for a code that does not exist *and* for one outside the importer's part of the district:
    an import must not tell which (an existence oracle)."""
    return f"{what}编码 {code} 不存在或不在您的管辖范围内 (unknown, or outside your part of the district)"


# An ID number registered outside the importer's part: the same words whatever the reason it cannot go here.
ID_NOT_HERE = "该身份证号不能在此登记，请联系上级核实 (this ID number cannot be registered here; ask the level above)"


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


def _read(source: Any, wanted=ALL_SHEETS) -> tuple[dict[str, _Sheet], list[RowError]]:
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    elif hasattr(source, "read"):
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read()
    else:
        with open(source, "rb") as handle:
            data = handle.read()
    check_xlsx(data)  # the one reader's limits: no zip or XML bomb reaches openpyxl
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheets: dict[str, _Sheet] = {}
    errors: list[RowError] = []
    try:
        titles = {_header_key(title): title for title in book.sheetnames}
        for name, columns in wanted:
            title = titles.get(name)
            if title is None:
                continue
            ws = book[title]
            ws.reset_dimensions()  # some writers store wrong dimensions; read every row there is
            rows = (values for _n, values in guarded_rows(enumerate(ws.iter_rows(values_only=True), start=1), "xlsx"))
            sheet, sheet_errors = _read_sheet(name, columns, rows)
            errors += sheet_errors
            if sheet is not None:
                sheets[name] = sheet
    finally:
        book.close()
    if not sheets and not errors:
        names = "".join(f"“{name}”" for name, _columns in wanted)
        errors.append(RowError("", 0, "", f"工作簿中没有{names}中的任何一张表 (the workbook has none of these sheets)"))
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
            "name": lambda v: _label_cell(v, _max(Unit, "name")),
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
                self.error(name, row, header["parent_code"], unknown("上级单位", parent_code))
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
                self.error(name, row, header["parent_code"], unknown("上级单位", parent_code) if why == OUT_OF_SCOPE
                           else why)
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
        return child_path(parent_path, number)

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
                    self.error(name, row, header["unit_code"], unknown("单位", unit_code))
                    ok = False
                if unit is not None and unit.path is None:
                    ok = False  # the unit's row has its own error
                elif unit is not None and (why := self.outside(unit.path)):
                    self.error(name, row, header["unit_code"], unknown("单位", unit_code) if why == OUT_OF_SCOPE else why)
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
            "name": lambda v: _name(v, _max(Resident, "name")),
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
                self.error(name, row, header["household_code"], unknown("户", code))
                ok = False
            elif household is not None:
                if household.path is None:
                    ok = False  # the household's row has its own error
                elif household.id is not None and (why := self.outside(household.path)):
                    self.error(name, row, header["household_code"], unknown("户", code) if why == OUT_OF_SCOPE else why)
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
                    if self.outside(registered["path"]):
                        # Neither where nor whether "outside": the row cannot be registered here, ask above.
                        self.error(name, row, header["id_number"], ID_NOT_HERE)
                        continue
                    self.error(name, row, header["id_number"], f"该身份证号已登记在户 {registered['household__code']}"
                                                               f"（本行为户 {code}）(already registered in another household)")
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


def import_workbook(source: Any, *, acting_user, root_unit: Unit | None = None,
                    staff_only: bool = False) -> ImportResult:
    """Check every row of the workbook; if all are good, write them in one transaction (see the package doc).

    ``source`` is a path, bytes or a binary file object (an upload). Raises PermissionDenied without
    ``Perm.IMPORT_REGISTER`` (``Perm.MANAGE_STAFF`` with ``staff_only``, which reads the 人员 sheet alone) and
    Http404 for a ``root_unit`` outside the user's part of the district. Problems in the file are returned in
    ``ImportResult.errors``, and then nothing has been written. The 人员 sheet is written after the register's
    sheets (its people may sit at units of the same file); its first passwords come back in ``result.logins``.
    """
    scope = None
    if acting_user is not None:
        scope = require(acting_user, Perm.MANAGE_STAFF if staff_only else Perm.IMPORT_REGISTER)
        if root_unit is not None:
            root_unit = access_unit(acting_user, root_unit.pk)
    file_name = _file_name(source)
    result = ImportResult(file_name)
    try:
        sheets, read_errors = _read(source, ((SHEET_STAFF, STAFF_COLUMNS),) if staff_only else ALL_SHEETS)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported as the user's error
        logger.info("register import of %r: unreadable file (%s)", file_name, type(exc).__name__)
        result.errors = [RowError("", 0, "", f"无法读取文件，请上传 .xlsx 工作簿 (not a readable .xlsx workbook: "
                                             f"{type(exc).__name__})")]
        return result
    if read_errors:
        result.errors = read_errors
        return result
    try:
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
            if SHEET_STAFF in sheets:
                errors, result.staff_counts, result.logins = import_staff_rows(sheets[SHEET_STAFF],
                                                                               acting_user=acting_user)
                if errors:
                    result.errors = errors
                    raise _RollBack
            audit.record(actor=acting_user, action="register.import", target=root_unit,
                         target_type="" if root_unit else "register.workbook",
                         changes={"file": file_name[:200], **job.counts, "staff": result.staff_counts})
    except _RollBack:
        result.counts, result.logins = _zero_counts(), []
        result.staff_counts = {"created": 0, "updated": 0}
        logger.info("register import of %r refused: %d errors in the staff sheet", file_name, len(result.errors))
        return result
    logger.info("register import of %r: %s, staff %s", file_name, job.counts, result.staff_counts)
    return result
