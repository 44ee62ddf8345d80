"""The empty template and the audited export of a unit's subtree, in the import format."""

from __future__ import annotations

import io
import logging
from typing import IO, TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from bihuan.core import audit, crypto, excel
from bihuan.core.personal import mask_phone
from bihuan.core.roles import Perm, roles_for_level

from ..access import access_unit, require
from ..models import (
    KINDS_BY_LEVEL,
    MAX_LEVEL,
    Household,
    Resident,
    Unit,
    UnitKind,
    subtree_q,
)
from ..privacy import id_tail_mask
from .columns import (
    _TEXT_KEYS,
    ALL_SHEETS,
    FLAGS,
    HOUSEHOLD_COLUMNS,
    RESIDENT_COLUMNS,
    SHEET_HOUSEHOLDS,
    SHEET_NOTES,
    SHEET_RESIDENTS,
    SHEET_STAFF,
    SHEET_UNITS,
    STAFF_COLUMNS,
    UNIT_COLUMNS,
    Column,
    ExportCounts,
    _choices,
    _label,
)
from .staff_sheet import staff_rows

if TYPE_CHECKING:
    from openpyxl import Workbook

logger = logging.getLogger("bihuan.register.workbook")


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
    for sheet, columns in ALL_SHEETS:
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
        ["角色（按单位层级）", "；".join(f"{level} 级：" + "、".join(_label("role", r) for r in roles_for_level(level))
                               for level in range(1, MAX_LEVEL + 1))],
        ["语言", "简体中文、English（空 = 跟随浏览器）"],
        ["重点人群（独居老人、残疾人、孕产妇、慢性病患者、婴幼儿）", "是、否（空 = 否）"],
    ]
    return rows


def template_workbook() -> Workbook:
    """The empty workbook: three sheets with headers, dropdowns for the coded columns, and the 说明 sheet."""
    book = excel.workbook()
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
        (SHEET_STAFF, "role"): ",".join(choices["role"][1].values()),
        (SHEET_STAFF, "language"): "简体中文,English",
    }
    for sheet, columns in ALL_SHEETS:
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


def write_workbook(root_unit: Unit, stream: IO[bytes], *, acting_user, full_reason: str | None = None) -> ExportCounts:
    """Write ``root_unit``'s subtree to ``stream`` in the import format, audited (see the module doc).

    Masked by default: ID numbers as their last four characters, phones masked, birth dates as the year (the
    file leaves the system; ``register.privacy``). Full values only with ``full_reason`` (the caller obtained it
    through ``core.reveal.full_export``: a reason and a confirmation) and ``Perm.REVEAL_PERSONAL``; only a full
    export can be imported back. Raises PermissionDenied without ``Perm.EXPORT_REGISTER`` and Http404 for a unit
    outside the user's part.
    """
    if acting_user is None:
        raise PermissionDenied("an export of personal data needs an acting user")
    scope = require(acting_user, Perm.EXPORT_REGISTER)
    unit = access_unit(acting_user, root_unit.pk)
    full = full_reason is not None
    if full and not scope.can(Perm.REVEAL_PERSONAL):
        raise PermissionDenied("your role may not export full personal data")
    counts = ExportCounts()
    book = excel.workbook(write_only=True)
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
    personal = ("id_sealed", "phone_sealed") if full else ("id_tail", "phone_masked")
    residents = (Resident.objects.filter(subtree).order_by("path", "household_id", "id")
                 .values_list("household__code", "name", *personal, "sex", "birth_date", "relation", "status", *FLAGS))
    for household_code, name, id_value, phone_value, sex, birth, relation, status, *flags in residents.iterator(
            chunk_size=2000):
        if full:
            id_value, phone_value = crypto.unseal(id_value), crypto.unseal(phone_value)
            birth_cell = WriteOnlyCell(ws, value=birth)
            birth_cell.number_format = "yyyy-mm-dd"
        else:
            id_value = id_tail_mask(id_value)
            birth_cell = WriteOnlyCell(ws, value=birth.year if birth else None)
        ws.append([_text_cell(ws, household_code), name, _text_cell(ws, id_value),
                   _text_cell(ws, phone_value), _label("sex", sex), birth_cell,
                   _label("relation", relation), _label("status", status), *("是" if f else "否" for f in flags)])
        counts.residents += 1

    ws = _sheet(book, SHEET_STAFF, STAFF_COLUMNS)
    for username, name, phone, unit_code, role, households, language, email in staff_rows(unit):
        phone = phone if full else mask_phone(phone)
        ws.append([_text_cell(ws, username), name, _text_cell(ws, phone), _text_cell(ws, unit_code), role,
                   _text_cell(ws, households), language, _text_cell(ws, email)])
        counts.staff += 1

    notes = book.create_sheet(SHEET_NOTES)
    for row in _notes_rows():
        notes.append(row)
    book.save(stream)
    audit.record(actor=acting_user, action="register.export", target=unit,
                 changes={"unit": unit.code, "units": counts.units, "households": counts.households,
                          "residents": counts.residents, "staff": counts.staff, "full": full,
                          **({"reason": full_reason} if full else {})})
    logger.info("register export of unit %s: %s", unit.code, counts)
    return counts


def export_workbook(root_unit: Unit, *, acting_user, full_reason: str | None = None) -> bytes:
    """``write_workbook`` into memory: the .xlsx file's bytes."""
    buffer = io.BytesIO()
    write_workbook(root_unit, buffer, acting_user=acting_user, full_reason=full_reason)
    return buffer.getvalue()
