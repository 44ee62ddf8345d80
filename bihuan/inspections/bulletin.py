"""督导通报: a district's or township's weekly bulletin in the official layout — title, issue number, date, and the
sections overview, best and worst units (红黑榜), findings, rectification status — as HTML, an A4 PDF with an
embedded CJK font (reportlab) and an Excel workbook. Its content is computed once (``compose``) and kept with
the bulletin, so every format and every later reading shows the same; publishing tells the units it names."""

from __future__ import annotations

import datetime as dt
import html
import io
from collections import Counter

from django.db import transaction
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.excel import header_style, set_widths, title_row, to_bytes
from bihuan.loops.models import Loop, LoopState
from bihuan.notify.outbox import notify_units
from bihuan.register.models import Unit

from . import scoring
from .models import Bulletin, Finding, Severity, Visit, VisitState

TOP = 5
STATE_LABELS = {"open": "整改中", "reported": "待复查", "closed": "已销号", "overdue": "超期未整改"}


def compose(unit: Unit, week_start: dt.date) -> dict:
    start, end = scoring.week_bounds(week_start)
    units, rules = scoring.score_week(week_start, root=unit)
    below = [u for u in units if u.level == unit.level + (2 if unit.level == 1 else 1) and u.score is not None]
    below.sort(key=lambda u: (-u.score, u.path))
    visits = Visit.objects.filter(unit.subtree(), state=VisitState.DONE, finished_at__gte=start, finished_at__lt=end)
    findings = list(Finding.objects.filter(unit.subtree(), created_at__gte=start, created_at__lt=end)
                    .select_related("unit").order_by("-severity", "path")[:200])
    loops = {lp.pk: lp for lp in Loop.objects.filter(pk__in=[f.loop_id for f in findings if f.loop_id])}
    now = timezone.now()
    status: Counter = Counter()
    rows = []
    for f in findings:
        lp = loops.get(f.loop_id)
        state = ("closed" if lp and lp.state == LoopState.CLOSED else "reported" if lp and lp.state == LoopState.REPORTED
                 else "overdue" if lp and lp.is_overdue(now) else "open")
        status[state] += 1
        rows.append({"unit": f.unit.name, "unit_id": f.unit_id, "text": f.text, "severity": str(Severity(f.severity).label),
                     "repeat": bool(f.repeat_of_id), "state": STATE_LABELS[state],
                     "date": timezone.localtime(f.created_at).strftime("%m-%d")})
    answered = visits.values_list("answers__result", flat=True)
    results = Counter(r for r in answered if r in ("pass", "fail"))
    total = results["pass"] + results["fail"]

    def entry(u):
        return {"unit_id": u.unit_id, "name": u.name, "score": u.score, "rank": u.rank}

    return {
        "unit": unit.name, "unit_id": unit.pk, "week_start": week_start.isoformat(),
        "week_end": (week_start + dt.timedelta(days=6)).isoformat(), "rules": rules.version,
        "overview": {"visits": visits.count(), "findings": len(findings),
                     "pass_rate": round(100 * results["pass"] / total, 1) if total else None,
                     "repeats": sum(1 for f in findings if f.repeat_of_id)},
        "best": [entry(u) for u in below[:TOP]],
        "worst": [entry(u) for u in reversed(below[-TOP:])] if len(below) > TOP else [],
        "findings": rows,
        "status": {STATE_LABELS[k]: status[k] for k in STATE_LABELS},
    }


def named_units(content: dict) -> list[int]:
    ids = {e["unit_id"] for e in content["best"] + content["worst"]} | {r["unit_id"] for r in content["findings"]}
    return sorted(ids)


def do_create_bulletin(unit: Unit, week_start: dt.date, *, acting_user) -> Bulletin:
    from .actions import InspectionError

    if unit.level not in (1, 3):
        raise InspectionError("unit", "督导通报按区或乡镇（街道）编发")
    with transaction.atomic():
        existing = Bulletin.objects.filter(unit=unit, week_start=week_start).first()
        if existing is not None:
            return existing
        year = week_start.year
        number = (Bulletin.objects.filter(unit=unit, year=year).order_by("-number")
                  .values_list("number", flat=True).first() or 0) + 1
        bulletin = Bulletin.objects.create(unit=unit, week_start=week_start, year=year, number=number,
                                           content=compose(unit, week_start), created_by=acting_user)
        audit.record(actor=acting_user, action="inspections.bulletin_created", target=bulletin,
                     changes={"number": number, "week_start": week_start.isoformat()})
    return bulletin


def do_publish_bulletin(bulletin: Bulletin, *, acting_user) -> int:
    """Publish: the units named in it (best, worst, with findings) are told. Returns how many units."""
    with transaction.atomic():
        bulletin = Bulletin.objects.select_for_update().get(pk=bulletin.pk)
        if bulletin.published_at is not None:
            return 0
        bulletin.published_at = timezone.now()
        bulletin.save(update_fields=["published_at"])
        units = named_units(bulletin.content)
        c = bulletin.content
        notify_units(units, key=f"inspections.bulletin:{bulletin.pk}", subject=f"{title(bulletin)}（{number(bulletin)}）",
                     body=f"{c['unit']} {c['week_start']} 至 {c['week_end']} 督导通报已发布，贵单位被通报，请查阅。",
                     event="inspections.bulletin")
        audit.record(actor=acting_user, action="inspections.bulletin_published", target=bulletin,
                     changes={"units": units})
    return len(units)


