"""Directive pages: list, issue, live rollup, grid workers' marking, resident confirmation, QR sheets and the
receipt actions. Views parse, authorize through ``register.access`` and call ``actions``; nothing else writes."""

from __future__ import annotations

import re
from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Trunc
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bihuan.core.dbroute import replica_reads
from bihuan.core.http import download, int_param, is_htmx, public_url, safe_next
from bihuan.core.roles import Perm
from bihuan.loops.engine import LoopError
from bihuan.loops.models import Loop, LoopState
from bihuan.register.access import scoped, staff_required
from bihuan.register.drill import drill_rows
from bihuan.register.models import MAX_LEVEL, HouseholdKind, Unit, UnitKind, subtree_q
from bihuan.register.ordering import household_key, household_order, natural

from . import cap, drills, links, taps
from .actions import (
    DirectiveError,
    do_cancel_directive,
    do_close_directive,
    do_issue_directive,
    do_mark_households,
    do_relay_receipt,
    do_report_receipt,
    do_sign_receipt,
    do_update_directive,
)
from .export import RULE as FEEDBACK_RULE
from .export import feedback_rollup, feedback_workbook
from .forms import IssueForm, UpdateForm
from .models import RECEIPT, Directive, DirectiveStatus, FanoutState, Reach, ReachMethod, ReachStatus
from .rollup import behind as rollup_behind
from .rollup import own_counts, rollup
from .selectors import directive_for, focus_unit, receipt_for, visible_directives

PAGE_SIZE = 20
BLIND_LIMIT = 50  # units not signed / households not reached listed on the detail page
HOUSEHOLD_LIMIT = 500  # households listed at a grid (grids hold 30–150)
GRID_LIMIT = 300  # grids offered on the marking page of a unit above grid level
QR_LIMIT = 200  # cards on one printable sheet
READINESS_LIMIT = 500  # units listed on the drill report page (the workbook has them all)
XML = "application/xml; charset=utf-8"
KIND_LABELS = dict(UnitKind.choices)
MARK_METHODS = [(ReachMethod.PHONE, gettext_lazy("已电话")), (ReachMethod.WECHAT, gettext_lazy("已微信")),
                (ReachMethod.VISIT, gettext_lazy("已上门"))]
STATE_LABELS = dict(LoopState.choices)


# --- helpers ---------------------------------------------------------------------------------------------

def _focus(request, directive: Directive) -> Unit:
    """The unit whose part of the directive a page shows (``?unit=`` or the posted ``unit``; see
    ``selectors.focus_unit``)."""
    raw = request.GET.get("unit") or request.POST.get("unit")
    return focus_unit(request.user, directive, int_param(raw) if raw else None)


def _check_manager(scope, directive: Directive) -> None:
    if not directive.manageable_by(scope):
        raise PermissionDenied("only the issuing unit (or one above it) may change a directive")


_natural = natural  # one rule for the order of rooms (register.ordering)


# --- list ------------------------------------------------------------------------------------------------

@staff_required(Perm.VIEW_REGISTER)
def directive_list(request, scope):
    """Directives the user sees; those waiting for the user's own unit to sign come first."""
    own = Loop.objects.filter(kind=RECEIPT, owner_unit=scope.unit, subject_id=OuterRef("pk"), state=LoopState.ISSUED)
    qs = (visible_directives(request.user).select_related("issuer_unit", "scope_unit")
          .annotate(waiting=Exists(own)).order_by("-waiting", "-issued_at", "-pk"))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    directives = list(page)
    ids = [d.pk for d in directives]
    receipts = {lp.subject_id: lp for lp in Loop.objects.filter(kind=RECEIPT, owner_unit=scope.unit,
                                                                  subject_id__in=ids)}
    progress = _progress(scope, directives)
    rows = [{"d": d, "receipt": receipts.get(d.pk), "progress": progress.get(d.pk)} for d in directives]
    return render(request, "directives/list.html", {"rows": rows, "page": page})


