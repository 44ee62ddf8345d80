"""Pushed-list pages: the day's list, a person's verification (HTMX section saves, call buttons, outcomes),
transfers (转办 / 签收 / 退回), the command office's manual-dispatch queue, ping-pongs and the hand-off export.
Views parse, authorize through ``register.access`` and call the actions; nothing else writes."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from bihuan.core.errors import Refused
from bihuan.core.http import download, int_param, is_htmx, parse_date, safe_next
from bihuan.core.roles import Perm
from bihuan.loops.models import LoopEvent
from bihuan.policy.rules import arrival_of, protocol_in_force
from bihuan.register.access import access_unit, scoped, staff_required
from bihuan.register.models import Unit, UnitKind, subtree_q

from . import forms as pforms
from . import selectors
from .access import access_incoming, access_person, viewable_person, visible_transfers
from .actions import (
    do_accept_transfer,
    do_dispatch,
    do_fix_id_number,
    do_record_call,
    do_return_transfer,
    do_reveal_person,
    do_save_verification,
    do_transfer,
)
from .address import is_in_queue
from .exports import handoff_xlsx
from .models import Measure, Outcome, PushedPerson, RouteMethod, Transfer, TransferState, Verification
from .verify import (
    DWELLING_TYPES,
    HEALTH_STATUSES,
    OUTCOME_FIELDS,
    OUTCOME_OPTIONAL,
    SYMPTOMS,
    UNREACHABLE_REASONS,
    CallResult,
    TestResult,
    VerifyError,
    last_failed_call,
    recommendation,
)

PAGE_SIZE = 50
LIST_LIMIT = 100  # transfers / ping-pongs shown on one page


# --- helpers ---------------------------------------------------------------------------------------------

def _day(value: str | None) -> dt.date:
    if not value:
        return timezone.localdate()
    day = parse_date(value)
    if day is None:
        raise Http404("not a date")
    return day


def _next(request, default: str) -> str:
    return safe_next(request, default)


def _unit_choices(scope) -> list:
    return pforms.unit_groups(scope.root.path)


# --- the day's list --------------------------------------------------------------------------------------

@staff_required(Perm.VERIFY_PUSH)
def person_list(request, scope):
    """The day's pushed people of a unit: counts, overdue first, a filter by status."""
    unit = access_unit(request.user, int_param(request.GET.get("unit") or scope.root.id))
    day = _day(request.GET.get("date"))
    status = request.GET.get("status", "")
    now = timezone.now()
    qs, overdue, done = selectors.day_list(request.user, unit, day, now)
    counts = selectors.day_counts(qs, overdue, done)
    rows = {"open": qs.exclude(done), "overdue": qs.filter(overdue), "done": qs.filter(done),
            "transferring": qs.filter(transferring=True)}.get(status, qs)
    rows = rows.select_related("unit", "verification", "verification__loop").order_by(
        "rank", "first_pushed_at", "id")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "pushes/list.html", {
        "unit": unit, "day": day, "status": status, "counts": counts, "page": page, "now": now,
        "handoff_full_url": reverse("pushes:handoff") + f"?unit={unit.pk}&date={day:%Y-%m-%d}",
        "statuses": pforms.STATUSES, "prev_day": day - dt.timedelta(days=1), "next_day": day + dt.timedelta(days=1),
        "can_dispatch": scope.can(Perm.DISPATCH_PUSH),
    })


# --- a person --------------------------------------------------------------------------------------------

SCALARS = ("origin", "arrival_date", "destination", "compound", "building", "entrance", "room", "dwelling_type",
           "cohabitants", "health_status", "vaccine_doses")


