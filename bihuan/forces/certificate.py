"""The volunteer-service certificate (志愿服务证明): an A4 PDF with the helper's hours served, drawn with reportlab
and the embedded CJK font of the release notice (``control.release.cjk_font``)."""

from __future__ import annotations

import html
import io

from django.utils import timezone

from . import roster
from .models import Helper, Shift


def _cn(day) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def certificate_context(helper: Helper) -> dict:
    shifts = Shift.objects.filter(helper=helper, on_at__isnull=False).select_related("post")
    first = shifts.order_by("on_at").values_list("on_at", flat=True).first()
    posts = sorted({s.post.name for s in shifts[:200]})
    hours = round(roster.seconds_served_by(helper) / 3600, 1)
    today = timezone.localdate()
    return {
        "title": "志愿服务证明",
        "number": f"{today:%Y%m%d}-{helper.pk:06d}",
        "name": helper.name,
        "id_masked": helper.id_masked or "——",
        "kind": helper.get_kind_display(),
        "organisation": helper.organisation or "——",
        "unit": helper.unit.name,
        "hours": hours,
        "shifts": shifts.count(),
        "since": _cn(timezone.localdate(first)) if first else "——",
        "posts": "、".join(posts[:8]) + ("等" if len(posts) > 8 else "") or "——",
        "date": _cn(today),
        "body": (f"兹证明{helper.name}同志（{helper.get_kind_display()}）自{_cn(timezone.localdate(first)) if first else '报到之日'}"
                 f"起在{helper.unit.name}参加疫情防控志愿服务，累计服务 {hours} 小时，"
                 "服从安排、坚守岗位、认真负责，为疫情防控工作作出了积极贡献。特此证明。"),
    }


def certificate_pdf(helper: Helper) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from bihuan.control.release import cjk_font

    ctx = certificate_context(helper)
    font = cjk_font()
    e = html.escape

    def style(name: str, size: float, **kw) -> ParagraphStyle:
        return ParagraphStyle(name, fontName=font, fontSize=size, leading=size * 1.7, wordWrap="CJK", **kw)

    cell = style("cell", 12)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=25 * mm, rightMargin=25 * mm, topMargin=25 * mm,
                            bottomMargin=20 * mm, title=ctx["title"], author=ctx["unit"])
    rows = [["姓名", ctx["name"]], ["身份证号", ctx["id_masked"]], ["类别", ctx["kind"]], ["单位", ctx["organisation"]],
            ["服务社区", ctx["unit"]], ["服务岗位", ctx["posts"]], ["服务班次", f"{ctx['shifts']} 班"],
            ["累计服务时长", f"{ctx['hours']} 小时"]]
    table = Table([[Paragraph(e(a), cell), Paragraph(e(str(b)), cell)] for a, b in rows], colWidths=[35 * mm, 125 * mm])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#888888")),
                               ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f2f2"))]))
    story = [Paragraph(e(ctx["title"]), style("title", 24, alignment=TA_CENTER, spaceAfter=4 * mm)),
             Paragraph(f"编号：{e(ctx['number'])}", style("right", 11, alignment=TA_RIGHT)), Spacer(1, 6 * mm),
             Paragraph(e(ctx["body"]), style("para", 13, firstLineIndent=26)), Spacer(1, 6 * mm), table,
             Spacer(1, 16 * mm), Paragraph(f"{e(ctx['unit'])}（盖章）", style("sig", 13, alignment=TA_RIGHT)),
             Paragraph(e(ctx["date"]), style("date", 13, alignment=TA_RIGHT))]
    doc.build(story)
    return buf.getvalue()