def _progress(scope, directives: list[Directive]) -> dict[int, dict]:
    """Households reached / in scope in the user's part, for each directive: at most two GROUP BYs."""
    whole = [d.pk for d in directives if d.scope_unit.path.startswith(scope.root.path)]
    part = [d.pk for d in directives if d.pk not in set(whole)]
    out: dict[int, dict] = {}
    queries = []
    if whole:  # the user sees all of it: the rollup index alone answers
        queries.append(Reach.objects.filter(directive_id__in=whole))
    if part:
        queries.append(Reach.objects.filter(subtree_q(scope.root.path), directive_id__in=part))
    for qs in queries:
        for row in qs.values("directive_id").annotate(
                total=Count("id"), done=Count("id", filter=Q(status=ReachStatus.REACHED))).order_by():
            total, done = row["total"], row["done"]
            out[row["directive_id"]] = {"total": total, "done": done,
                                        "percent": round(100.0 * done / total, 1) if total else 0.0}
    return out


# --- issue -----------------------------------------------------------------------------------------------

@staff_required(Perm.ISSUE_DIRECTIVE)
def issue(request, scope):
    form = IssueForm(request.POST or None, root=scope.root)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            directive = do_issue_directive(
                acting_user=request.user, title=data["title"], body=data["body"], urgency=data["urgency"],
                target_kinds=data["target_kinds"], target_unit_ids=data["target_unit_ids"],
                household_flag=data["household_flag"], sign_minutes=data["sign_minutes"],
                reach_hours=data["reach_hours"], reminder_minutes=data["reminder_minutes"],
                reminder_limit=data["reminder_limit"], feedback_form=data["feedback_form"],
                is_exercise=data["is_exercise"])
        except DirectiveError as exc:
            form.add_error(exc.base_field if exc.base_field in form.fields else None, str(exc))
        else:
            messages.success(request, _("指令已下达"))
            return redirect("directives:detail", directive.pk)
    return render(request, "directives/issue.html", {"form": form}, status=400 if form.errors else 200)


# --- detail / live rollup --------------------------------------------------------------------------------

@staff_required(Perm.VIEW_REGISTER)
@replica_reads
def detail(request, directive_id: int, scope):
    directive = directive_for(request.user, directive_id)
    unit = _focus(request, directive)
    units, totals = rollup(directive, root=unit)
    counts = totals[unit.id]
    rows, apart = drill_rows(unit, units, totals, behind=rollup_behind,
                             own=lambda u: own_counts(totals[u.id]), keep=lambda u, c: bool(c.households or c.units))
    children = [r.unit for r in rows + apart]
    receipt_rows = Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk,
                                       owner_unit_id__in=[unit.id, *[c.id for c in children]])
    receipt_of = {lp.owner_unit_id: lp for lp in receipt_rows}
    own_receipt = receipt_of.get(unit.id) if unit.id == scope.unit.id else (
        Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk, owner_unit=scope.unit).first())
    households = None
    if unit.level == MAX_LEVEL:
        households = list(Reach.objects.filter(directive=directive, path=unit.path).select_related("household")
                          .order_by(*household_order("household__"))[:HOUSEHOLD_LIMIT])
        households.sort(key=lambda r: household_key(r.household))
    unsigned = list(Loop.objects.filter(subtree_q(unit.path), kind=RECEIPT, subject_id=directive.pk,
                                        state=LoopState.ISSUED)
                    .select_related("owner_unit").order_by("level", "path")[:BLIND_LIMIT])
    unreached = [] if households is not None else list(
        Reach.objects.filter(subtree_q(unit.path), directive=directive, status=ReachStatus.PENDING)
        .select_related("household", "unit").order_by("path", "household_id")[:BLIND_LIMIT])
    series, milestones = coverage_series(directive, unit, counts.households)
    ancestors = [u for u in unit.ancestors()
                 if scope.contains(u.path) and u.path.startswith(directive.scope_unit.path)]
    can_manage = directive.manageable_by(scope)
    return render(request, "directives/detail.html", {
        "directive": directive, "unit": unit, "counts": counts, "breadcrumb": ancestors,
        "children": [{"unit": r.unit, "kind": KIND_LABELS.get(r.unit.kind, r.unit.kind), "c": r.counts,
                      "receipt": receipt_of.get(r.unit.id), "state_label": STATE_LABELS.get(r.counts.state, ""),
                      "person": r.person, "apart": r.apart} for r in rows + apart],
        "unit_receipt": receipt_of.get(unit.id), "own_receipt": own_receipt,
        "households": households, "unsigned": unsigned, "unreached": unreached,
        "not_signed": counts.units - counts.signed, "series": series, "milestones": milestones,
        "feedback": feedback_rollup(directive, unit) if directive.feedback_form else None,
        "feedback_rule": FEEDBACK_RULE,
        "can_manage": can_manage, "can_mark": scope.can(Perm.MARK_REACH),
        "update_form": UpdateForm(initial={"title": directive.title, "body": directive.body,
                                           "urgency": directive.urgency}) if can_manage else None,
        "is_open": directive.status == DirectiveStatus.ISSUED,
    })


