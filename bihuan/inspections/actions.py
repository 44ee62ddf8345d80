"""Every write of inspections, each in a transaction with its audit row: groups, plans, visits and their
answers, findings and their rectification loops (through the loop engine), bulletins.

Refusals raise ``InspectionError`` (a ``Refused``): pages show it beside the field, the API answers 400.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.loops import engine, kinds
from bihuan.loops.engine import Notice
from bihuan.loops.models import Loop, LoopState
from bihuan.notify.outbox import notify_units
from bihuan.register.models import Unit

from . import access, planning, prefill
from .models import (
    RECTIFY_KINDS,
    REPEAT_DAYS,
    Answer,
    AnswerResult,
    ChecklistTemplate,
    Finding,
    InspectionGroup,
    Plan,
    Visit,
    VisitState,
    raised,
)

MAX_PHOTO_BYTES = 8 * 1024 * 1024
PHOTO_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


class InspectionError(Refused):
    pass


# ---------------------------------------------------------------------------------------------- photos


def checked_photo(photo, field: str = "photo") -> str:
    """The photo's file extension, after checking with Pillow that it is a real JPEG, PNG or WebP image of at most
    8 MB (a renamed file or a truncated upload is refused)."""
    from PIL import Image, UnidentifiedImageError

    if photo is None:
        raise InspectionError(field, "请拍照上传")
    if (getattr(photo, "size", 0) or 0) > MAX_PHOTO_BYTES:
        raise InspectionError(field, "照片不能超过 8 MB")
    try:
        photo.seek(0)
        with Image.open(photo) as image:
            fmt = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InspectionError(field, "请上传 JPEG、PNG 或 WebP 照片") from None
    finally:
        photo.seek(0)
    if fmt not in PHOTO_FORMATS:
        raise InspectionError(field, "请上传 JPEG、PNG 或 WebP 照片")
    return PHOTO_FORMATS[fmt]


# ---------------------------------------------------------------------------------------------- groups


def do_create_group(*, name: str, leader, members: Iterable, territory: Iterable[Unit], visits_per_week: int = 6,
                    acting_user) -> InspectionGroup:
    if acting_user is not None and not access.is_command(acting_user):
        raise PermissionDenied("only the district command forms inspection groups")
    name = (name or "").strip()
    if not name:
        raise InspectionError("name", "请填写督导组名称")
    territory = list(territory)
    if not territory:
        raise InspectionError("territory", "请选择督导范围")
    members = list(members)
    if leader is not None and leader not in members:
        members.append(leader)
    with transaction.atomic():
        group = InspectionGroup.objects.create(name=name[:100], leader=leader, visits_per_week=visits_per_week)
        group.members.set(members)
        group.territory.set(territory)
        audit.record(actor=acting_user, action="inspections.group_created", target=group,
                     changes={"members": [m.pk for m in members], "territory": [u.pk for u in territory]})
    return group


# ---------------------------------------------------------------------------------------------- plans


def template_for(kind: str) -> ChecklistTemplate:
    template = ChecklistTemplate.objects.filter(target_kind=kind, active=True).order_by("-version").first()
    if template is None:
        raise InspectionError("target_kind", f"没有“{kind}”的检查清单")
    return template


def do_draw_plan(group: InspectionGroup, *, week_start: dt.date, seed: int | None = None, acting_user,
                 at: dt.datetime | None = None) -> Plan:
    """Draw the group's visits of the week (see ``planning``). One plan per group and week."""
    if acting_user is not None and not access.is_command(acting_user):
        raise PermissionDenied("only the district command draws plans")
    week_start = planning.monday(week_start)
    if Plan.objects.filter(group=group, week_start=week_start).exists():
        raise InspectionError("week_start", "该督导组本周已有计划")
    at = at or timezone.now()
    seed = seed if seed is not None else random.SystemRandom().randrange(1, 2**53)
    cands = planning.candidates(group, at, week_start)
    chosen = planning.draw(cands, group.visits_per_week, seed)
    responsible = dict(Unit.objects.filter(path__in={c.responsible_path for c in chosen}).values_list("path", "id"))
    templates = {kind: template_for(kind) for kind in {c.kind for c in chosen}}
    with transaction.atomic():
        plan = Plan.objects.create(group=group, week_start=week_start, seed=seed, as_of=at, candidates=len(cands),
                                   weights_digest=planning.digest(cands), weights=[c.record() for c in cands],
                                   created_by=acting_user)
        Visit.objects.bulk_create(
            Visit(group=group, plan=plan, target_kind=c.kind, unit_id=c.unit_id, path=c.path,
                  responsible_unit_id=responsible[c.responsible_path], case_id=c.case_id, post_id=c.post_id,
                  label=c.label[:200],
                  weight=c.weight, planned_for=week_start + dt.timedelta(days=i % 5), template=templates[c.kind])
            for i, c in enumerate(chosen))
        audit.record(actor=acting_user, action="inspections.plan_drawn", target=plan,
                     changes={"seed": seed, "candidates": len(cands), "visits": len(chosen),
                              "digest": plan.weights_digest})
    return plan


