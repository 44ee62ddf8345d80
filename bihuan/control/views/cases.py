"""The case pages: a five-for-one member's cases, the list of a unit's cases, opening a case, and the case page
with what is done on it — measures, the team, the period, moving up, release and its notice."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core.http import PDF, download, int_param, public_url
from bihuan.core.roles import Perm
from bihuan.register.access import access_resident, access_unit, scoped, staff_required
from bihuan.register.models import Resident, subtree_q
from bihuan.register.search import search_residents

from .. import actions, checkins, dashboard, links, release, selectors
from ..forms import CheckInForm, MoveUpForm, OpenCaseForm, PeriodForm, ServiceForm, TeamForm
from ..models import OPEN_CASE_STATES, CaseState, ControlCase, ControlType
from ._common import (
    TODAY_LEVEL,
    back_to_case,
    breadcrumb,
    care_case,
    form_errors,
    next_url,
    qr_svg,
    result_buttons,
    signed_in,
    unit_of,
)

PAGE_SIZE = 30


@signed_in
def mine(request, scope):
    """A five-for-one member's cases on their phone, with today's status of each."""
    if not scope.can(Perm.CARE) and not actions.cases_for_member(request.user).exists():
        raise PermissionDenied("your role does not care for control cases")
    cases = list(actions.cases_for_member(request.user))
    today = timezone.localdate()
    return render(request, "control/mine.html", {"rows": selectors.case_rows(cases, today), "today": today,
                                                 "unit": scope.root})


@staff_required(Perm.CARE)
def case_list(request, scope):
    """Open cases (or all, ``?state=all``) of a unit's subtree, by type; search by name or phone tail."""
    unit = unit_of(request, scope)
    state = request.GET.get("state", "")
    type_code = request.GET.get("type", "")
    q = (request.GET.get("q") or "").strip()
    qs = scoped(request.user, ControlCase.objects).filter(subtree_q(unit.path)).select_related("type", "unit")
    if state != "all":
        qs = qs.filter(state__in=OPEN_CASE_STATES)
    if type_code:
        qs = qs.filter(type__code=type_code)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(phone_tail=q) | Q(id_masked__endswith=q))
    page = Paginator(qs.order_by("end_date", "id"), PAGE_SIZE).get_page(request.GET.get("page"))
    types = dashboard.control_types()
    return render(request, "control/cases.html", {
        "unit": unit, "breadcrumb": breadcrumb(scope, unit), "page": page, "q": q, "state": state,
        "type_code": type_code, "types": [(t.code, t.label) for t in types], "today": timezone.localdate(),
        "can_open": scope.can(Perm.MANAGE_CONTROL) and unit.level >= TODAY_LEVEL,
    })


# --- opening a case --------------------------------------------------------------------------------------

@require_POST
@staff_required(Perm.MANAGE_CONTROL)
def open_from_verification(request, person_id: int, scope):
    """Open the case a verification's "new control" outcome asked for, from the person's page."""
    from bihuan.pushes.access import access_person

    person = access_person(request.user, person_id)
    ver = getattr(person, "verification", None)
    if ver is None:
        raise Http404("this person has no verification")
    try:
        case = actions.do_open_case_from_verification(
            ver, acting_user=request.user, site_address=request.POST.get("site_address", "").strip()[:200],
            site_room=request.POST.get("site_room", "").strip()[:20])
    except actions.ControlError as exc:
        messages.error(request, exc.message)
        return redirect("pushes:person", person.pk)
    messages.success(request, _("已建立管控：%(name)s") % {"name": case.name})
    return redirect("control:case", case.pk)


@staff_required(Perm.MANAGE_CONTROL)
def new_case(request, scope):
    """Open a case directly: pick a resident of the unit (search) or type a name and phone."""
    unit = unit_of(request, scope)
    resident = None
    raw_resident = request.GET.get("resident") or request.POST.get("resident")
    if raw_resident:
        resident = access_resident(request.user, int_param(raw_resident))
        if not resident.path.startswith(unit.path):
            unit = access_unit(request.user, resident.unit_id)
    form = OpenCaseForm(request.POST or None, types=selectors.current_types())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if unit.level < TODAY_LEVEL:
            form.add_error(None, _("请先选择社区（村）或网格"))
        else:
            try:
                case = actions.do_open_case(
                    type_code=data["type_code"], unit=unit, name=data["name"], phone=data["phone"],
                    resident=resident, start_date=data["start_date"], site_kind=data["site_kind"],
                    site_address=data["site_address"], site_room=data["site_room"], reason=data["reason"],
                    acting_user=request.user)
            except actions.ControlError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, _("已建立管控：%(name)s") % {"name": case.name})
                return redirect("control:case", case.pk)
    q = (request.GET.get("q") or "").strip()
    matches = []
    if q and resident is None:
        matches = list(search_residents(scoped(request.user, Resident.objects).filter(subtree_q(unit.path)), q)
                       .select_related("household").order_by("path", "id")[:10])
    return render(request, "control/new.html", {
        "unit": unit, "breadcrumb": breadcrumb(scope, unit), "form": form, "resident": resident, "q": q,
        "matches": matches,
    }, status=400 if form.errors else 200)


# --- the case page ---------------------------------------------------------------------------------------

def _team_rows(case: ControlCase, team: list, editable: bool) -> list[tuple]:
    """(slot, label, member, the slot's offer) — the offer filtered by role, the household's grid worker first."""
    offers = selectors.slot_candidates(case) if editable else {}
    return [(slot, label, m, offers.get(slot, [])) for slot, label, m in team]