def coverage_series(directive: Directive, unit: Unit, total: int, now=None) -> tuple[list, list]:
    """Cumulative % of the unit's households reached since issue: one GROUP BY over ``marked_at`` truncated to
    seconds, minutes, hours or days as the directive ages, so at most ~1,800 rows come back."""
    now = now or timezone.now()
    start = directive.issued_at
    end = min(directive.closed_at or now, now)
    elapsed = max((end - start).total_seconds(), 0)
    kind = ("second" if elapsed <= 30 * 60 else "minute" if elapsed <= 12 * 3600 else "hour" if elapsed <= 20 * 86400
            else "day")
    rows = (Reach.objects.filter(subtree_q(unit.path), directive=directive, status=ReachStatus.REACHED,
                                 marked_at__isnull=False)
            .annotate(bucket=Trunc("marked_at", kind)).values("bucket").annotate(n=Count("id")).order_by("bucket"))
    series = [[int(start.timestamp() * 1000), 0.0]]
    milestones = {50: None, 90: None, 100: None}
    done = 0
    step = {"second": timedelta(seconds=1), "minute": timedelta(minutes=1), "hour": timedelta(hours=1),
            "day": timedelta(days=1)}[kind]
    for row in rows:
        done += row["n"]
        at = max(row["bucket"] + step, start)  # a bucket is complete at its end
        pct = round(100.0 * done / total, 1) if total else 0.0
        series.append([int(min(at, end).timestamp() * 1000), pct])
        for m in milestones:
            if milestones[m] is None and total and done * 100 >= m * total:
                milestones[m] = at - start
    if len(series) == 1 or series[-1][0] < int(end.timestamp() * 1000):
        series.append([int(end.timestamp() * 1000), series[-1][1]])
    return series, [(m, _duration(milestones[m])) for m in (50, 90, 100)]


