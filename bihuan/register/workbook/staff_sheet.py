"""The 人员 (staff) sheet of the register workbook: appoint and change people in bulk, and export them.

Each row is a person: 登录名 (blank: one is made from the name's pinyin initials), 姓名, 手机号, 单位编码, 角色 (a
Chinese role name, as on the 说明 sheet), 负责户 (household codes of the person's grid), 语言. A 登录名 already in
the register changes that person (moved first if the unit differs); a new one appoints a person with a first
password that must be changed at the first login.

The rows are written through ``staff_actions`` — the very rules of the staff pages and API (the role must fit the
unit's level and hold no more power than the importer's own, units and people in the importer's subtree, one's
own account untouched) — after the register's sheets, inside the import's one transaction. Every row is tried;
any refusal becomes a ``RowError`` naming sheet, row, column and reason, and then the whole import is rolled back.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404

from bihuan.core import crypto
from bihuan.core.errors import Refused
from bihuan.core.pinyin import initials
from bihuan.core.tabular import BadCell as _Bad
from bihuan.core.tabular import cell_text as _text
from bihuan.core.tabular import is_blank as _is_blank
from bihuan.core.tabular import label_cell as _label_cell
from bihuan.core.tabular import phone_cell as _phone

from ..models import Household, Staff, Unit, subtree_q
from ..staff_actions import do_create_staff, do_move_staff, do_update_staff
from .columns import (
    OUT_OF_SCOPE,
    REQUIRED,
    SHEET_STAFF,
    STAFF_COLUMNS,
    RowError,
    _choice,
    _code,
    _label,
    _max,
)

HEADER = {c.key: c.header for c in STAFF_COLUMNS}
# An action's field -> the column that holds it.
FIELD_COLUMN = {"username": "username", "name": "name", "phone": "phone", "email": "email", "role": "role", "unit": "unit_code",
                "households": "households", "language": "language"}


class _RollBack(Exception):
    """Raised inside the import's transaction when a staff row was refused: nothing is kept."""


def _codes(value: Any) -> list[str]:
    return [p.strip() for p in re.split(r"[|｜、,，;；\s]+", _text(value)) if p.strip()]


def _parse(number: int, raw: dict, errors: list[RowError]) -> dict | None:
    parsers = {
        "username": lambda v: _text(v, 150),
        "name": lambda v: _label_cell(v, _max(Staff, "name")),
        "phone": _phone,
        "email": lambda v: _text(v, 254),
        "unit_code": lambda v: _code(v, _max(Unit, "code")),
        "role": lambda v: _choice("role", v),
        "households": _codes,
        "language": lambda v: "" if _is_blank(v) else _choice("language", v),
    }
    values: dict[str, Any] = {"_row": number}
    ok = True
    for key, parser in parsers.items():
        try:
            if key in ("name", "unit_code", "role") and _is_blank(raw.get(key)):
                raise _Bad(REQUIRED)
            values[key] = parser(raw.get(key))
        except _Bad as exc:
            errors.append(RowError(SHEET_STAFF, number, HEADER[key], str(exc)))
            ok = False
    return values if ok else None


def _new_username(name: str, taken: set[str]) -> str:
    base = (initials(name) or "staff").lower()[:20]
    n = 1
    while f"{base}{n}" in taken:
        n += 1
    taken.add(f"{base}{n}")
    return f"{base}{n}"