def case_context(request, case: ControlCase, scope, **extra) -> dict:
    today = timezone.localdate()
    now = timezone.now()
    case_checkins = list(case.checkins.select_related("entered_by__staff").order_by("-date", "-slot"))
    slots = selectors.today_slots(case, case_checkins, now)
    team = actions.team_of(case)
    measures = list(case.measure_items.select_related("done_by__staff").order_by("id"))
    photo_keys = {m.get("key") for m in case.type.measures or [] if m.get("photo")}
    is_open = case.state in OPEN_CASE_STATES
    can_manage = scope.can(Perm.MANAGE_CONTROL) and scope.contains(case.path)
    stricter = selectors.stricter_types(case)
    person_url = public_url(request, links.person_path(case.pk))
    current = (case.type if case.type.is_current
               else ControlType.objects.current().filter(code=case.type.code).first())
    context = {
        "case": case, "today": today, "day": case.day_number(today), "days": (case.end_date - case.start_date).days + 1,
        "type_name": case.type.label, "type_version": case.type.version, "current_type": current,
        "is_open": is_open, "can_manage": can_manage,
        "slots": slots, "checkins": case_checkins[:30],
        "checkin_form": CheckInForm(initial={"slot": selectors.next_slot(slots)},
                                    symptoms=checkins.symptom_choices()),
        "can_checkin": is_open and bool(slots),
        "measures": [{"item": m, "photo": m.key in photo_keys} for m in measures],
        "team": _team_rows(case, team, can_manage and is_open),
        "tests": list(case.tests.all()), "result_buttons": result_buttons(),
        "services": selectors.services_of(case), "service_form": ServiceForm(), "assignees": selectors.assignees(team),
        "period_form": PeriodForm(), "move_form": MoveUpForm(types=stricter) if stricter else None,
        "can_release": can_manage and case.end_date <= today and (
            case.state == CaseState.RELEASE_PROPOSED
            or (case.state == CaseState.ACTIVE and not actions.has_next_phase(case))),
        "previous": case.previous, "next_cases": list(case.next_cases.select_related("type")),
        "person_url": person_url, "person_qr": qr_svg(person_url),
        "breadcrumb": breadcrumb(scope, case.unit) if scope.contains(case.path) else [],
    }
    return context | extra


@signed_in
def case_detail(request, case_id: int, scope):
    case = care_case(request, case_id)
    return render(request, "control/case.html", case_context(request, case, scope))


@require_POST
@signed_in
def mark_measure(request, case_id: int, key: str, scope):
    case = care_case(request, case_id)
    try:
        actions.do_mark_measure(case, key, acting_user=request.user, photo=request.FILES.get("photo"))
    except actions.ControlError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("已完成"))
    return redirect(back_to_case(case.pk, "measures"))


@require_POST
@staff_required(Perm.MANAGE_CONTROL)
def set_team(request, case_id: int, scope):
    case = actions.access_case(request.user, case_id)
    form = TeamForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return redirect(back_to_case(case.pk, "team"))
    data = form.cleaned_data
    user = None
    if data["user"]:
        offer = selectors.slot_candidates(case).get(data["slot"], [])
        staff = next((o["staff"] for o in offer if o["staff"].user_id == data["user"]), None)
        if staff is None:
            raise Http404("no such staff member for this case")
        user = staff.user
    try:
        actions.do_set_team_member(case, data["slot"], user=user, name=data["name"], phone=data["phone"],
                                   acting_user=request.user)
    except actions.ControlError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("五包一已更新"))
    return redirect(back_to_case(case.pk, "team"))


@require_POST
@staff_required(Perm.MANAGE_CONTROL)
def change_period(request, case_id: int, scope):
    case = actions.access_case(request.user, case_id)
    form = PeriodForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
    else:
        try:
            case = actions.do_change_period(case, form.cleaned_data["days_delta"], form.cleaned_data["reason"],
                                            acting_user=request.user)
        except actions.ControlError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("管控期限已调整为 %(end)s 止") % {"end": f"{case.end_date:%Y-%m-%d}"})
    return redirect(back_to_case(case.pk))


@require_POST
@staff_required(Perm.MANAGE_CONTROL)
def move_up(request, case_id: int, scope):
    case = actions.access_case(request.user, case_id)
    form = MoveUpForm(request.POST, types=selectors.stricter_types(case))
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return redirect(back_to_case(case.pk))
    data = form.cleaned_data
    try:
        new = actions.do_move_up(case, data["type_code"], data["reason"], site_address=data["site_address"],
                                 site_room=data["site_room"], acting_user=request.user)
    except actions.ControlError as exc:
        messages.error(request, exc.message)
        return redirect(back_to_case(case.pk))
    messages.success(request, _("已升级为%(type)s") % {"type": new.type.label})
    return redirect("control:case", new.pk)


@require_POST
@staff_required(Perm.MANAGE_CONTROL)
def release_case(request, case_id: int, scope):
    case = actions.access_case(request.user, case_id)
    try:
        release.do_release(case, acting_user=request.user)
    except actions.ControlError as exc:
        messages.error(request, exc.message)
        return redirect(next_url(request, back_to_case(case.pk)))
    messages.success(request, _("已解除管控，请打印解除告知书"))
    return redirect(next_url(request, back_to_case(case.pk)))


@signed_in
def notice(request, case_id: int, scope):
    """The release notice (解除隔离告知书), printable HTML; a preview until the case is released."""
    case = care_case(request, case_id)
    return HttpResponse(release.release_notice_html(case))


@signed_in
def notice_pdf(request, case_id: int, scope):
    case = care_case(request, case_id)
    return download(release.release_notice_pdf(case), f"release-notice-{case.pk}.pdf", content_type=PDF,
                    acting_user=request.user, audit_action="control.notice.export", target=case,
                    changes={"format": "pdf"})