def _duration(td: timedelta | None) -> str:
    if td is None:
        return ""
    seconds = max(0, int(td.total_seconds()))
    if seconds < 60:
        return _("%(s)d 秒") % {"s": seconds}
    minutes = seconds // 60
    if minutes < 60:
        return _("%(m)d 分钟") % {"m": minutes}
    if minutes < 48 * 60:
        return _("%(h)d 小时 %(m)d 分钟") % {"h": minutes // 60, "m": minutes % 60}
    return _("%(d)d 天 %(h)d 小时") % {"d": minutes // 1440, "h": minutes % 1440 // 60}


@staff_required(Perm.VIEW_REGISTER)
def progress(request, directive_id: int, scope):
    """The fan-out progress bar, polled by HTMX every 2 s until done; then the page reloads with the rollup."""
    directive = directive_for(request.user, directive_id)
    response = render(request, "directives/_fanout.html", {"directive": directive})
    if directive.fanout_state == FanoutState.DONE and is_htmx(request):
        response["HX-Refresh"] = "true"
    return response


@staff_required(Perm.VIEW_REGISTER)
@replica_reads
def export_feedback(request, directive_id: int, scope):
    directive = directive_for(request.user, directive_id)
    unit = _focus(request, directive)
    data, rows = feedback_workbook(directive, unit)
    return download(data, f"directive-{directive.pk}-feedback-{timezone.localdate():%Y%m%d}.xlsx",
                    acting_user=request.user, audit_action="directive.export_feedback", target=directive,
                    changes={"unit": unit.pk, "rows": rows})


# --- issuer actions --------------------------------------------------------------------------------------

def _back_to_detail(directive: Directive, request) -> str:
    url = reverse("directives:detail", args=[directive.pk])
    unit = request.POST.get("unit")
    return f"{url}?unit={int_param(unit)}" if unit else url


@require_POST
@staff_required(Perm.ISSUE_DIRECTIVE)
def update(request, directive_id: int, scope):
    directive = directive_for(request.user, directive_id)
    _check_manager(scope, directive)
    form = UpdateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    else:
        try:
            do_update_directive(directive=directive, acting_user=request.user, **form.cleaned_data)
        except DirectiveError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("指令已更新，已通知已签收和已触达的单位"))
    return redirect(_back_to_detail(directive, request))


def _end(request, directive_id: int, scope, do_end, done: str):
    """Cancel or close a directive (``do_end``) with the posted reason, as its issuer or a unit above it."""
    directive = directive_for(request.user, directive_id)
    _check_manager(scope, directive)
    try:
        do_end(directive=directive, reason=request.POST.get("reason", "")[:500], acting_user=request.user)
    except DirectiveError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect(_back_to_detail(directive, request))


@require_POST
@staff_required(Perm.ISSUE_DIRECTIVE)
def cancel(request, directive_id: int, scope):
    return _end(request, directive_id, scope, do_cancel_directive, _("指令已撤销"))


@require_POST
@staff_required(Perm.ISSUE_DIRECTIVE)
def close(request, directive_id: int, scope):
    return _end(request, directive_id, scope, do_close_directive, _("指令已销号"))


# --- grid workers mark households ------------------------------------------------------------------------

def _group_key(household) -> tuple[str, str]:
    """(dom-safe key, label): urban households by building, rural ones by their grid (villager group)."""
    if household.kind == HouseholdKind.URBAN and household.building:
        return f"b-{re.sub(r'[^0-9A-Za-z_-]', '_', household.building)}", household.building
    return "all", ""


def _summary(directive: Directive, unit: Unit) -> dict:
    counts = dict(Reach.objects.filter(subtree_q(unit.path), directive=directive)
                  .values_list("status").annotate(n=Count("id")).order_by())
    total = sum(counts.values())
    handled = counts.get(ReachStatus.REACHED, 0) + counts.get(ReachStatus.UNREACHABLE, 0)
    return {"total": total, "reached": counts.get(ReachStatus.REACHED, 0),
            "unreachable": counts.get(ReachStatus.UNREACHABLE, 0), "pending": counts.get(ReachStatus.PENDING, 0),
            "percent": round(100.0 * handled / total, 1) if total else 100.0}


def _groups(reaches: list[Reach], group_label_rural: str) -> list[dict]:
    groups: dict[str, dict] = {}
    for r in reaches:
        key, label = _group_key(r.household)
        g = groups.setdefault(key, {"key": key, "building": label, "label": label or group_label_rural, "rows": []})
        g["rows"].append(r)
    out = sorted(groups.values(), key=lambda g: (g["key"] == "all", _natural(g["building"])))
    for g in out:
        g["rows"].sort(key=lambda r: (_natural(r.household.entrance), _natural(r.household.room),
                                      _natural(r.household.house_number), r.household_id))
        g["pending"] = sum(1 for r in g["rows"] if r.status == ReachStatus.PENDING)
    return out


def _mark_links(directive: Directive) -> dict:
    """What every row of the household list repeats, worked out once per page: the form's address and the
    methods' labels in the page's language."""
    return {"mark_url": reverse("directives:mark_households", args=[directive.pk]),
            "methods": [(value, str(label)) for value, label in MARK_METHODS]}


@staff_required(Perm.MARK_REACH)
def mark(request, directive_id: int, scope):
    """The grid worker's phone page: their households grouped by building, one tap each."""
    directive = directive_for(request.user, directive_id)
    unit = _focus(request, directive)
    context = {"directive": directive, "unit": unit, "summary": _summary(directive, unit),
               "is_open": directive.status == DirectiveStatus.ISSUED, **_mark_links(directive)}
    if unit.level < MAX_LEVEL:
        context["grids"] = list(
            scoped(request.user, Reach.objects.filter(subtree_q(unit.path), directive=directive))
            .values("unit_id", "unit__name").annotate(
                total=Count("id"), pending=Count("id", filter=Q(status=ReachStatus.PENDING)))
            .order_by("-pending", "unit__name")[:GRID_LIMIT])
    else:
        reaches = list(scoped(request.user, Reach.objects.filter(directive=directive, path=unit.path))
                       .select_related("household")[:HOUSEHOLD_LIMIT])
        parent_name = Unit.objects.filter(pk=unit.parent_id).values_list("name", flat=True).first() or unit.name
        context["groups"] = _groups(reaches, parent_name)
    return render(request, "directives/mark.html", context)


@require_POST
@staff_required(Perm.MARK_REACH)
def mark_households(request, directive_id: int, scope):
    """One household (a row swap) or a whole building (``group``: only its pending households, then the group
    swaps with an undo on every row). Households outside the user's part are a 404, not a silent no-op."""
    directive = directive_for(request.user, directive_id)
    unit = _focus(request, directive)
    ids = sorted({int_param(h) for h in request.POST.getlist("household")})
    if not ids:
        raise Http404("no household named")
    rows = scoped(request.user, Reach.objects.filter(subtree_q(unit.path), directive=directive,
                                                     household_id__in=ids))
    if rows.count() != len(ids):
        raise Http404("a household is not in your part of the district")
    status = request.POST.get("status", "")
    group = request.POST.get("group", "")
    error = ""
    targets = ids
    if group and status != ReachStatus.PENDING:  # bulk: never overwrite a household already marked
        targets = list(rows.filter(status=ReachStatus.PENDING).values_list("household_id", flat=True))
    try:
        if targets:
            do_mark_households(directive=directive, household_ids=targets, status=status,
                               method=request.POST.get("method", ""), reason=request.POST.get("reason", ""),
                               acting_user=request.user)
    except DirectiveError as exc:
        error = str(exc)
    reaches = list(rows.select_related("household"))
    context = {"directive": directive, "unit": unit, "summary": _summary(directive, unit), "oob": True,
               "is_open": directive.status == DirectiveStatus.ISSUED, "error": error, **_mark_links(directive)}
    if group:
        rows_sorted = [r for g in _groups(reaches, "") for r in g["rows"]]
        g = {"key": group, "label": request.POST.get("label", "")[:50], "building": request.POST.get("building", ""),
             "rows": rows_sorted, "pending": sum(1 for r in rows_sorted if r.status == ReachStatus.PENDING)}
        return render(request, "directives/_mark_group.html", context | {"g": g})
    return render(request, "directives/_mark_row.html", context | {"r": reaches[0]})


# --- residents -------------------------------------------------------------------------------------------

@csrf_exempt  # the unguessable token is the authority; there is no session to ride on
def confirm(request, token: str):
    """A resident's link or QR code: no login; one tap marks the household reached. Repeats are harmless."""
    reach_id = links.reach_id_from(token)
    if reach_id is None:
        raise Http404("no such link")
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405)
    page = taps.tap(reach_id, confirm=request.method == "POST")
    if page is None:
        raise Http404("no such link")
    return render(request, "directives/confirm.html", {"page": page, "directive": page.directive})


