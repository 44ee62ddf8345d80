"""Control types as the district's command office runs them, without a programmer (``Perm.EDIT_POLICY``):
a new type, a new version of one, or a type retired. Versions, not edits: a case keeps the version it was opened
with (its measures checklist and check-ins a day), so a type in use never changes under an open case; the new
version applies to cases opened from then on. Every version and retirement is audited.

The checklist is written one measure a line, ``label`` or ``label | 拍照`` (a photo is required, e.g. the
signed agreement); a line keeps the key it had in the version before (matched by label), so the measures of
cases on either version stay comparable.
"""

from __future__ import annotations

import re

from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.core.roles import Perm
from bihuan.register.access import require

from .models import OPEN_CASE_STATES, ControlType

CODE = re.compile(r"^[a-z][a-z0-9_]{1,29}$")
PHOTO_WORDS = ("拍照", "照片", "photo")
MAX_MEASURES = 20
MAX_RANK = 9


class ControlTypeError(Refused):
    pass


def parse_measures(text: str, previous: list[dict] | None = None) -> list[dict]:
    """The checklist from its lines (see the module docstring); keys kept from ``previous`` by label."""
    known = {m.get("label"): m.get("key") for m in previous or []}
    out: list[dict] = []
    for n, raw in enumerate((text or "").splitlines(), start=1):
        line = " ".join(raw.split())
        if not line:
            continue
        label, _sep, flag = (p.strip() for p in line.partition("|"))
        if not label or len(label) > 100:
            raise ControlTypeError("measures", f"第 {n} 行：请写措施名称（至多 100 字）")
        if flag and flag.lower() not in PHOTO_WORDS:
            raise ControlTypeError("measures", f"第 {n} 行：竖线后只能写“拍照”")
        if any(m["label"] == label for m in out):
            raise ControlTypeError("measures", f"第 {n} 行：措施重复：{label}")
        out.append({"key": known.get(label) or "", "label": label, "photo": bool(flag)})
    if len(out) > MAX_MEASURES:
        raise ControlTypeError("measures", f"至多 {MAX_MEASURES} 项措施")
    used = {m["key"] for m in out if m["key"]}
    n = 0
    for m in out:
        while not m["key"]:
            n += 1
            key = f"measure_{n}"
            if key not in used:
                m["key"] = key
                used.add(key)
    return out


def measures_text(measures: list[dict]) -> str:
    """A checklist as the lines of the form."""
    return "\n".join(m.get("label", "") + (" | 拍照" if m.get("photo") else "") for m in measures or [])


def open_cases_by_version() -> dict[int, int]:
    """Open cases per type version (one query): what a version is still in use by."""
    return dict(ControlType.objects.filter(cases__state__in=OPEN_CASE_STATES).annotate(n=Count("cases"))
                .values_list("id", "n"))


def do_new_type_version(code: str, *, name_zh: str, name_en: str, rank: int, checkins_per_day: int, at_home: bool,
                        measures: str, note: str, acting_user) -> ControlType:
    """The next version of type ``code`` (version 1: a new type), made the current one; the version before stays
    as it is for the cases opened with it."""
    require(acting_user, Perm.EDIT_POLICY)
    code = (code or "").strip()
    if not CODE.match(code):
        raise ControlTypeError("code", "代码为 2–30 位小写字母、数字或下划线，以字母开头")
    name_zh, name_en, note = (" ".join((v or "").split()) for v in (name_zh, name_en, note))
    if not name_zh or len(name_zh) > 50:
        raise ControlTypeError("name_zh", "请填写中文名称（至多 50 字）")
    if len(name_en) > 80:
        raise ControlTypeError("name_en", "英文名称至多 80 字")
    if not 1 <= rank <= MAX_RANK:
        raise ControlTypeError("rank", f"严格程度为 1–{MAX_RANK}（数字越大越严格）")
    if checkins_per_day not in (0, 1, 2):
        raise ControlTypeError("checkins_per_day", "每日打卡次数为 0、1 或 2")
    if not note:
        raise ControlTypeError("note", "请说明修订理由")
    with transaction.atomic():
        versions = ControlType.objects.select_for_update().filter(code=code)
        before = versions.filter(is_current=True).first() or versions.order_by("-version").first()
        checklist = parse_measures(measures, before.measures if before else None)
        if not checklist:
            raise ControlTypeError("measures", "至少一项措施")
        clash = (ControlType.objects.current().exclude(code=code).filter(name_zh=name_zh).exists())
        if clash:
            raise ControlTypeError("name_zh", f"已有同名的管控类型：{name_zh}")
        number = (versions.aggregate(n=Max("version"))["n"] or 0) + 1
        versions.filter(is_current=True).update(is_current=False)
        new = ControlType.objects.create(
            code=code, version=number, is_current=True, name_zh=name_zh, name_en=name_en or name_zh, rank=rank,
            checkins_per_day=checkins_per_day, at_home=at_home, measures=checklist, note=note[:300],
            created_at=timezone.now(), created_by=acting_user)
        changed = {}
        if before is not None:
            for f in ("name_zh", "name_en", "rank", "checkins_per_day", "at_home", "measures"):
                if getattr(before, f) != getattr(new, f):
                    changed[f] = [getattr(before, f), getattr(new, f)]
        audit.record(actor=acting_user, action="control.type_version", target=new,
                     changes={"code": code, "version": number, "previous": getattr(before, "pk", None),
                              "note": note[:200], **(changed if before else {"measures": checklist})})
    return new


def do_retire_type(code: str, *, acting_user) -> ControlType:
    """No current version any more: nothing new is opened with the type (open cases run on their version). A
    new version brings it back."""
    require(acting_user, Perm.EDIT_POLICY)
    with transaction.atomic():
        current = ControlType.objects.select_for_update().current().filter(code=code).first()
        if current is None:
            raise ControlTypeError("code", "该管控类型已停用")
        if ControlType.objects.current().count() <= 1:
            raise ControlTypeError("code", "至少保留一种在用的管控类型")
        ControlType.objects.filter(pk=current.pk).update(is_current=False)
        current.is_current = False
        audit.record(actor=acting_user, action="control.type_retired", target=current,
                     changes={"code": code, "version": current.version})
    return current
