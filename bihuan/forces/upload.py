"""A week's roster uploaded as a sheet in the usual layout (排班表): one row per person and shift, columns
岗位, 日期, 开始, 结束, 姓名 (and 手机 to tell two people of one name apart). Every row is checked — the post under
the uploading unit, the person an active helper of the post's community, the times, overlaps with the roster and
with other rows of the file, the daily maximum — and the file is taken all or nothing: one bad row, and nothing
is written; each bad row gets its reason."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from bihuan.core import crypto
from bihuan.core.errors import Refused
from bihuan.core.personal import normalize_phone
from bihuan.core.tabular import UnreadableFile, cell_text, header_key, is_blank, read_sheets
from bihuan.register.access import require
from bihuan.register.models import Unit

from .access import MANAGE
from .actions import ForcesError, do_assign_shift
from .models import MAX_HOURS_PER_DAY, Helper, HelperStatus, Post

COLUMNS = {"post": ("岗位", "岗位名称"), "date": ("日期", "值班日期"), "start": ("开始", "开始时间", "上岗时间"),
           "end": ("结束", "结束时间", "下岗时间"), "name": ("姓名", "人员", "值班人员"), "phone": ("手机", "手机号", "电话")}


@dataclass
class RowError:
    row: int
    message: str


def _time(value) -> int:
    """Hours 0–24 from 8, 8:00, "08:00" or an Excel time."""
    if isinstance(value, dt.time):
        return value.hour
    if isinstance(value, dt.datetime):
        return value.hour
    if isinstance(value, float) and 0 <= value < 1:  # an Excel time fraction
        return round(value * 24)
    text = cell_text(value)
    m = re.fullmatch(r"(\d{1,2})(?:[:：.]00)?(?:点)?", text)
    if not m or not 0 <= int(m.group(1)) <= 24:
        raise ValueError(f"时间“{text}”应为整点，如 8:00")
    return int(m.group(1))


def _date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = cell_text(value).replace("/", "-").replace(".", "-")
    try:
        return dt.date.fromisoformat("-".join(p.zfill(2) for p in text.split("-")))
    except ValueError:
        raise ValueError(f"日期“{text}”应为 2022-04-01 这样的格式") from None


def import_roster(unit: Unit, data: bytes, file_name: str, *, acting_user) -> tuple[int, list[RowError]]:
    """Check every row; if all are good, add the shifts (one transaction) and return (added, []); else write
    nothing and return (0, errors)."""
    scope = require(acting_user, MANAGE)
    if not scope.contains(unit.path):
        raise Refused("unit", "不在您的管辖范围内")
    rows = None
    try:
        for _name, sheet_rows in read_sheets(data, file_name):
            rows = list(sheet_rows)  # the first sheet (read while the file is open)
            break
    except UnreadableFile as exc:
        return 0, [RowError(0, str(exc))]
    if not rows:
        return 0, [RowError(0, "文件是空的")]
    header_at, cols = None, {}
    for number, values in rows[:5]:
        keys = [header_key(v) for v in values]
        found = {k: keys.index(n) for k, names in COLUMNS.items() for n in names if n in keys}
        if {"post", "date", "start", "end", "name"} <= found.keys():
            header_at, cols = number, found
            break
    if header_at is None:
        return 0, [RowError(0, "找不到表头：需要 岗位、日期、开始、结束、姓名 这几列")]
    posts = {p.name: p for p in Post.objects.filter(unit.subtree(), active=True)}
    planned, errors = [], []
    taken: dict[tuple, list[tuple[dt.datetime, dt.datetime, int]]] = {}
    for number, values in rows:
        if number <= header_at or all(is_blank(v) for v in values):
            continue

        def cell(key, values=values):
            i = cols.get(key)
            return values[i] if i is not None and i < len(values) else None

        try:
            post = posts.get(cell_text(cell("post")))
            if post is None:
                raise ValueError(f"没有这个岗位：“{cell_text(cell('post'))}”")
            day, start, end = _date(cell("date")), _time(cell("start")), _time(cell("end"))
            if end <= start:
                end += 24 if end < start else 0
            if end <= start:
                raise ValueError("结束时间应晚于开始时间")
            name = cell_text(cell("name"))
            people = Helper.objects.filter(path__startswith=post.path[:16], name=name, status=HelperStatus.ACTIVE)
            if not is_blank(cell("phone")):
                people = people.filter(phone_hash=crypto.lookup_hash("phone", normalize_phone(cell_text(cell("phone")))))
            found = list(people[:2])
            if not found:
                raise ValueError(f"本社区没有在岗的“{name}”")
            if len(found) > 1:
                raise ValueError(f"本社区有两位“{name}”，请填写手机号区分")
            helper = found[0]
            base = timezone.make_aware(dt.datetime.combine(day, dt.time()))
            a, b = base + dt.timedelta(hours=start), base + dt.timedelta(hours=end)
            mine = taken.setdefault(("h", helper.pk), [])
            clash = next((r for s, e, r in mine if s < b and e > a), None)
            if clash:
                raise ValueError(f"{name} 与第 {clash} 行的班次时间重叠")
            same_day = sum((e - s).total_seconds() for s, e, _r in mine if s.date() == a.date())
            if same_day + (b - a).total_seconds() > MAX_HOURS_PER_DAY * 3600:
                raise ValueError(f"{name} 当天排班超过 {MAX_HOURS_PER_DAY} 小时")
            mine.append((a, b, number))
            planned.append((number, post, helper, a, b))
        except ValueError as exc:
            errors.append(RowError(number, getattr(exc, "message", None) or str(exc)))
    if errors:
        return 0, errors
    try:
        with transaction.atomic():
            for number, post, helper, a, b in planned:
                try:
                    do_assign_shift(post, helper=helper, starts_at=a, ends_at=b, acting_user=acting_user)
                except ForcesError as exc:
                    errors.append(RowError(number, exc.message))
            if errors:
                raise _Rollback
    except _Rollback:
        return 0, errors
    return len(planned), []


class _Rollback(Exception):
    pass