@staff_required(Perm.MARK_REACH)
def qr_sheet(request, directive_id: int, scope):
    """Printable cards with each household's confirmation QR code, for a building or a villager group."""
    import qrcode
    from qrcode.image.svg import SvgPathImage

    directive = directive_for(request.user, directive_id)
    unit = _focus(request, directive)
    building = request.GET.get("building", "")
    qs = scoped(request.user, Reach.objects.filter(subtree_q(unit.path), directive=directive))
    if building:
        qs = qs.filter(household__building=building)
    reaches = list(qs.select_related("household").order_by("path", "household_id")[:QR_LIMIT + 1])
    more = len(reaches) > QR_LIMIT
    reaches = sorted(reaches[:QR_LIMIT], key=lambda r: (
        r.path, _natural(r.household.building), _natural(r.household.entrance), _natural(r.household.room),
        _natural(r.household.house_number)))
    cards = []
    for r in reaches:
        url = public_url(request, links.confirm_path(r.pk))
        svg = qrcode.make(url, image_factory=SvgPathImage, border=1).to_string(encoding="unicode")
        cards.append({"reach": r, "household": r.household, "url": url, "svg": mark_safe(svg)})  # noqa: S308
    return render(request, "directives/qr.html", {
        "directive": directive, "unit": unit, "building": building, "cards": cards, "more": more,
        "limit": QR_LIMIT})