def redraw(plan: Plan) -> list[tuple[str, int]]:
    """The plan's draw repeated from its seed on the data as it is now: (kind, case, post or unit id) per visit.
    Equal to the plan's visits while the weights have not changed since (``weights_digest`` tells)."""
    cands = planning.candidates(plan.group, plan.as_of, plan.week_start)
    return [(c.kind, c.target_id) for c in planning.draw(cands, plan.visits.count(), plan.seed)]


def redraw_recorded(plan: Plan) -> list[tuple[str, int]]:
    """The plan's draw repeated from its seed and the weights it kept (whatever the data says now)."""
    return planning.draw_recorded(plan.weights, plan.visits.count(), plan.seed)


# ---------------------------------------------------------------------------------------------- visits


def do_start_visit(visit: Visit, *, acting_user) -> Visit:
    """The inspector arrives: the visit starts (from now on the target unit sees it) and the items that the data
    answers are pre-filled as of this moment."""
    if not access.may_inspect(acting_user, visit):
        raise PermissionDenied("only the visit's group carries it out")
    with transaction.atomic():
        visit = Visit.objects.select_for_update().select_related("responsible_unit").get(pk=visit.pk)
        if visit.state != VisitState.PLANNED:
            return visit
        now = timezone.now()
        visit.state, visit.started_at, visit.inspector = VisitState.IN_PROGRESS, now, acting_user
        visit.save(update_fields=["state", "started_at", "inspector"])
        rows = []
        for item in visit.template.items.all():
            found = prefill.answer(item.prefill, visit, now) if item.prefill else None
            result, evidence, url = found or ("", "", "")
            rows.append(Answer(visit=visit, item=item, path=visit.responsible_unit.path, prefilled=result,
                               evidence=evidence[:300], evidence_url=url[:300]))
        Answer.objects.bulk_create(rows)
        audit.record(actor=acting_user, action="inspections.visit_started", target=visit,
                     changes={"prefilled": sum(1 for a in rows if a.prefilled)})
    return visit


def do_submit_visit(visit: Visit, answers: dict[int, dict], *, acting_user) -> list[Finding]:
    """Answer every item and finish the visit. ``answers`` maps an answer id to ``{"result", "reason", "note",
    "photo"}``. A result that differs from the data's needs a reason; a failed item needs a photo. Each failed item
    becomes a finding with one rectification loop. Returns the findings."""
    if not access.may_inspect(acting_user, visit):
        raise PermissionDenied("only the visit's group carries it out")
    with transaction.atomic():
        visit = Visit.objects.select_for_update().select_related("responsible_unit").get(pk=visit.pk)
        if visit.state != VisitState.IN_PROGRESS:
            raise InspectionError("state", "检查未开始或已完成")
        rows = list(visit.answers.select_related("item"))
        now = timezone.now()
        failed = []
        for a in rows:
            given = answers.get(a.pk) or {}
            field = f"answer-{a.pk}"
            result = given.get("result") or a.prefilled
            if result not in AnswerResult.values:
                raise InspectionError(field, f"“{a.item.text}”：请选择检查结果")
            reason = (given.get("reason") or "").strip()
            if a.prefilled and result != a.prefilled and not reason:
                raise InspectionError(field, f"“{a.item.text}”：与系统数据不一致，请说明理由")
            photo = given.get("photo")
            if result == AnswerResult.FAIL:
                ext = checked_photo(photo, field)
                a.photo.save(f"v{visit.pk}-{a.item.key}{ext}", photo, save=False)
                failed.append(a)
            a.result, a.override_reason, a.note = result, reason[:300], (given.get("note") or "").strip()[:500]
            a.answered_at = now
            a.save()
        visit.state, visit.finished_at = VisitState.DONE, now
        visit.save(update_fields=["state", "finished_at"])
        findings = [_open_finding(visit, a, now, acting_user) for a in failed]
        audit.record(actor=acting_user, action="inspections.visit_done", target=visit,
                     changes={"answers": len(rows), "failed": [a.item.key for a in failed],
                              "overridden": [a.item.key for a in rows if a.prefilled and a.result != a.prefilled]})
    return findings


