"""Release (解除隔离): proposing cases whose period is over with every test negative, releasing them, and the
release notice (解除隔离告知书) as HTML and as an A4 PDF.

``propose_releases(today)`` runs in the worker every round (helper task ``control`` calls it). A case is
ready when it is active, its end date is today or past, and every test sample of this phase is negative —
a positive, pending, missed or not yet recorded result blocks it. A ready case whose protocol chain has a
next phase (e.g. 7 days centralized, then 3 days home monitoring) is not proposed: the next phase opens as
a new case (``actions.advance_phase``). The others become ``release_proposed`` in one UPDATE, with one
audit row each (one INSERT) and a digest to the staff who release them. Community staff then release
(``do_release``) and print the notice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import logging
import os
from collections import defaultdict
from functools import lru_cache, wraps

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.utils import timezone, translation

from bihuan.core import audit
from bihuan.core.models import AuditEntry
from bihuan.core.roles import Perm, Role
from bihuan.notify.outbox import notify_user
from bihuan.register.models import SEGMENT, Staff, Unit

from .actions import (
    ControlError,
    _authorize,
    _locked,
    advance_phase,
    end_case_loops,
    has_next_phase,
    phase_ready,
)
from .models import CaseState, ControlCase, TestResult, TestSample

log = logging.getLogger("bihuan.control")

CHUNK = 2000
RELEASE_LEVEL = 4  # the community / village releases (a case held higher up is released there)
CJK_FONT_FILE = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"  # Debian fonts-wqy-microhei


def ready_cases(today: dt.date):
    """Active cases whose phase is over (end date today or past) with every test sample negative."""
    blocking = TestSample.objects.filter(case=OuterRef("pk")).exclude(result=TestResult.NEGATIVE)
    return ControlCase.objects.filter(state=CaseState.ACTIVE, end_date__lte=today).filter(~Exists(blocking))


def _releasing_path(path: str) -> str:
    return path[: SEGMENT * min(RELEASE_LEVEL, len(path) // SEGMENT)]


def _tell_releasers(ids_by_unit_path: dict[str, list[int]], today: dt.date) -> None:
    """One digest per community staff member: how many people wait to be released."""
    staff = Staff.objects.filter(unit__path__in=list(ids_by_unit_path),
                                 role__in=[Role.COMMUNITY_STAFF, Role.TOWNSHIP_STAFF]).select_related("user", "unit")
    for s in staff:
        ids = sorted(ids_by_unit_path[s.unit.path])
        digest = hashlib.sha256(repr(ids).encode()).hexdigest()[:16]
        notify_user(s.user, key=f"control.release_proposed:{s.user_id}:{today:%Y%m%d}:{digest}",
                    subject=f"待解除：{len(ids)} 人管控期满且核酸均为阴性",
                    body=f"{s.unit.name}：{len(ids)} 人已到解除条件，请核对后办理解除并打印解除告知书。")


def propose_releases(today: dt.date | None = None) -> int:
    """Propose ready cases for release (or advance them to their next phase). Idempotent; returns how many
    cases were proposed or advanced."""
    today = today or timezone.localdate()
    rows = list(ready_cases(today).values_list("id", "phase_index", "phases", "path"))
    last = [(pk, path) for pk, index, phases, path in rows if index + 1 >= len(phases or [])]
    chained = [pk for pk, index, phases, _path in rows if index + 1 < len(phases or [])]
    proposed = 0
    by_unit: dict[str, list[int]] = defaultdict(list)
    for start in range(0, len(last), CHUNK):
        chunk = last[start:start + CHUNK]
        ids = [pk for pk, _ in chunk]
        with transaction.atomic():
            # Only those still active: a second worker, or a change since the read above, proposes nothing.
            won = set(ControlCase.objects.filter(id__in=ids, state=CaseState.ACTIVE).select_for_update()
                      .values_list("id", flat=True))
            n = ControlCase.objects.filter(id__in=won, state=CaseState.ACTIVE).update(
                state=CaseState.RELEASE_PROPOSED)
            proposed += n
            AuditEntry.objects.bulk_create([
                AuditEntry(action="control.case.propose_release", target_type="control.controlcase",
                           target_id=str(pk), changes={"state": [CaseState.ACTIVE, CaseState.RELEASE_PROPOSED],
                                                       "today": today.isoformat()})
                for pk in sorted(won)])
            for pk, path in chunk:
                if pk in won:
                    by_unit[_releasing_path(path)].append(pk)
    if by_unit:
        with transaction.atomic():
            _tell_releasers(by_unit, today)
    advanced = 0
    for pk in chained:
        case = ControlCase.objects.filter(pk=pk).first()
        if case is None:
            continue
        try:
            if advance_phase(case, today=today) is not None:
                advanced += 1
        except ControlError as exc:  # changed since the read (a new result, a period change): next round
            log.info("case %s not advanced: %s", pk, exc)
    return proposed + advanced


def do_release(case: ControlCase, *, acting_user) -> ControlCase:
    """Release a case (解除): proposed for release, or active and ready on its last phase. By community staff
    and above (``MANAGE_CONTROL``) in their subtree."""
    with transaction.atomic():
        _authorize(acting_user, Perm.MANAGE_CONTROL)
        case = _locked(case, acting_user)
        today = timezone.localdate()
        if case.state == CaseState.ACTIVE:
            if has_next_phase(case):
                raise ControlError("state", "该个案还有下一管控阶段，期满后自动转入")
            if not phase_ready(case, today):
                raise ControlError("state", "未到期或核酸检测结果不全为阴性，不能解除")
        elif case.state != CaseState.RELEASE_PROPOSED:
            raise ControlError("state", f"该个案不能解除（{case.get_state_display()}）")
        elif case.tests.exclude(result=TestResult.NEGATIVE).exists():
            raise ControlError("state", "核酸检测结果不全为阴性，不能解除")
        before = case.state
        now = timezone.now()
        by = acting_user if getattr(acting_user, "is_authenticated", False) else None
        if not ControlCase.objects.filter(pk=case.pk, state=before).update(
                state=CaseState.RELEASED, released_at=now, released_by=by):
            raise ControlError("state", "该个案已被他人处理")
        case.state, case.released_at, case.released_by = CaseState.RELEASED, now, by
        end_case_loops(case, acting_user=acting_user)
        audit.record(actor=acting_user, action="control.case.release", target=case, changes={
            "state": [before, CaseState.RELEASED], "name": case.name, "id": case.id_masked,
            "period": [case.start_date.isoformat(), case.end_date.isoformat()]})
    return case


# --- the notice ------------------------------------------------------------------------------------------

def issuing_unit(case: ControlCase) -> Unit:
    """The unit that releases: the releasing staff member's unit, else the case's community (level 4)."""
    if case.released_by_id:
        staff = Staff.objects.filter(user_id=case.released_by_id).select_related("unit").first()
        if staff is not None:
            return staff.unit
    return Unit.objects.filter(path=_releasing_path(case.path)).first() or case.unit


def _chain(case: ControlCase, limit: int = 10) -> list[ControlCase]:
    """The earlier cases of this person's control, oldest first (phases ended, moved up)."""
    out, seen = [], {case.pk}
    current = case.previous
    while current is not None and current.pk not in seen and len(out) < limit:
        out.append(current)
        seen.add(current.pk)
        current = current.previous
    return list(reversed(out))