# --- receipts: sign, relay, report -----------------------------------------------------------------------

def _receipt_response(request, loop: Loop, error: str = ""):
    if is_htmx(request):
        directive = Directive.objects.get(pk=loop.subject_id)
        return render(request, "directives/_receipt.html", {"receipt": loop, "d": directive, "error": error})
    if error:
        messages.error(request, error)
    return redirect(safe_next(request, "directives:list"))


@require_POST
@staff_required(Perm.SIGN_RECEIPT)
def sign(request, loop_id: int, scope):
    try:
        loop = do_sign_receipt(loop_id=loop_id, acting_user=request.user)
    except LoopError as exc:
        return _receipt_response(request, receipt_for(request.user, loop_id), str(exc))
    return _receipt_response(request, loop)


@require_POST
@staff_required(Perm.SIGN_RECEIPT)
def relay(request, loop_id: int, scope):
    try:
        loop = do_relay_receipt(loop_id=loop_id, acting_user=request.user)
    except LoopError as exc:
        return _receipt_response(request, receipt_for(request.user, loop_id), str(exc))
    return _receipt_response(request, loop)


def _shown(value):
    return "是" if value is True else "否" if value is False else value


@staff_required(Perm.SIGN_RECEIPT)
def report(request, loop_id: int, scope):
    """反馈: the directive's feedback form for one's unit (GET shows it, POST sends it). Until the directive is
    closed or cancelled a sent report can be amended; earlier versions are listed under it."""
    loop = receipt_for(request.user, loop_id)
    directive = Directive.objects.select_related("issuer_unit").get(pk=loop.subject_id)
    values = {f["key"]: request.POST.get(f"a_{f['key']}", "") for f in directive.feedback_form}
    note = request.POST.get("note", "")[:2000]
    error, error_field = "", ""
    if request.method == "POST":
        try:
            amending = loop.state == LoopState.REPORTED
            loop = do_report_receipt(loop_id=loop.pk, answers=values, note=note, acting_user=request.user)
        except DirectiveError as exc:
            error, error_field = str(exc), exc.base_field
        except LoopError as exc:
            error = str(exc)
        else:
            messages.success(request, _("反馈已修改") if amending else _("已反馈"))
            return redirect("directives:detail", directive.pk)
    elif loop.data.get("answers") is not None:
        values = {k: _shown(v) for k, v in loop.data["answers"].items()}
        note = loop.data.get("note", "")
    fields = [{**f, "value": values.get(f["key"], "")} for f in directive.feedback_form]
    labels = {f["key"]: f["label"] for f in directive.feedback_form}
    history = [{**h, "answers": [(labels.get(k, k), _shown(v)) for k, v in h.get("answers", {}).items()]}
               for h in (loop.data or {}).get("history", [])]
    can_send = (scope.can(Perm.SIGN_RECEIPT) and directive.status == DirectiveStatus.ISSUED
                and (loop.is_open or loop.state == LoopState.REPORTED))
    return render(request, "directives/report.html", {
        "receipt": loop, "directive": directive, "unit": loop.owner_unit, "fields": fields, "error": error,
        "error_field": error_field, "note": note, "own": loop.owner_unit_id == scope.unit.id,
        "can_send": can_send, "amending": loop.state == LoopState.REPORTED, "history": history,
    }, status=400 if error else 200)