def import_staff_rows(sheet, *, acting_user) -> tuple[list[RowError], dict[str, int], list[dict]]:
    """Write the rows of the 人员 sheet (see the module doc). Call inside the import's transaction; returns the
    errors (then roll back), the counts and the new logins with their first passwords."""
    errors: list[RowError] = []
    counts = {"created": 0, "updated": 0}
    logins: list[dict] = []
    rows = [v for number, raw in sheet.take_rows() if (v := _parse(number, raw, errors)) is not None]
    units = {u.code: u for u in Unit.objects.filter(code__in={v["unit_code"] for v in rows})}
    wanted = {c for v in rows for c in v["households"]}
    households = dict(Household.objects.filter(code__in=wanted).values_list("code", "id"))
    User = get_user_model()
    given = {v["username"] for v in rows if v["username"]}
    existing = {s.user.get_username(): s for s in Staff.objects.select_related("user", "unit")
                .filter(user__username__in=given)}
    taken = set(User.objects.filter(username__in=given).values_list("username", flat=True))
    seen: dict[str, int] = {}
    for v in rows:
        row = v["_row"]

        def refuse(key: str, reason: str, row=row) -> None:
            errors.append(RowError(SHEET_STAFF, row, HEADER[key], reason))

        username = v["username"]
        if username:
            if username.lower() in seen:
                refuse("username", f"登录名与第 {seen[username.lower()]} 行重复 (duplicate of row {seen[username.lower()]})")
                continue
            seen[username.lower()] = row
        unit = units.get(v["unit_code"])
        if unit is None:
            refuse("unit_code", f"单位编码 {v['unit_code']} 不存在 (unknown unit)")
            continue
        missing = [c for c in v["households"] if c not in households]
        if missing:
            refuse("households", f"户编码 {missing[0]} 不存在 (unknown household)")
            continue
        household_ids = [households[c] for c in v["households"]]
        try:
            with transaction.atomic():
                staff = existing.get(username)
                if staff is not None:
                    if staff.unit_id != unit.pk:
                        staff = do_move_staff(staff=staff, unit=unit, role=v["role"], acting_user=acting_user)
                    changes = {"name": v["name"], "role": v["role"], "language": v["language"],
                               "household_ids": household_ids}
                    changes |= {k: v[k] for k in ("phone", "email") if v[k]}
                    do_update_staff(staff=staff, changes=changes, acting_user=acting_user)
                    counts["updated"] += 1
                    continue
                if username and username in taken:
                    refuse("username", "登录名已被非工作人员账号使用 (taken by an account that is not staff)")
                    continue
                username = username or _new_username(v["name"], taken | _taken_like(v["name"]))
                staff, password = do_create_staff(
                    unit=unit, username=username, name=v["name"], role=v["role"], phone=v["phone"],
                    email=v["email"], language=v["language"], household_ids=household_ids, acting_user=acting_user)
                counts["created"] += 1
                logins.append({"username": username, "password": password, "name": staff.name,
                               "unit_code": unit.code, "unit": unit.name, "role": _label("role", staff.role)})
        except Refused as exc:
            refuse(FIELD_COLUMN.get(exc.base_field, "name"), exc.message)
        except Http404:
            refuse("username" if existing.get(username) else "unit_code", OUT_OF_SCOPE)
        except PermissionDenied as exc:
            refuse("role", f"无权任命人员 (you may not appoint staff: {exc})")
    return errors, counts, logins


def _taken_like(name: str) -> set[str]:
    base = (initials(name) or "staff").lower()[:20]
    return set(get_user_model().objects.filter(username__startswith=base).values_list("username", flat=True))


def staff_rows(unit: Unit):
    """The people of ``unit``'s subtree as rows of the 人员 sheet (phones in full: the export is audited), in a
    constant number of queries."""
    qs = (Staff.objects.filter(subtree_q(unit.path, "unit__path"), deactivated_at__isnull=True)
          .order_by("unit__path", "role", "id")
          .values_list("id", "user__username", "name", "phone_sealed", "user__email", "unit__code", "role",
                       "language"))
    through = Staff.households.through
    codes: dict[int, list[str]] = {}
    for staff_id, code in (through.objects.filter(staff__unit__path__gte=unit.path)
                           .filter(subtree_q(unit.path, "staff__unit__path"))
                           .order_by("household__code").values_list("staff_id", "household__code")):
        codes.setdefault(staff_id, []).append(code)
    for pk, username, name, phone_sealed, email, unit_code, role, language in qs.iterator(chunk_size=2000):
        yield [username, name, crypto.unseal(phone_sealed), unit_code, _label("role", role),
               "|".join(codes.get(pk, [])), _label("language", language) if language else "", email]
