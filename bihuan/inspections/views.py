"""Inspection pages: the overview (dashboard), plans (the command's), visits answered on a phone, findings and their
rectification, the ranking (红黑榜) with its formula and drill-down, and bulletins. Views parse, authorize through
``access`` and call ``actions`` / ``bulletin``; nothing here writes."""

from __future__ import annotations

import datetime as dt
import mimetypes
from collections import Counter
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from bihuan.core.http import PDF, download, int_param, parse_date, whole
from bihuan.loops.models import Loop, LoopEvent, LoopState
from bihuan.register.access import access_unit, scope_of
from bihuan.register.models import Unit, subtree_q

from . import access, actions, bulletin, planning, scoring, selectors
from .actions import InspectionError
from .models import Answer, AnswerResult, Bulletin, InspectionGroup, Plan, Severity, Visit, VisitState


def viewer(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        access.require_viewer(request.user)
        return view(request, *args, **kwargs)

    return wrapper


def _week(request) -> dt.date:
    raw = request.GET.get("week") or request.POST.get("week")
    if raw:
        day = parse_date(raw)
        if day is None:
            raise Http404("bad week")
        return planning.monday(day)
    return planning.monday(timezone.localdate())


@viewer
def overview(request):
    user = request.user
    ctx = selectors.dashboard(user)
    ctx.update(is_command=access.is_command(user), is_inspector=access.is_inspector(user),
               my_visits=selectors.my_visits(user))
    return render(request, "inspections/overview.html", ctx)


@viewer
def plans(request):
    access.require_command(request.user)
    week = _week(request)
    if request.method == "POST":
        group = InspectionGroup.objects.filter(pk=int_param(request.POST.get("group"))).first()
        if group is None:
            raise Http404("no such group")
        seed = request.POST.get("seed", "").strip()
        try:
            actions.do_draw_plan(group, week_start=week, seed=whole(seed, high=2**53),
                                 acting_user=request.user)
            messages.success(request, f"{group.name} 本周计划已生成")
        except InspectionError as e:
            messages.error(request, e.message)
        return redirect(f"{request.path}?week={week.isoformat()}")
    groups = list(InspectionGroup.objects.prefetch_related("territory", "members"))
    week_plans = {p.group_id: p for p in Plan.objects.filter(week_start=week)}
    visits = Visit.objects.filter(plan__week_start=week).select_related("group", "responsible_unit")
    return render(request, "inspections/plans.html", {
        "week": week, "prev_week": week - dt.timedelta(days=7), "next_week": week + dt.timedelta(days=7),
        "groups": [(g, week_plans.get(g.pk)) for g in groups], "visits": visits})


@viewer
def visit_detail(request, visit_id: int):
    visit = access.access_visit(request.user, visit_id)
    answers = list(visit.answers.select_related("item"))
    findings = {f.answer_id: f for f in visit.findings.all()}
    return render(request, "inspections/visit.html", {
        "visit": visit, "answers": [(a, findings.get(a.pk)) for a in answers],
        "may_inspect": access.may_inspect(request.user, visit), "results": AnswerResult.choices})


@viewer
@require_POST
def visit_start(request, visit_id: int):
    visit = access.access_visit(request.user, visit_id)
    actions.do_start_visit(visit, acting_user=request.user)
    return redirect("inspections:visit", visit_id=visit.pk)


@viewer
@require_POST
def visit_submit(request, visit_id: int):
    visit = access.access_visit(request.user, visit_id)
    given = {}
    for a in visit.answers.all():
        given[a.pk] = {"result": request.POST.get(f"result-{a.pk}", ""), "reason": request.POST.get(f"reason-{a.pk}", ""),
                       "note": request.POST.get(f"note-{a.pk}", ""), "photo": request.FILES.get(f"photo-{a.pk}")}
    try:
        findings = actions.do_submit_visit(visit, given, acting_user=request.user)
    except InspectionError as e:
        messages.error(request, e.message)
        return redirect("inspections:visit", visit_id=visit.pk)
    messages.success(request, f"检查完成，发现问题 {len(findings)} 个，已下发整改")
    return redirect("inspections:visit", visit_id=visit.pk)


@viewer
def photo(request, answer_id: int):
    """An answer's photo (or the rectification photo with ``?report=1``), to those who may see the visit."""
    answer = Answer.objects.filter(pk=answer_id).select_related("visit").first()
    if answer is None:
        raise Http404("no such photo")
    access.access_visit(request.user, answer.visit_id)
    file = answer.photo
    if request.GET.get("report"):
        finding = access.access_finding(request.user, answer.finding.pk) if hasattr(answer, "finding") else None
        file = finding.report_photo if finding else None
    if not file:
        raise Http404("no photo")
    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return FileResponse(file.open("rb"), content_type=content_type)


@viewer
def findings(request):
    qs = access.visible_findings(request.user).select_related("unit", "visit", "loop")
    state = request.GET.get("state", "open")
    if state not in selectors.FINDING_STATES:
        state = "open"
    severity = request.GET.get("severity", "")
    severity = severity if severity in Severity.values else ""
    unit = access_unit(request.user, int_param(request.GET.get("unit"))) if request.GET.get("unit") else None
    rows = selectors.finding_rows(qs, state, severity, unit)
    keep = "".join(f"&{k}={v}" for k, v in (("severity", severity), ("unit", unit.pk if unit else "")) if v)
    return render(request, "inspections/findings.html", {
        "rows": rows, "state": state, "severity": severity, "unit": unit, "keep": keep,
        "severity_label": Severity(severity).label if severity else ""})


@viewer
def finding_detail(request, finding_id: int):
    finding = access.access_finding(request.user, finding_id)
    loop = Loop.objects.get(pk=finding.loop_id) if finding.loop_id else None
    events = list(LoopEvent.objects.filter(loop=loop).select_related("actor")) if loop else []
    return render(request, "inspections/finding.html", {
        "finding": finding, "loop": loop, "events": events, "overdue": loop.is_overdue() if loop else False,
        "may_rectify": access.may_rectify(request.user, finding) and loop is not None and loop.is_open,
        "may_judge": access.may_judge(request.user, finding) and loop is not None
        and loop.state == LoopState.REPORTED})


def _finding_action(request, finding_id: int, fn):
    finding = access.access_finding(request.user, finding_id)
    try:
        fn(finding)
    except InspectionError as e:
        messages.error(request, e.message)
    return redirect("inspections:finding", finding_id=finding.pk)


@viewer
@require_POST
def finding_report(request, finding_id: int):
    return _finding_action(request, finding_id, lambda f: actions.do_report_rectification(
        f, text=request.POST.get("text", ""), photo=request.FILES.get("photo"), acting_user=request.user))


@viewer
@require_POST
def finding_close(request, finding_id: int):
    return _finding_action(request, finding_id, lambda f: actions.do_close_rectification(
        f, note=request.POST.get("note", ""), acting_user=request.user))


@viewer
@require_POST
def finding_return(request, finding_id: int):
    return _finding_action(request, finding_id, lambda f: actions.do_return_rectification(
        f, reason=request.POST.get("reason", ""), acting_user=request.user))


@viewer
def ranking(request):
    root = access.score_root(request.user)
    week = _week(request)
    default = 3 if root.level == 1 else min(root.level + 1, 6)
    level = int_param(request.GET.get("level", str(default)), low=1, high=6)
    ctx = selectors.ranking(root, week, level)
    ctx.update(week=week, prev_week=week - dt.timedelta(days=7), next_week=week + dt.timedelta(days=7),
               level=level, levels=range(max(root.level, 1), 7), root=root)
    return render(request, "inspections/ranking.html", ctx)


@viewer
def drill(request, unit_id: int):
    root = access.score_root(request.user)
    unit = Unit.objects.filter(subtree_q(root.path), pk=unit_id).first()
    if unit is None:
        raise Http404("no such unit")
    key = request.GET.get("key", "")
    if key not in scoring.INDICATORS:
        raise Http404("no such indicator")
    week = _week(request)
    return render(request, "inspections/drill.html", {"unit": unit, "key": key, "label": scoring.INDICATORS[key][0],
                                                      "week": week, "rows": selectors.drill(unit, key, week)})


@viewer
def bulletins(request):
    scope = scope_of(request.user)
    if request.method == "POST":
        access.require_command(request.user) if scope.unit.level < 3 else None
        unit = access_unit(request.user, int_param(request.POST.get("unit")))
        if not (access.is_command(request.user) or (scope.unit.pk == unit.pk and unit.level == 3)):
            raise PermissionDenied("the command or the township itself compiles its bulletin")
        try:
            b = bulletin.do_create_bulletin(unit, _week(request), acting_user=request.user)
        except InspectionError as e:
            messages.error(request, e.message)
            return redirect("inspections:bulletins")
        return redirect("inspections:bulletin", bulletin_id=b.pk)
    qs = Bulletin.objects.filter(subtree_q(scope.root.path, "unit__path")).select_related("unit")
    if not access.is_command(request.user):
        qs = qs.exclude(published_at=None) | Bulletin.objects.filter(unit=scope.unit).select_related("unit")
    units = Unit.objects.filter(subtree_q(scope.root.path), level__in=[1, 3]).order_by("path")
    return render(request, "inspections/bulletins.html", {"bulletins": qs.order_by("-week_start", "-id")[:100],
                                                          "units": units, "week": _week(request)})


def _bulletin(request, bulletin_id: int) -> Bulletin:
    scope = scope_of(request.user)
    b = Bulletin.objects.filter(subtree_q(scope.root.path, "unit__path"), pk=bulletin_id).select_related("unit").first()
    if b is None or (b.published_at is None and not access.is_command(request.user) and b.unit_id != scope.unit.pk):
        raise Http404("no such bulletin")
    return b


@viewer
def bulletin_detail(request, bulletin_id: int):
    b = _bulletin(request, bulletin_id)
    return render(request, "inspections/bulletin.html", {"b": b, "c": b.content, "title": bulletin.title(b),
                                                         "number": bulletin.number(b),
                                                         "may_publish": access.is_command(request.user)
                                                         or b.unit_id == scope_of(request.user).unit.pk})


@viewer
def bulletin_pdf(request, bulletin_id: int):
    b = _bulletin(request, bulletin_id)
    return download(bulletin.pdf(b), f"督导通报-{b.year}-{b.number}.pdf", content_type=PDF, inline=True,
                    acting_user=request.user, audit_action="inspections.bulletin_pdf", target=b)


@viewer
def bulletin_xlsx(request, bulletin_id: int):
    b = _bulletin(request, bulletin_id)
    return download(bulletin.workbook(b), f"督导通报-{b.year}-{b.number}.xlsx", acting_user=request.user,
                    audit_action="inspections.bulletin_xlsx", target=b)


@viewer
@require_POST
def bulletin_publish(request, bulletin_id: int):
    b = _bulletin(request, bulletin_id)
    if not (access.is_command(request.user) or b.unit_id == scope_of(request.user).unit.pk):
        raise PermissionDenied("the command or the township itself publishes its bulletin")
    n = bulletin.do_publish_bulletin(b, acting_user=request.user)
    messages.success(request, f"已发布，通知 {n} 个单位")
    return redirect("inspections:bulletin", bulletin_id=b.pk)


def counts_by(rows, key) -> list[tuple[str, int]]:
    return Counter(key(r) for r in rows).most_common()


VISIT_STATES = VisitState
