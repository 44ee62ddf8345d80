"""The screening ledger (排查台账) as Excel, in the usual layout: a title row, then one row per household of the
user's part with its units, address, head, the answer, who screened it, how and when. Text a spreadsheet would
read as a formula is neutralised."""

from __future__ import annotations

from django.utils import timezone

from bihuan.core import excel
from bihuan.directives.models import Reach
from bihuan.register.models import SEGMENT, Unit, subtree_q

from .models import AnsweredVia, Campaign, ScreeningAnswer

HEAD = ["序号", "乡镇（街道）", "村（社区）", "小区（村民小组）", "网格", "户址", "户主", "在家人数", "有无外来返乡人员",
        "返乡人员及来源地", "有无发热等症状", "独居老人", "生活需求", "人员变动", "排查方式", "排查人", "排查时间"]


def safe(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def ledger_xlsx(c: Campaign, root: Unit) -> tuple[bytes, int]:
    names = dict(Unit.objects.filter(subtree_q(root.path[:SEGMENT])).values_list("path", "name"))
    answers = {a.household_id: a for a in ScreeningAnswer.objects.filter(subtree_q(root.path), campaign=c)
               .select_related("answered_by__staff")}
    book = excel.workbook()
    ws = book.active
    ws.title = "排查台账"
    excel.title_row(ws, f"{c.directive.title} 排查台账（{root.name}，自 {c.since:%Y-%m-%d} 起返乡人员）")
    ws.append(HEAD)
    excel.header_style(ws[2], fill=True, center=True)
    n = 0
    rows = (Reach.objects.filter(subtree_q(root.path), directive=c.directive).select_related("household")
            .order_by("path", "household_id").iterator(chunk_size=2000))
    for n, reach in enumerate(rows, start=1):
        h = reach.household
        levels = [names.get(h.path[:SEGMENT * k], "") for k in (3, 4, 5, 6)]
        a = answers.get(h.pk)
        if a is None:
            ws.append([n, *levels, safe(h.address), safe(h.head_name), "", "", "", "", "", "", "", "未排查", "", ""])
            continue
        arrived = "；".join(f"{x['name']}（{x['from']}）" for x in a.arrived)
        who = getattr(getattr(a.answered_by, "staff", None), "name", "") if a.answered_by_id else "居民"
        ws.append([n, *levels, safe(h.address), safe(h.head_name), a.present, "有" if a.arrived else "无",
                   safe(arrived), "有" if a.fever else "无", "是" if a.elderly_alone else "否", safe(a.needs),
                   safe(a.member_change), str(AnsweredVia(a.via).label), safe(who),
                   timezone.localtime(a.answered_at).strftime("%Y-%m-%d %H:%M")])
    excel.set_widths(ws, [6, 14, 14, 16, 16, 28, 10, 8, 10, 24, 10, 8, 20, 20, 12, 10, 16])
    return excel.to_bytes(book), n