def _values(ver: Verification | None, posted=None) -> dict:
    """What the form shows: the stored values, or what was posted when a save was refused."""
    v: dict = {}
    for name in SCALARS:
        x = getattr(ver, name, None) if ver else None
        v[name] = x.isoformat() if isinstance(x, dt.date) else ("" if x is None else x)
    v["visited"] = list(ver.visited or []) if ver else []
    v["tests"] = list(ver.tests or []) if ver else []
    v["symptoms"] = list(ver.symptoms or []) if ver else []
    v["outcome"] = ver.outcome if ver else Outcome.VERIFYING
    v["detail"] = dict(ver.outcome_detail or {}) if ver else {}
    section = posted.get("section") if posted is not None else None
    if section == "all" or section in pforms.SECTIONS:
        # a refused save shows everything that was typed, never the stored values instead
        data = pforms.form_data(posted) if section == "all" else pforms.section_data(posted, section)
        if section == "all" and posted.get("outcome"):
            data["outcome"] = posted.get("outcome")
        v.update({k: data[k] for k in SCALARS if k in data})
        v.update({k: data[k] for k in ("visited", "tests", "symptoms") if k in data})
        if "outcome" in data:
            v["outcome"] = data["outcome"]
            v["detail"] = {k: x for k, x in data.items() if k != "outcome"}
    return v


def _outcome_groups(v: dict) -> list[dict]:
    return [{"value": o.value, "label": o.label, "required": OUTCOME_FIELDS[o.value],
             "optional": OUTCOME_OPTIONAL[o.value], "current": o.value == v["outcome"],
             "detail": v["detail"] if o.value == v["outcome"] else {}} for o in Outcome]


FIELD_WORDS = {"origin": gettext_lazy("来源地 / 出发地"), "arrival_date": gettext_lazy("抵达日期"),
               "destination": gettext_lazy("目的地（去往哪里）"), "compound": gettext_lazy("小区 / 村组"),
               "building": gettext_lazy("楼栋"), "entrance": gettext_lazy("单元"), "room": gettext_lazy("房号"),
               "dwelling_type": gettext_lazy("居住类型"), "cohabitants": gettext_lazy("同住人数"),
               "health_status": gettext_lazy("健康状况"), "vaccine_doses": gettext_lazy("疫苗接种剂次"),
               "symptoms": gettext_lazy("症状"), "tests": gettext_lazy("核酸检测"), "visited": gettext_lazy("途经地")}


def _amendments(ver: Verification | None) -> list[dict]:
    """Earlier versions of a completed report, newest first, in words (``Verification.amendments``)."""
    outcomes, measures = dict(Outcome.choices), dict(Measure.choices)
    out = []
    for a in reversed((ver.amendments or []) if ver else []):
        try:
            at = dt.datetime.fromisoformat(a.get("at", ""))
        except ValueError:
            at = None
        out.append({"at": at, "by": a.get("by", ""), "outcome": outcomes.get(a.get("outcome"), a.get("outcome")),
                    "measure": measures.get(a.get("measure"), ""), "verified_by": a.get("verified_by", ""),
                    "fields": [str(FIELD_WORDS.get(k, k)) for k in sorted(a.get("fields") or {})]})
    return out


def _attempts(ver: Verification | None) -> list[dict]:
    labels = dict(CallResult.choices)
    out = []
    for a in (ver.call_attempts or []) if ver else []:
        try:
            at = dt.datetime.fromisoformat(a.get("at", ""))
        except ValueError:
            at = None
        out.append({"at": at, "result": a.get("result", ""), "label": labels.get(a.get("result"), a.get("result")),
                    "note": a.get("note", "")})
    return out


