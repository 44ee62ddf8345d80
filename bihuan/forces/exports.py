"""The disinfection log as the usual 消杀记录表: one row per job (date, time, place, agent and concentration, area,
who did it, note), through the one workbook writer (formula-neutralised cells)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from bihuan.core import excel

from .models import DisinfectionLog

HEADERS = ["序号", "日期", "时间", "单位", "消杀点位", "消毒剂", "浓度", "面积（㎡）", "消杀人员", "备注"]



def disinfection_workbook(unit, *, since: dt.datetime) -> bytes:
    wb = excel.workbook()
    ws = wb.active
    ws.title = "消杀记录表"
    excel.title_row(ws, f"{unit.name}消杀记录表（{timezone.localdate(since):%Y-%m-%d} 起）")
    ws.append(HEADERS)
    excel.header_style(ws[2], fill=True, center=True)
    rows = (DisinfectionLog.objects.filter(unit.subtree(), at__gte=since).select_related("place__unit")
            .order_by("at", "id"))
    for i, log in enumerate(rows.iterator(chunk_size=2000), 1):
        local = timezone.localtime(log.at)
        ws.append([i, f"{local:%Y-%m-%d}", f"{local:%H:%M}", log.place.unit.name, log.place.name,
                   log.agent, log.concentration, log.area_m2, log.done_by, log.note])
    excel.set_widths(ws, [6, 12, 8, 18, 22, 14, 10, 10, 10, 20])
    return excel.to_bytes(wb)