# --- drills and CAP: downloads from the directive page ---------------------------------------------------

def _readiness_rows(scope, directive: Directive) -> list[drills.ReadinessRow]:
    return [r for r in drills.readiness_report(directive) if scope.contains(r.path)]


@staff_required(Perm.VIEW_REGISTER)
def readiness(request, directive_id: int, scope):
    """The drill (readiness) report: per unit of the user's part, time to sign and to 50 / 90 / 100 % reached."""
    directive = directive_for(request.user, directive_id)
    rows = _readiness_rows(scope, directive)
    top = min((r.level for r in rows), default=0)
    shown = [{"r": r, "indent": r.level - top, "state_label": STATE_LABELS.get(r.receipt_state, ""),
              "sign": _duration(r.time_to_sign),
              "times": [_duration((r.time_to or {}).get(p)) for p in drills.THRESHOLDS]}
             for r in rows[:READINESS_LIMIT]]
    return render(request, "directives/readiness.html", {
        "directive": directive, "rows": shown, "more": max(0, len(rows) - READINESS_LIMIT),
        "thresholds": drills.THRESHOLDS})


@staff_required(Perm.VIEW_REGISTER)
def readiness_xlsx(request, directive_id: int, scope):
    directive = directive_for(request.user, directive_id)
    rows = _readiness_rows(scope, directive)
    return download(drills.readiness_workbook(directive, rows), f"readiness-{directive.pk}.xlsx",
                    acting_user=request.user, audit_action="directive.export_readiness", target=directive,
                    changes={"rows": len(rows)})


@staff_required(Perm.VIEW_REGISTER)
def cap_xml(request, directive_id: int, scope):
    """The directive as a CAP 1.2 message: ``?type=Alert|Update|Cancel`` (default: its current message)."""
    directive = directive_for(request.user, directive_id)
    msg_type = request.GET.get("type") or cap.default_msg_type(directive)
    if msg_type not in cap.MSG_TYPES:
        raise Http404("no such CAP message type")
    try:
        xml = cap.alert_xml(directive, msg_type)
    except DirectiveError as exc:
        raise Http404(str(exc)) from None
    return download(xml, f"directive-{directive.pk}-{msg_type.lower()}.xml", content_type=XML,
                    acting_user=request.user, audit_action="directive.export_cap", target=directive,
                    changes={"type": msg_type})


@staff_required(Perm.VIEW_REGISTER)
def ack_xml(request, loop_id: int, scope):
    """A unit's sign-off as a CAP 1.2 ``Ack`` (404 until the unit has signed)."""
    loop = receipt_for(request.user, loop_id)
    try:
        xml = cap.ack_xml(loop)
    except DirectiveError as exc:
        raise Http404(str(exc)) from None
    return download(xml, f"directive-{loop.subject_id}-ack-{loop.owner_unit.code or loop.owner_unit_id}.xml",
                    content_type=XML, acting_user=request.user, audit_action="directive.export_cap",
                    target=loop, changes={"type": "Ack", "unit": loop.owner_unit_id})