def _person_context(request, scope, person: PushedPerson, incoming: Transfer | None, posted=None,
                    **extra) -> dict:
    ver = selectors.verification_of(person)
    v = _values(ver, posted)
    loop = ver.loop if ver else None
    measure, basis = (ver.recommended_measure, ver.recommendation_basis) if ver else ("", "")
    if ver is not None and not basis:
        measure, basis = recommendation(person, ver)  # shown, not stored: a page view writes nothing
    transfers = selectors.transfer_history(person)
    pending_out = next((t for t in transfers if t.state == TransferState.PENDING), None)
    can_edit = incoming is None and scope.can(Perm.VERIFY_PUSH)
    in_queue = is_in_queue(person)
    return {
        "person": person, "ver": ver, "loop": loop, "incoming": incoming, "pending_out": pending_out,
        "transfers": transfers, "can_edit": can_edit, "in_queue": in_queue,
        "can_dispatch": in_queue and scope.can(Perm.DISPATCH_PUSH) and incoming is None,
        "can_reveal": scope.can(Perm.REVEAL_PERSONAL) and incoming is None,
        "events": list(LoopEvent.objects.filter(loop=loop).select_related("actor__staff").order_by("id")) if loop else [],
        "v": v, "attempts": _attempts(ver), "outcomes": _outcome_groups(v), "measures": Measure.choices, "rec_measure": measure, "rec_basis": basis,
        "rec_label": dict(Measure.choices).get(measure, ""), "call_results": CallResult.choices,
        "call_labels": dict(CallResult.choices), "unreachable_reasons": UNREACHABLE_REASONS,
        "reason_default": last_failed_call(ver) if ver else "", "amendments": _amendments(ver), "dwelling_types": DWELLING_TYPES, "health_statuses": HEALTH_STATUSES,
        "symptom_choices": SYMPTOMS, "test_results": TestResult.choices, "test_labels": dict(TestResult.choices),
        "unit_groups": _unit_choices(scope) if can_edit else [], "now": timezone.now(),
        "transfer_groups": pforms.unit_groups(scope.root.path, exclude={person.unit_id, scope.unit.pk})
        if can_edit else [],
        "visited_rows": v["visited"] + [{}] * 2, "test_rows": v["tests"] + [{}],
        "other_symptoms": "，".join(s for s in v["symptoms"] if s not in {k for k, _l in SYMPTOMS}),
        "protocol": protocol_in_force(arrival_of(person, ver)),
        "evidence": selectors.evidence_of(person),
        **selectors.person_panels(scope, person, ver),
        **extra,
    }


@staff_required(Perm.VERIFY_PUSH)
def person_detail(request, person_id: int, scope):
    person, incoming = viewable_person(request.user, person_id)
    return render(request, "pushes/person.html", _person_context(request, scope, person, incoming))


@require_POST
@staff_required(Perm.VERIFY_PUSH)
def save(request, person_id: int, scope):
    """Save one section of the verification form; HTMX swaps the section (with its errors) in place."""
    person = access_person(request.user, person_id)
    section = request.POST.get("section", "")
    if section != "all" and section not in pforms.SECTIONS:
        raise Http404("no such section")
    ver = Verification.objects.filter(person=person).first()
    if ver is None:
        raise Http404("this person has no verification yet")
    error = None
    try:
        data = pforms.form_data(request.POST) if section == "all" else pforms.section_data(request.POST, section)
        do_save_verification(ver, data, acting_user=request.user)
    except VerifyError as exc:
        error = exc
    except Refused as exc:  # a loop that cannot move (LoopError), a transfer refused
        error = VerifyError(exc.field or "outcome", exc.message)
    if not is_htmx(request):
        if error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("已保存"))
        return redirect("pushes:person", person.pk)
    person.refresh_from_db()
    field = getattr(error, "field", "")
    context = _person_context(request, scope, person, None, posted=request.POST if error else None,
                              section=section, saved=error is None, error=error, error_field=field,
                              section_error=_section_of(field))
    return render(request, "pushes/_verify_form.html", context | {"oob": True})


def _section_of(field: str) -> str:
    """The section of the form a field belongs to (for the error beside it)."""
    name = field.split("[")[0].split(".")[0]
    for section, names in pforms.SECTIONS.items():
        if name in names:
            return section
    if name in ("visited",):
        return "trip"
    if name in ("symptoms", "tests"):
        return "health"
    return "outcome"