def _cn_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def in_chinese(fn):
    """An official document is Chinese whatever the staff member's UI language (state and result labels too)."""
    @wraps(fn)
    def chinese(*args, **kwargs):
        with translation.override("zh-hans"):
            return fn(*args, **kwargs)
    return chinese


@in_chinese
def notice_context(case: ControlCase) -> dict:
    """Everything the notice shows, the same for HTML and PDF."""
    case = ControlCase.objects.select_related("type", "unit", "previous__type").get(pk=case.pk)
    tests = list(case.tests.all())
    released = case.state == CaseState.RELEASED and case.released_at is not None
    day = timezone.localdate(case.released_at) if released else timezone.localdate()
    type_name = case.type.name_zh
    days = (case.end_date - case.start_date).days + 1
    site = case.site_address + (f" {case.site_room}室" if case.site_room and not case.site_room.endswith("室")
                                else (f" {case.site_room}" if case.site_room else ""))
    all_negative = bool(tests) and all(t.result == TestResult.NEGATIVE for t in tests)
    protocol = (f"《新型冠状病毒肺炎防控方案（{case.protocol_name}）》" if case.protocol_name
                else "疫情防控有关规定")
    if tests:
        tested = (f"期间按要求完成核酸检测{len(tests)}次，结果均为阴性" if all_negative
                  else f"期间核酸检测{len(tests)}次，结果见下表")
    else:
        tested = "期间未安排核酸检测"
    unit = issuing_unit(case)
    chain = [{"type": c.type.name_zh, "start": _cn_date(c.start_date), "end": _cn_date(c.end_date),
              "state": c.get_state_display()} for c in _chain(case)]
    return {
        "case": case,
        "title": f"解除{type_name}告知书",
        "number": f"{day:%Y%m%d}-{case.pk:06d}",
        "draft": not released,
        "name": case.name,
        "id_masked": case.id_masked or "——",
        "type_name": type_name,
        "site": site,
        "start": _cn_date(case.start_date),
        "end": _cn_date(case.end_date),
        "days": days,
        "tests": [{"day": t.day, "date": _cn_date(t.date), "result": t.get_result_display() if t.result else "未采样",
                   "negative": t.result == TestResult.NEGATIVE} for t in tests],
        "chain": chain,
        "unit": unit.name,
        "date": _cn_date(day),
        "body": (f"你于{_cn_date(case.start_date)}至{_cn_date(case.end_date)}在{site}接受{type_name}，共{days}天。"
                 f"{tested}，经评估符合解除条件，自{_cn_date(day)}起解除{type_name}。"),
        "legal": (f"根据《中华人民共和国传染病防治法》和{protocol}等有关规定，特此告知。"
                  "解除后请继续做好个人防护，坚持佩戴口罩、勤洗手、常通风、保持社交距离，非必要不聚集；"
                  "如出现发热、干咳、乏力、咽痛、嗅（味）觉减退、腹泻等症状，请立即向所在社区报告，"
                  "并佩戴口罩及时到就近发热门诊就诊，途中避免乘坐公共交通工具。"),
        "footer": "本告知书一式两份，被管控人员与发放单位各执一份。",
    }


