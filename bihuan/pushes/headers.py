"""Which column of a pushed list holds what: the common Chinese header variants, and mappings saved per source.

A mapping is ``{header text as in the file: field}``; the field ``""`` means "ignore this column". Headers are
compared after ``core.tabular.header_key`` (half-width, no spaces, no hint in brackets, no trailing colon), so
``所属乡镇（街道）``, ``所属乡镇(街道)`` and ``所属乡镇 ：`` are one header. A mapping staff saved for
(unit, source) wins over recognition, header by header; recognition fills in the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from bihuan.core import audit
from bihuan.core.roles import Perm
from bihuan.core.tabular import cell_text, header_key
from bihuan.register.access import access_unit, require
from bihuan.register.models import Unit

from .models import SourceMapping

# field -> label (for the UI and the report)
FIELDS: dict[str, str] = {
    "name": "姓名",
    "id_number": "身份证号",
    "phone": "手机号",
    "origin": "来源地",
    "via": "途经地",
    "arrival_date": "抵达时间",
    "address": "现住址",
    "source": "推送来源",
    "township": "所属乡镇（街道）",
    "community": "所属社区（村）",
    "birth_date": "出生日期",
    "sex": "性别",
}
IGNORE = ""

# Spellings seen in pushed lists, compared after header_key (brackets and their content are dropped, so
# 所属乡镇（街道） is 所属乡镇).
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "人员姓名", "旅客姓名", "被推送人姓名"),
    "id_number": ("身份证号", "身份证号码", "身份证", "证件号码", "证件号", "公民身份号码", "公民身份证号",
                  "公民身份证号码", "身份证件号码"),
    "phone": ("手机号", "手机号码", "手机", "联系电话", "电话", "电话号码", "联系方式", "联系电话号码"),
    "origin": ("来源地", "出发地", "来源地区", "出发地区", "出发城市", "来自", "来源城市", "始发地"),
    "via": ("途经地", "途经城市", "途径地", "途径城市", "途经", "途经地区"),
    "arrival_date": ("抵达时间", "到达时间", "返回日期", "抵达日期", "到达日期", "返回时间", "返乡时间", "返乡日期",
                     "入境时间", "抵尧时间", "来尧时间", "抵达本地时间"),
    "address": ("现住址", "目的地址", "居住地址", "详细地址", "住址", "现居住地址", "现居住地", "目的地",
                "现住地址", "居住地"),
    "source": ("推送来源", "数据来源", "来源"),
    "township": ("所属乡镇", "所属街道", "乡镇", "街道", "乡镇街道", "所属乡镇街道", "乡镇(街道)"),
    "community": ("所属社区", "所属村", "社区", "村", "所属村社区", "所属社区村", "村社区", "社区村"),
    "birth_date": ("出生日期", "出生年月", "出生年月日", "生日"),
    "sex": ("性别",),
}
_EXACT = {header_key(s): f for f, spellings in _SPELLINGS.items() for s in spellings}
# A header that matches no spelling exactly but contains one of these words (first match wins).
_CONTAINS = (
    ("身份证", "id_number"), ("证件号", "id_number"), ("手机", "phone"), ("电话", "phone"),
    ("姓名", "name"), ("途经", "via"), ("途径", "via"), ("出发", "origin"), ("来源地", "origin"),
    ("抵达", "arrival_date"), ("到达", "arrival_date"), ("返回", "arrival_date"),
    ("住址", "address"), ("地址", "address"), ("乡镇", "township"), ("街道", "township"),
    ("社区", "community"), ("村", "community"), ("出生", "birth_date"),
)


def recognise(header: Any, *, exact_only: bool = False) -> str | None:
    """The field a header names, or None."""
    key = header_key(cell_text(header))
    if not key:
        return None
    field = _EXACT.get(key)
    if field is not None or exact_only:
        return field
    return next((f for word, f in _CONTAINS if word in key), None)


def detect_mapping(headers: Sequence[Any], saved: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """(mapping header -> field, unmapped headers) for one header row.

    ``saved`` (a saved or given mapping) decides first for the headers it lists (``""`` = ignore); then exact
    spellings; then headers that contain a telling word (身份证, 电话, 地址 …). Each field goes to one column only.
    """
    saved_keys = {header_key(h): f for h, f in (saved or {}).items()}
    texts = [t for t in (cell_text(h) for h in headers) if header_key(t)]
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    decided: set[str] = set()  # headers the saved mapping speaks for (mapped or ignored)
    for text in texts:
        field = saved_keys.get(header_key(text))
        if field is None:
            continue
        decided.add(text)
        if field in FIELDS and field not in taken:
            mapping[text] = field
            taken.add(field)
    for exact_only in (True, False):
        for text in texts:
            if text in decided or text in mapping:
                continue
            field = recognise(text, exact_only=exact_only)
            if field is not None and field not in taken:
                mapping[text] = field
                taken.add(field)
    unmapped = [t for t in texts if t not in mapping]
    return mapping, unmapped


def header_score(mapping: dict[str, str]) -> int:
    """How much a row looks like the header row: 0 unless it names a person (name or ID number) and one more
    field."""
    fields = set(mapping.values())
    if not fields & {"name", "id_number"} or len(fields) < 2:
        return 0
    return len(fields)


def saved_mapping(unit: Unit | None, source: str) -> dict[str, str]:
    if unit is None:
        return {}
    found = SourceMapping.objects.filter(unit=unit, source=source).values_list("mapping", flat=True).first()
    return dict(found or {})


def save_mapping(unit: Unit, source: str, mapping: dict[str, str], acting_user) -> SourceMapping:
    """Save (or replace) the column mapping for files from ``source`` imported into ``unit`` (audited).

    Raises ValueError for a field that does not exist, PermissionDenied without ``Perm.IMPORT_PUSH`` and
    Http404 for a unit outside the user's part of the district.
    """
    clean: dict[str, str] = {}
    for header, field in mapping.items():
        if field not in FIELDS and field != IGNORE:
            raise ValueError(f"unknown field {field!r} for column {header!r}")
        if cell_text(header):
            clean[cell_text(header)[:100]] = field
    fields = [f for f in clean.values() if f]
    if len(fields) != len(set(fields)):
        raise ValueError("each field may be given to one column only")
    with transaction.atomic():
        if acting_user is not None:
            require(acting_user, Perm.IMPORT_PUSH)
            unit = access_unit(acting_user, unit.pk)
        row, created = SourceMapping.objects.update_or_create(unit=unit, source=source,
                                                              defaults={"mapping": clean})
        audit.record(actor=acting_user, action="push.mapping.save", target=row,
                     changes={"unit": unit.pk, "source": source, "mapping": clean, "created": created})
    return row