def _open_finding(visit: Visit, answer: Answer, now: dt.datetime, actor) -> Finding:
    """One finding and its rectification loop. The same item failing at the same unit within ``REPEAT_DAYS`` is a
    repeat: one step more severe, and the parent unit is told."""
    unit = visit.responsible_unit
    previous = (Finding.objects.filter(unit=unit, item_key=answer.item.key,
                                       created_at__gte=now - dt.timedelta(days=REPEAT_DAYS))
                .exclude(visit=visit).order_by("-created_at").first())
    severity = answer.item.severity
    if previous is not None:
        severity = raised(max(severity, previous.severity, key=lambda s: ["minor", "major", "critical"].index(s)))
    finding = Finding.objects.create(answer=answer, visit=visit, unit=unit, path=unit.path, item_key=answer.item.key,
                                     text=answer.item.text, severity=severity, repeat_of=previous, created_at=now)
    label = dict(Finding._meta.get_field("severity").choices)[severity]
    title = f"督查整改：{unit.name}「{answer.item.text}」"
    kind = RECTIFY_KINDS[severity]
    loop = engine.open_one(kind=kind, subject_id=finding.pk, title=title[:200], owner_unit=unit,
                           originator_unit=unit.parent or unit, originator_user=actor,
                           due_at=now + kinds.get(kind).due_within,
                           data={"visit": visit.pk, "severity": severity},
                           notice=Notice(f"督查整改（{label}）：{answer.item.text}",
                                         f"{visit.get_target_kind_display()} {visit.label}：{answer.item.text}。"
                                         f"请按期整改并拍照反馈。"))
    finding.loop = loop
    finding.save(update_fields=["loop"])
    if previous is not None and unit.parent_id:
        notify_units([unit.parent_id], key=f"inspections.repeat:{finding.pk}",
                     subject=f"重复问题：{unit.name}「{answer.item.text}」{REPEAT_DAYS} 天内再次出现",
                     body=f"{unit.name} 的“{answer.item.text}”在 {previous.created_at:%m-%d} 督查中已发现，"
                          f"今日再次出现，已升级为“{label}”整改，请督促落实。", event="inspections.repeat")
    audit.record(actor=actor, action="inspections.finding_opened", target=finding,
                 changes={"severity": severity, "repeat_of": previous.pk if previous else None, "loop": loop.pk})
    return finding


# ---------------------------------------------------------------------------------------------- rectification


def _loop(finding: Finding) -> Loop:
    if finding.loop_id is None:
        raise InspectionError("finding", "该问题没有整改闭环")
    return Loop.objects.get(pk=finding.loop_id)


def do_report_rectification(finding: Finding, *, text: str, photo, acting_user) -> Finding:
    """The responsible unit reports the problem fixed, with a photo (反馈)."""
    if not access.may_rectify(acting_user, finding):
        raise PermissionDenied("only the responsible unit reports its rectification")
    text = (text or "").strip()
    if not text:
        raise InspectionError("text", "请说明整改情况")
    ext = checked_photo(photo)
    with transaction.atomic():
        loop = _loop(finding)
        if loop.state not in (LoopState.ISSUED, LoopState.ACKNOWLEDGED, LoopState.IN_PROGRESS):
            raise InspectionError("state", "该整改当前不能反馈")
        finding.report_photo.save(f"f{finding.pk}-{loop.pk}-{finding.returns}{ext}", photo, save=False)
        finding.save(update_fields=["report_photo"])
        engine.transition(loop, LoopState.REPORTED, actor=acting_user, note=text[:2000],
                          data={"report": text[:2000], "photo": finding.report_photo.name})
        audit.record(actor=acting_user, action="inspections.rectification_reported", target=finding,
                     changes={"photo": finding.report_photo.name})
    return finding


def do_close_rectification(finding: Finding, *, acting_user, note: str = "") -> Finding:
    """The inspector re-checks and closes it (销号)."""
    if not access.may_judge(acting_user, finding):
        raise PermissionDenied("only the inspection group closes a rectification")
    with transaction.atomic():
        loop = _loop(finding)
        if loop.state != LoopState.REPORTED:
            raise InspectionError.conflict("state", "整改尚未反馈，不能销号")
        engine.transition(loop, LoopState.CLOSED, actor=acting_user, note=note[:2000] or "复查合格，销号")
        audit.record(actor=acting_user, action="inspections.rectification_closed", target=finding)
    return finding


def do_return_rectification(finding: Finding, *, reason: str, acting_user) -> Finding:
    """The inspector re-checks and returns it (退回) with a reason: back to work, reminded from its deadline."""
    if not access.may_judge(acting_user, finding):
        raise PermissionDenied("only the inspection group returns a rectification")
    reason = (reason or "").strip()
    if not reason:
        raise InspectionError("reason", "请说明退回理由")
    with transaction.atomic():
        loop = _loop(finding)
        if loop.state != LoopState.REPORTED:
            raise InspectionError.conflict("state", "整改尚未反馈，不能退回")
        engine.reopen(loop, actor=acting_user, note=f"退回：{reason}"[:2000])
        Finding.objects.filter(pk=finding.pk).update(returns=finding.returns + 1)
        finding.returns += 1
        notify_units([finding.unit_id], key=f"inspections.returned:{finding.pk}:{finding.returns}",
                     subject=f"整改被退回：{finding.text}", body=f"退回理由：{reason}", event="inspections.returned")
        audit.record(actor=acting_user, action="inspections.rectification_returned", target=finding,
                     changes={"reason": reason[:300]})
    return finding