def title(bulletin: Bulletin) -> str:
    return f"{bulletin.content['unit']}疫情防控督导通报"


def issued(bulletin: Bulletin) -> str:
    """The date under the signature (印发日期): the day it was published, or compiled while a draft."""
    day = timezone.localtime(bulletin.published_at or bulletin.created_at).date()
    return f"{day.year}年{day.month}月{day.day}日"


def number(bulletin: Bulletin) -> str:
    return f"{bulletin.year}年第{bulletin.number}期"


def pdf(bulletin: Bulletin) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import HRFlowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from bihuan.control.release import cjk_font

    c, font, e = bulletin.content, cjk_font(), html.escape

    def style(name, size, **kw):
        return ParagraphStyle(name, fontName=font, fontSize=size, leading=size * 1.6, wordWrap="CJK", **kw)

    red = colors.HexColor("#c00000")
    head = style("head", 24, alignment=TA_CENTER, textColor=red)
    sub, h2, body, cell = style("sub", 12, alignment=TA_CENTER), style("h2", 14, spaceBefore=4 * mm), \
        style("body", 12, firstLineIndent=24), style("cell", 10)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=25 * mm, rightMargin=25 * mm, topMargin=20 * mm,
                            bottomMargin=20 * mm, title=title(bulletin), author=c["unit"], subject=number(bulletin))
    o = c["overview"]
    story = [Paragraph(e(title(bulletin)), head), Spacer(1, 2 * mm),
             Paragraph(f"{e(number(bulletin))}　　{e(c['week_start'])} 至 {e(c['week_end'])}", sub),
             HRFlowable(width="100%", thickness=2, color=red, spaceBefore=2 * mm, spaceAfter=4 * mm),
             Paragraph("一、总体情况", h2),
             Paragraph(f"本周督导组共开展“四不两直”暗访 {o['visits']} 次，发现问题 {o['findings']} 个（其中重复问题 "
                       f"{o['repeats']} 个），检查项合格率 {o['pass_rate'] if o['pass_rate'] is not None else '—'}%。", body)]

    def table(rows, widths):
        t = Table([[Paragraph(e(str(x)), cell) for x in r] for r in rows], colWidths=widths, repeatRows=1)
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#888888")),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f2f2f2"))]))
        return t

    story += [Paragraph("二、红榜（考核前列）", h2),
              table([["名次", "单位", "得分"]] + [[x["rank"], x["name"], x["score"]] for x in c["best"]],
                    [20 * mm, 100 * mm, 40 * mm])]
    if c["worst"]:
        story += [Paragraph("三、黑榜（考核靠后）", h2),
                  table([["名次", "单位", "得分"]] + [[x["rank"], x["name"], x["score"]] for x in c["worst"]],
                        [20 * mm, 100 * mm, 40 * mm])]
    n3, n4 = ("四", "五") if c["worst"] else ("三", "四")
    story += [Paragraph(f"{n3}、发现问题", h2),
              table([["日期", "单位", "问题", "等级", "整改"]] + [[r["date"], r["unit"], r["text"] + ("（重复）" if r["repeat"]
                                                                                          else ""), r["severity"], r["state"]]
                                                          for r in c["findings"]] or [["—"] * 5],
                    [16 * mm, 38 * mm, 66 * mm, 16 * mm, 24 * mm]),
              Paragraph(f"{n4}、整改情况", h2),
              Paragraph("；".join(f"{k} {v} 个" for k, v in c["status"].items()) + "。", body),
              Spacer(1, 10 * mm), Paragraph(e(f"{c['unit']}疫情防控指挥部办公室"), style("sign", 12, alignment=2)),
              Paragraph(e(issued(bulletin)), style("date", 12, alignment=2))]
    doc.build(story)
    return buf.getvalue()


def workbook(bulletin: Bulletin) -> bytes:
    from bihuan.core import excel

    c = bulletin.content
    wb = excel.workbook()
    ws = wb.active
    ws.title = "督导通报"
    title_row(ws, f"{title(bulletin)}（{number(bulletin)}）", size=14)
    ws.append([f"{c['week_start']} 至 {c['week_end']}"])
    o = c["overview"]
    ws.append(["暗访次数", o["visits"], "发现问题", o["findings"], "重复问题", o["repeats"], "合格率(%)", o["pass_rate"]])
    ws.append([])
    for label, rows in (("红榜", c["best"]), ("黑榜", c["worst"])):
        ws.append([label])
        ws.append(["名次", "单位", "得分"])
        header_style(ws[ws.max_row], fill=True)
        for x in rows:
            ws.append([x["rank"], x["name"], x["score"]])
        ws.append([])
    ws.append(["发现问题"])
    ws.append(["日期", "单位", "问题", "等级", "重复", "整改"])
    header_style(ws[ws.max_row], fill=True)
    for r in c["findings"]:
        ws.append([r["date"], r["unit"], r["text"], r["severity"], "是" if r["repeat"] else "",
                   r["state"]])
        for cell in ws[ws.max_row]:
            cell.border = excel.BORDER
    ws.append([])
    ws.append(["整改情况"] + [f"{k} {v}" for k, v in c["status"].items()])
    set_widths(ws, [10, 24, 40, 10, 8, 12, 10, 10])
    return to_bytes(wb)