@require_POST
@staff_required(Perm.VERIFY_PUSH)
def call(request, person_id: int, scope):
    person = access_person(request.user, person_id)
    ver = Verification.objects.filter(person=person).first()
    if ver is None:
        raise Http404("this person has no verification yet")
    error = ""
    try:
        do_record_call(ver, request.POST.get("result", ""), note=request.POST.get("note", "")[:100],
                       acting_user=request.user)
    except VerifyError as exc:
        error = str(exc)
    if not is_htmx(request):
        if error:
            messages.error(request, error)
        return redirect("pushes:person", person.pk)
    return render(request, "pushes/_calls.html",
                  _person_context(request, scope, person, None, call_error=error) | {"oob": True})


@require_POST
@staff_required(Perm.REVEAL_PERSONAL)
def reveal(request, person_id: int, scope):
    person = access_person(request.user, person_id)
    try:
        values = do_reveal_person(person, acting_user=request.user, reason=request.POST.get("reason", "")[:200])
    except Refused as exc:  # no reason, or the per-user reveal limit reached (core.reveal)
        return render(request, "register/_reveal_refused.html", {"message": exc.message})
    return render(request, "pushes/_revealed.html", values | {"person": person})


@require_POST
@staff_required(Perm.VERIFY_PUSH)
def fix_id(request, person_id: int, scope):
    """"ID to fix": the verifier records the right ID number (validated, audited)."""
    person = access_person(request.user, person_id)
    try:
        do_fix_id_number(person, request.POST.get("id_number", "")[:40], acting_user=request.user)
    except VerifyError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("证件号已保存"))
    return redirect("pushes:person", person.pk)


# --- transfers -------------------------------------------------------------------------------------------

@require_POST
@staff_required(Perm.VERIFY_PUSH)
def transfer(request, person_id: int, scope):
    person = access_person(request.user, person_id)
    form = pforms.TransferForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("pushes:person", person.pk)
    to_unit = Unit.objects.filter(pk=form.cleaned_data["to_unit"]).first()
    if to_unit is None:
        messages.error(request, _("to_unit: 没有这个单位"))
        return redirect("pushes:person", person.pk)
    try:
        do_transfer(person, to_unit, form.cleaned_data["reason"], acting_user=request.user)
    except Refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已转办给 %(unit)s，等待对方接收") % {"unit": to_unit.name})
    return redirect("pushes:person", person.pk)


def _answer_response(request, transfer: Transfer, error: str, default: str):
    if is_htmx(request):
        transfer = Transfer.objects.select_related("person", "from_unit", "to_unit", "loop").get(pk=transfer.pk)
        return render(request, "pushes/_transfer.html", {"t": transfer, "error": error, "incoming": True})
    if error:
        messages.error(request, error)
    return redirect(_next(request, default))


@require_POST
@staff_required(Perm.VERIFY_PUSH)
def accept(request, transfer_id: int, scope):
    t = access_incoming(request.user, transfer_id)
    error = ""
    try:
        do_accept_transfer(t, acting_user=request.user)
    except Refused as exc:
        error = str(exc)
    else:
        messages.success(request, _("已接收 %(name)s") % {"name": t.person.name})
    return _answer_response(request, t, error, reverse("pushes:person", args=[t.person_id]) if not error
                            else reverse("pushes:transfers"))


@require_POST
@staff_required(Perm.VERIFY_PUSH)
def return_transfer(request, transfer_id: int, scope):
    t = access_incoming(request.user, transfer_id)
    error = ""
    try:
        do_return_transfer(t, request.POST.get("reason", "")[:300], acting_user=request.user)
    except Refused as exc:
        error = str(exc)
    else:
        messages.success(request, _("已退回"))
    return _answer_response(request, t, error, reverse("pushes:transfers"))


