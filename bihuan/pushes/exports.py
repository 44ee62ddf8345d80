"""Workbooks of pushes that name people: the hand-off record of people living outside the district
(区外人员移交表). Each is served by ``core.http.download``, which writes the export's audit row. (The daily
report, which holds counts only, is built by ``report.report_workbook``; a batch's row report by
``importing.batch_report_xlsx``.)"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from bihuan.core import crypto, excel
from bihuan.register.models import Unit, subtree_q

from .models import Outcome, Verification
from .routing import push_day_bounds

HANDOFF_HEADER = ["序号", "姓名", "性别", "身份证号", "手机号", "来源地", "途经地", "抵达日期", "去往城市",
                  "去往详细地址", "移交说明", "核查单位", "核查人", "核查时间"]


def handoff_rows(unit: Unit, day: dt.date):
    """Verifications completed on ``day`` with the outcome 'lives outside the district', under ``unit``."""
    low, high = push_day_bounds(day)
    return (Verification.objects.filter(subtree_q(unit.path, "person__path"), outcome=Outcome.OUTSIDE_DISTRICT,
                                        verified_at__gte=low, verified_at__lt=high)
            .select_related("person", "person__unit", "verified_by").order_by("verified_at", "id"))


def handoff_xlsx(unit: Unit, date: dt.date, *, reveal: bool = False) -> tuple[bytes, int]:
    """The hand-off record (区外人员移交表) of a unit's subtree for one day, as an Excel workbook, and its number
    of people. Full ID numbers and phones only with ``reveal`` (the receiving city must reach the person);
    masked otherwise. The download that serves it writes the export's audit row (``core.http.download``)."""
    wb = excel.workbook()
    ws = wb.active
    ws.title = "区外移交"
    excel.title_row(ws, f"{unit.name} 区外人员移交表（{date:%Y-%m-%d}）")
    ws.append(HANDOFF_HEADER)
    excel.header_style(ws[2], center=True)
    n = 0
    sexes = {"M": "男", "F": "女"}
    for n, ver in enumerate(handoff_rows(unit, date).iterator(chunk_size=500), start=1):
        p, d = ver.person, ver.outcome_detail or {}
        id_number = (crypto.unseal(p.id_sealed) if reveal and p.id_sealed else p.id_masked)
        phone = (p.reveal_phone() if reveal and p.phone_sealed else p.phone_masked)
        who = (ver.verified_by.get_full_name() or ver.verified_by.get_username()) if ver.verified_by else ""
        ws.append([n, p.name, sexes.get(p.sex, ""), id_number, phone, ver.origin or p.origin, p.via,
                   (ver.arrival_date or p.arrival_date or "") and f"{ver.arrival_date or p.arrival_date:%Y-%m-%d}",
                   d.get("destination_city", ""), d.get("destination_address", ""), d.get("handoff_note", ""),
                   p.unit.name if p.unit else "", who,
                   f"{timezone.localtime(ver.verified_at):%Y-%m-%d %H:%M}" if ver.verified_at else ""])
    excel.set_widths(ws, (6, 10, 6, 22, 14, 16, 16, 12, 12, 24, 20, 16, 10, 17))
    return excel.to_bytes(wb), n