@in_chinese
def release_notice_html(case: ControlCase) -> str:
    """The release notice (解除隔离告知书) as a printable HTML page, in Chinese."""
    return render_to_string("control/release_notice.html", notice_context(case))


@lru_cache(maxsize=1)
def cjk_font() -> str:
    """Register and return the CJK font for PDFs: WenQuanYi Micro Hei (embedded, subset) if installed, else
    reportlab's built-in CID font STSong-Light (not embedded; readers supply a Song face)."""
    from reportlab.pdfbase import pdfmetrics

    if os.path.exists(CJK_FONT_FILE):
        from reportlab.pdfbase.ttfonts import TTFont

        try:
            pdfmetrics.registerFont(TTFont("WenQuanYiMicroHei", CJK_FONT_FILE, subfontIndex=0))
            return "WenQuanYiMicroHei"
        except Exception:  # noqa: BLE001 - a broken font file: fall back rather than fail the notice
            log.exception("cannot load %s; using STSong-Light", CJK_FONT_FILE)
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


@in_chinese
def release_notice_pdf(case: ControlCase) -> bytes:
    """The release notice as an A4 PDF (reportlab), with the same content as the HTML."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    ctx = notice_context(case)
    font = cjk_font()
    e = html.escape

    def style(name: str, size: float, **kw) -> ParagraphStyle:
        return ParagraphStyle(name, fontName=font, fontSize=size, leading=size * 1.7, wordWrap="CJK", **kw)

    title, body = style("title", 20, alignment=TA_CENTER, spaceAfter=4 * mm), style("body", 12)
    small, right = style("small", 10, textColor=colors.HexColor("#555555")), style("right", 12, alignment=TA_RIGHT)
    para = style("para", 12, firstLineIndent=24)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=25 * mm, rightMargin=25 * mm, topMargin=22 * mm,
                            bottomMargin=20 * mm, title=ctx["title"], author=ctx["unit"],
                            subject=f"{ctx['title']} {ctx['number']}")
    story = [Paragraph(e(ctx["title"]), title), Paragraph(f"编号：{e(ctx['number'])}", right)]
    if ctx["draft"]:
        story.append(Paragraph("（预览：尚未解除）", style("draft", 12, alignment=TA_CENTER,
                                                          textColor=colors.HexColor("#b00020"))))
    story += [Spacer(1, 4 * mm), Paragraph(f"{e(ctx['name'])}（身份证号：{e(ctx['id_masked'])}）：", body),
              Paragraph(e(ctx["body"]), para), Paragraph(e(ctx["legal"]), para), Spacer(1, 4 * mm)]
    cell = style("cell", 11)
    rows = [[Paragraph("管控类型", cell), Paragraph(e(ctx["type_name"]), cell)],
            [Paragraph("管控地点", cell), Paragraph(e(ctx["site"]), cell)],
            [Paragraph("管控期限", cell), Paragraph(f"{e(ctx['start'])}至{e(ctx['end'])}（{ctx['days']}天）", cell)]]
    for c in ctx["chain"]:
        rows.append([Paragraph("此前管控", cell),
                     Paragraph(f"{e(c['type'])}：{e(c['start'])}至{e(c['end'])}（{e(c['state'])}）", cell)])
    info = Table(rows, colWidths=[30 * mm, 130 * mm])
    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#888888")),
                       ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f2f2")),
                       ("VALIGN", (0, 0), (-1, -1), "MIDDLE")])
    info.setStyle(grid)
    story += [info, Spacer(1, 5 * mm)]
    if ctx["tests"]:
        story.append(Paragraph("核酸检测记录", style("h2", 13, spaceAfter=2 * mm)))
        trows = [[Paragraph(h, cell) for h in ("检测", "日期", "结果")]]
        trows += [[Paragraph(f"第{t['day']}天", cell), Paragraph(e(t["date"]), cell), Paragraph(e(t["result"]), cell)]
                  for t in ctx["tests"]]
        tests = Table(trows, colWidths=[30 * mm, 65 * mm, 65 * mm], repeatRows=1)
        tests.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#888888")),
                                   ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f2f2f2"))]))
        story += [tests, Spacer(1, 10 * mm)]
    story += [Paragraph(f"{e(ctx['unit'])}（盖章）", right), Paragraph(e(ctx["date"]), right),
              Spacer(1, 8 * mm), Paragraph(e(ctx["footer"]), small)]
    doc.build(story)
    return buf.getvalue()
