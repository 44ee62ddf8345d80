"""Drills (演练): a directive marked as an exercise runs the same loop as a real one (CAP status
``Exercise``); afterwards its readiness report says, for every unit of the scope down to the grids, how
long the unit took to sign for it and to reach 50 %, 90 % and 100 % of its households.

Set-based: one ``GROUP BY path`` for the households in scope, one query for the receipts, and one pass over
the reached households ordered by ``marked_at`` (each row adds one to the grid and to every unit above it,
and a unit's time to p % is the moment its count reaches ``ceil(p/100 × households)``) — never a query per
unit. The report works for any directive (a real one gives the same figures); the export says which.

"Reached" means the household's reach row has status ``reached``; its ``marked_at`` is the time of its
latest mark. Households marked unreachable count towards the total but are never reached, so a unit with
one of them never reaches 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone

from bihuan.core import excel
from bihuan.loops.models import Loop
from bihuan.register.coverage import load_units
from bihuan.register.models import SEGMENT, LevelName

from .models import RECEIPT, Directive, Reach, ReachStatus

THRESHOLDS = (50, 90, 100)


@dataclass
class ReadinessRow:
    unit_id: int
    parent_id: int | None
    level: int
    path: str
    name: str
    kind: str
    households: int = 0
    reached: int = 0
    receipt_state: str = ""  # "" when the unit has no receipt (the scope's root when it issued)
    signed_at: datetime | None = None
    time_to_sign: timedelta | None = None
    time_to: dict[int, timedelta | None] | None = None  # threshold (50, 90, 100) -> time after issue

    def as_dict(self) -> dict:
        def seconds(td: timedelta | None) -> float | None:
            return None if td is None else td.total_seconds()

        return {
            "unit_id": self.unit_id, "parent_id": self.parent_id, "level": self.level, "path": self.path,
            "name": self.name, "kind": self.kind, "households": self.households, "reached": self.reached,
            "receipt_state": self.receipt_state, "signed_at": self.signed_at,
            "seconds_to_sign": seconds(self.time_to_sign),
            **{f"seconds_to_{p}": seconds((self.time_to or {}).get(p)) for p in THRESHOLDS},
        }


def needed(households: int, percent: int) -> int:
    """Households that make ``percent`` % of ``households`` (at least one): ceil(p × n / 100)."""
    return max(1, -(-percent * households // 100))


def _prefixes(path: str):
    return (path[:i] for i in range(SEGMENT, len(path) + 1, SEGMENT))


def readiness_report(directive: Directive) -> list[ReadinessRow]:
    """Rows for the scope's units (tree order) that have a receipt or households in scope."""
    issued = directive.issued_at
    units = load_units(directive.scope_unit.path)

    totals: dict[str, int] = {}
    for path, n in (Reach.objects.filter(directive=directive).values_list("path")
                    .annotate(n=Count("id")).order_by()):
        for p in _prefixes(path):
            totals[p] = totals.get(p, 0) + n

    receipts = {unit_id: (state, at) for unit_id, state, at in Loop.objects.filter(
        kind=RECEIPT, subject_id=directive.pk).values_list("owner_unit_id", "state", "acknowledged_at")}

    # The walk: reached households in the order they were reached, each counted at every unit above it.
    goals = {p: [(pct, needed(n, pct)) for pct in THRESHOLDS] for p, n in totals.items()}
    counts: dict[str, int] = dict.fromkeys(totals, 0)
    times: dict[str, dict[int, timedelta | None]] = {p: dict.fromkeys(THRESHOLDS) for p in totals}
    reached_rows = (Reach.objects.filter(directive=directive, status=ReachStatus.REACHED, marked_at__isnull=False)
                    .order_by("marked_at", "id").values_list("path", "marked_at"))
    for path, marked_at in reached_rows.iterator(chunk_size=20_000):
        for p in _prefixes(path):
            if p not in counts:
                continue
            c = counts[p] = counts[p] + 1
            for pct, goal in goals[p]:
                if c == goal:
                    times[p][pct] = marked_at - issued
    rows = []
    for u in units:
        receipt = receipts.get(u.id)
        if receipt is None and not totals.get(u.path):
            continue
        state, signed_at = receipt or ("", None)
        rows.append(ReadinessRow(
            unit_id=u.id, parent_id=u.parent_id, level=u.level, path=u.path, name=u.name, kind=u.kind,
            households=totals.get(u.path, 0), reached=counts.get(u.path, 0), receipt_state=state,
            signed_at=signed_at, time_to_sign=(signed_at - issued) if signed_at else None,
            time_to=times.get(u.path, dict.fromkeys(THRESHOLDS)),
        ))
    return rows


DURATION_FORMAT = "[h]:mm:ss"


def readiness_workbook(directive: Directive, rows: list[ReadinessRow] | None = None) -> bytes:
    """The report as an .xlsx (openpyxl): one row per unit, indented by level, durations as [h]:mm:ss."""
    from openpyxl.styles import Alignment

    rows = readiness_report(directive) if rows is None else rows
    level_names = dict(LevelName.objects.values_list("level", "name_zh"))
    wb = excel.workbook()
    ws = wb.active
    ws.title = "演练报告" if directive.is_exercise else "响应时效"
    kind = "演练" if directive.is_exercise else "实战"
    excel.title_row(ws, f"{directive.title}（{kind}，第 {directive.version} 版）")
    ws.append([f"下达时间：{timezone.localtime(directive.issued_at):%Y-%m-%d %H:%M:%S}",
               f"下达单位：{directive.issuer_unit.name}"])
    headers = ["层级", "单位", "户数", "已触达", "签收时间", "签收用时",
               *[f"触达 {p}% 用时" for p in THRESHOLDS]]
    ws.append([])
    ws.append(headers)
    excel.header_style(ws[ws.max_row])
    for r in rows:
        signed = timezone.localtime(r.signed_at).replace(tzinfo=None) if r.signed_at else None
        ws.append([level_names.get(r.level, str(r.level)), r.name, r.households, r.reached, signed,
                   r.time_to_sign, *[(r.time_to or {}).get(p) for p in THRESHOLDS]])
        line = ws.max_row
        ws.cell(line, 2).alignment = Alignment(indent=max(0, r.level - rows[0].level))
        ws.cell(line, 5).number_format = "yyyy-mm-dd hh:mm:ss"
        for col in range(6, 7 + len(THRESHOLDS)):
            ws.cell(line, col).number_format = DURATION_FORMAT
    excel.set_widths(ws, (22, 30, 8, 8, 20, 12, 14, 14, 14))
    ws.freeze_panes = "C5"
    return excel.to_bytes(wb)