@staff_required(Perm.VERIFY_PUSH)
def transfers(request, scope):
    """Transfers waiting for my unit (and those below it) to answer, mine waiting for others, recent answers."""
    root = scope.root.path
    base = visible_transfers(request.user).select_related("person", "from_unit", "to_unit", "loop")
    incoming = list(base.pending().filter(subtree_q(root, "to_unit__path"))
                    .order_by("created_at", "id")[:LIST_LIMIT])
    outgoing = list(base.pending().filter(subtree_q(root, "from_unit__path"))
                    .exclude(subtree_q(root, "to_unit__path")).order_by("created_at", "id")[:LIST_LIMIT])
    since = timezone.now() - dt.timedelta(days=3)
    answered = list(base.filter(answered_at__gte=since).order_by("-answered_at", "-id")[:LIST_LIMIT])
    return render(request, "pushes/transfers.html", {"incoming": incoming, "outgoing": outgoing,
                                                     "answered": answered, "now": timezone.now()})


@staff_required(Perm.VERIFY_PUSH)
def ping_pong(request, scope):
    """Ping-pong transfers between units of my subtree (I am their common parent or above), with each
    person's whole chain."""
    root = scope.root.path
    flagged = list(Transfer.objects.filter(subtree_q(root, "from_unit__path"), subtree_q(root, "to_unit__path"),
                                           ping_pong=True)
                   .select_related("person", "from_unit", "to_unit", "loop").order_by("-created_at", "-id")[:LIST_LIMIT])
    chains: dict[int, list[Transfer]] = {}
    for t in (Transfer.objects.filter(person_id__in={f.person_id for f in flagged})
              .select_related("from_unit", "to_unit", "loop").order_by("id")):
        chains.setdefault(t.person_id, []).append(t)
    rows = [{"t": f, "chain": chains.get(f.person_id, [])} for f in flagged]
    return render(request, "pushes/ping_pong.html", {"rows": rows})


# --- the command office ----------------------------------------------------------------------------------

@staff_required(Perm.DISPATCH_PUSH)
def dispatch_queue(request, scope):
    qs = (scoped(request.user, PushedPerson.objects)
          .filter(unit__kind=UnitKind.COMMAND_OFFICE, route_method=RouteMethod.MANUAL)
          .select_related("verification__loop").order_by("first_pushed_at", "id"))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "pushes/dispatch.html", {"page": page, "now": timezone.now()})


@require_POST
@staff_required(Perm.DISPATCH_PUSH)
def dispatch(request, person_id: int, scope):
    person = access_person(request.user, person_id)
    form = pforms.DispatchForm(request.POST)
    unit = Unit.objects.filter(pk=form.cleaned_data["unit"]).first() if form.is_valid() else None
    if unit is None:
        messages.error(request, _("unit: 请选择分派单位"))
        return redirect(_next(request, reverse("pushes:person", args=[person.pk])))
    try:
        do_dispatch(person, unit, acting_user=request.user)
    except (Refused, PermissionDenied) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已分派给 %(unit)s") % {"unit": unit.name})
    return redirect(_next(request, reverse("pushes:dispatch_queue")))


# --- export ----------------------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
@staff_required(Perm.VERIFY_PUSH)
def handoff(request, scope):
    """The hand-off record, masked on GET; full ID numbers and phones (the receiving city must reach the person)
    on a POST with a reason and a confirmation by a role that may reveal (``core.reveal.full_export``)."""
    from bihuan.core import reveal as reveals

    unit = access_unit(request.user, int_param(request.GET.get("unit") or scope.root.id))  # POST: in the action URL
    day = _day(request.GET.get("date"))
    try:
        reason = reveals.full_export(request, can_reveal=scope.can(Perm.REVEAL_PERSONAL))
    except Refused as exc:
        messages.error(request, exc.message)
        return redirect(reverse("pushes:list") + f"?unit={unit.pk}&date={day:%Y-%m-%d}")
    data, rows = handoff_xlsx(unit, day, reveal=reason is not None)
    return download(data, f"handoff-{unit.code}-{day:%Y%m%d}.xlsx", acting_user=request.user,
                    audit_action="push.handoff.export", target=unit,
                    changes={"date": day.isoformat(), "rows": rows, "revealed": reason is not None,
                             **({"reason": reason} if reason is not None else {})})

