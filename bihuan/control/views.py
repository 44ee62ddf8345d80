"""Control-and-care pages: a team member's cases and the case page (measures, team, check-ins, tests, service
requests, period, moving up, release and its notice), a community's "today" page, the dashboard with its
Excel export, and the person's own page through their signed link (no login).

Views parse, authorize through ``bihuan.register.access`` (directly, or through ``actions.access_case`` /
``checkins.care_access``, which use it) and call the action functions of ``actions``, ``checkins``,
``sampling``, ``services``, ``release``; nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Prefetch, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bihuan.core import audit
from bihuan.core.roles import Perm
from bihuan.loops.models import OPEN_STATES, Loop
from bihuan.register.access import access_resident, access_unit, scope_of, scoped, staff_required
from bihuan.register.models import MAX_LEVEL, Resident, ResidentStatus, Staff, Unit, subtree_q
from bihuan.register.search import search_residents

from . import actions, care, checkins, dashboard, links, release, sampling, services
from .export import dashboard_workbook
from .forms import CheckInForm, MoveUpForm, OpenCaseForm, PeriodForm, ServiceForm, TeamForm
from .models import (
    ALERT_KINDS,
    OPEN_CASE_STATES,
    CareVisit,
    CaseState,
    CheckIn,
    CheckInSlot,
    ControlCase,
    ControlType,
    ServiceKind,
    ServiceRequest,
    TestResult,
    TestSample,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAGE_SIZE = 30
LIST_LIMIT = 300  # rows of one list on the today page (a community holds tens of cases)
TODAY_LEVEL = 4  # the today page lists people from the community / village down; above it, pick a unit
CANDIDATE_LIMIT = 200  # staff offered for a five-for-one slot
RESULT_BUTTONS = [TestResult.NEGATIVE, TestResult.POSITIVE, TestResult.PENDING, TestResult.MISSED]
ERRORS = (actions.ControlError, checkins.CareError)


# --- helpers ---------------------------------------------------------------------------------------------

def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("not a number") from None


def _date(value: str | None, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(value) if value else default
    except ValueError:
        return default


def _next(request, default: str) -> str:
    """``next`` from the form if it points back into this site, else ``default``."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _unit(request, scope) -> Unit:
    raw = request.GET.get("unit") or request.POST.get("unit")
    return access_unit(request.user, _int(raw)) if raw else scope.root


def _breadcrumb(scope, unit: Unit) -> list[Unit]:
    return [u for u in unit.ancestors() if u.path.startswith(scope.root.path)]


def _message(exc: Exception) -> str:
    """An action's refusal as a sentence: ``ControlError`` carries it, the care errors start with the field."""
    if isinstance(exc, actions.ControlError):
        return exc.message
    text = str(exc)
    field, sep, rest = text.partition(": ")
    return rest if sep and " " not in field else text


def _field(exc: Exception) -> str:
    if isinstance(exc, actions.ControlError):
        return exc.field
    return str(exc).partition(": ")[0]


def signed_in(view):
    """Login and a staff binding (``scope_of``); the permission is the action's or ``care_access``'s to check,
    because a five-for-one member may care for a case outside their own part of the district."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, scope=scope_of(request.user), **kwargs)

    return wrapper


def _care_case(request, case_id: int) -> ControlCase:
    """A case the user may care for (their subtree with CARE, or their five-for-one team), else 403 / 404."""
    return checkins.care_access(request.user, case_id)


def _form_errors(form) -> str:
    """A form's errors as one message line."""
    return "; ".join(" ".join(v) for v in form.errors.values())


def _back_to_case(case_id: int, anchor: str = "") -> str:
    return reverse("control:case", args=[case_id]) + (f"#{anchor}" if anchor else "")


def _today_slots(case: ControlCase, today_checkins: list[CheckIn], now: dt.datetime | None = None) -> list[dict]:
    """Today's slots of a case: done (with the check-in), missing (deadline passed) or open."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    by_slot = {c.slot: c for c in today_checkins if c.date == today}
    out = []
    in_period = case.start_date <= today <= case.end_date and case.state in OPEN_CASE_STATES
    labels = _slot_labels()
    for slot in checkins.slots_for(case.type) if in_period else ():
        c = by_slot.get(slot)
        status = ("abnormal" if c.abnormal else "done") if c else (
            "missing" if now >= checkins.slot_deadline(today, slot) else "open")
        out.append({"slot": slot, "label": labels[slot], "checkin": c, "status": status})
    return out


def _slot_labels() -> dict[str, str]:
    return {value: str(label) for value, label in CheckInSlot.choices}


def _next_slot(slots: list[dict]) -> str:
    """The slot a new check-in most likely is for: the first not recorded (missing before open)."""
    for s in slots:
        if s["checkin"] is None:
            return s["slot"]
    return slots[0]["slot"] if slots else CheckInSlot.MORNING


# --- my cases and the list -------------------------------------------------------------------------------

def _case_rows(cases: list[ControlCase], today: dt.date) -> list[dict]:
    """Today's status of each case: check-ins, the day's test, open service requests (three queries)."""
    ids = [c.pk for c in cases]
    by_case: dict[int, list] = {pk: [] for pk in ids}
    for c in CheckIn.objects.filter(case_id__in=ids, date=today):
        by_case[c.case_id].append(c)
    tests = {t.case_id: t for t in TestSample.objects.filter(case_id__in=ids, date=today)}
    open_services = dict(ServiceRequest.objects.filter(case_id__in=ids, confirmed_at__isnull=True, done_at__isnull=True)
                         .values_list("case_id").annotate(n=Count("id")).order_by())
    now = timezone.now()
    return [{"case": c, "slots": _today_slots(c, by_case[c.pk], now), "test": tests.get(c.pk),
             "services": open_services.get(c.pk, 0), "day": c.day_number(today),
             "days": (c.end_date - c.start_date).days + 1} for c in cases]


@signed_in
def mine(request, scope):
    """A five-for-one member's cases on their phone, with today's status of each."""
    if not scope.can(Perm.CARE) and not actions.cases_for_member(request.user).exists():
        raise PermissionDenied("your role does not care for control cases")
    cases = list(actions.cases_for_member(request.user))
    today = timezone.localdate()
    return render(request, "control/mine.html", {"rows": _case_rows(cases, today), "today": today,
                                                 "unit": scope.root})


@staff_required(Perm.CARE)
def case_list(request, scope):
    """Open cases (or all, ``?state=all``) of a unit's subtree, by type; search by name or phone tail."""
    unit = _unit(request, scope)
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
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "page": page, "q": q, "state": state,
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
    unit = _unit(request, scope)
    resident = None
    raw_resident = request.GET.get("resident") or request.POST.get("resident")
    if raw_resident:
        resident = access_resident(request.user, _int(raw_resident))
        if not resident.path.startswith(unit.path):
            unit = access_unit(request.user, resident.unit_id)
    types = list(ControlType.objects.order_by("rank", "id"))
    form = OpenCaseForm(request.POST or None, types=types)
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
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "form": form, "resident": resident, "q": q,
        "matches": matches,
    }, status=400 if form.errors else 200)


# --- the case page ---------------------------------------------------------------------------------------

def _candidates(case: ControlCase) -> list[Staff]:
    """Staff of the case's community (or the case's own unit, if it sits higher) for a five-for-one slot."""
    community_path = case.path[: 4 * min(len(case.path) // 4, checkins.COMMUNITY_LEVEL)]
    return list(Staff.objects.filter(subtree_q(community_path, "unit__path")).select_related("unit")
                .order_by("unit__path", "name")[:CANDIDATE_LIMIT])


def _services_of(case: ControlCase) -> list[ServiceRequest]:
    return list(case.service_requests.select_related("assigned_to__staff", "loop"))


def _assignees(case: ControlCase, team: list) -> list[tuple[int, str]]:
    return [(m.user_id, f"{m.name}（{m.get_slot_display()}）") for _s, _l, m in team if m is not None and m.user_id]


def _case_context(request, case: ControlCase, scope, **extra) -> dict:
    today = timezone.localdate()
    now = timezone.now()
    case_checkins = list(case.checkins.select_related("entered_by__staff").order_by("-date", "-slot"))
    slots = _today_slots(case, case_checkins, now)
    team = actions.team_of(case)
    measures = list(case.measure_items.select_related("done_by__staff").order_by("id"))
    photo_keys = {m.get("key") for m in case.type.measures or [] if m.get("photo")}
    is_open = case.state in OPEN_CASE_STATES
    can_manage = scope.can(Perm.MANAGE_CONTROL) and scope.contains(case.path)
    stricter = list(ControlType.objects.filter(rank__gt=case.type.rank).order_by("rank"))
    person_url = request.build_absolute_uri(links.person_path(case.pk))
    context = {
        "case": case, "today": today, "day": case.day_number(today), "days": (case.end_date - case.start_date).days + 1,
        "type_name": case.type.label, "is_open": is_open, "can_manage": can_manage,
        "slots": slots, "checkins": case_checkins[:30],
        "checkin_form": CheckInForm(initial={"slot": _next_slot(slots)}, symptoms=[(s, s) for s in checkins.SYMPTOMS]),
        "can_checkin": is_open and bool(slots),
        "measures": [{"item": m, "photo": m.key in photo_keys} for m in measures],
        "team": team, "candidates": _candidates(case) if can_manage and is_open else [],
        "tests": list(case.tests.all()), "result_buttons": _result_buttons(),
        "services": _services_of(case), "service_form": ServiceForm(), "assignees": _assignees(case, team),
        "period_form": PeriodForm(), "move_form": MoveUpForm(types=stricter) if stricter else None,
        "can_release": can_manage and case.end_date <= today and (
            case.state == CaseState.RELEASE_PROPOSED
            or (case.state == CaseState.ACTIVE and not actions.has_next_phase(case))),
        "previous": case.previous, "next_cases": list(case.next_cases.select_related("type")),
        "person_url": person_url, "person_qr": _qr(person_url),
        "breadcrumb": _breadcrumb(scope, case.unit) if scope.contains(case.path) else [],
    }
    return context | extra


def _result_buttons() -> list[tuple[str, str]]:
    return [(r.value, str(r.label)) for r in RESULT_BUTTONS]


def _qr(url: str) -> str:
    import qrcode
    from qrcode.image.svg import SvgPathImage

    return mark_safe(qrcode.make(url, image_factory=SvgPathImage, border=1).to_string(encoding="unicode"))  # noqa: S308


@signed_in
def case_detail(request, case_id: int, scope):
    case = _care_case(request, case_id)
    return render(request, "control/case.html", _case_context(request, case, scope))


@require_POST
@signed_in
def record_checkin(request, case_id: int, scope):
    """A team member records a check-in (HTMX: the check-in section comes back)."""
    case = _care_case(request, case_id)
    form = CheckInForm(request.POST, symptoms=[(s, s) for s in checkins.SYMPTOMS])
    error = ""
    if form.is_valid():
        data = form.cleaned_data
        extra = [s for s in (request.POST.get("other") or "").replace("，", ",").split(",") if s.strip()]
        try:
            checkins.do_record_checkin(case, date=timezone.localdate(), slot=data["slot"],
                                       temperature=data["temperature"], symptoms=list(data["symptoms"]) + extra,
                                       acting_user=request.user)
        except ERRORS as exc:
            error = _message(exc)
    else:
        error = _form_errors(form)
    if not _is_htmx(request):
        (messages.error if error else messages.success)(request, error or _("已记录体温"))
        return redirect(_back_to_case(case.pk, "checkins"))
    case.refresh_from_db()
    context = _case_context(request, case, scope, checkin_error=error)
    if error:
        context["checkin_form"] = form
    return render(request, "control/_checkins.html", context)


@require_POST
@signed_in
def mark_measure(request, case_id: int, key: str, scope):
    case = _care_case(request, case_id)
    try:
        actions.do_mark_measure(case, key, acting_user=request.user, photo=request.FILES.get("photo"))
    except actions.ControlError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("已完成"))
    return redirect(_back_to_case(case.pk, "measures"))


@require_POST
@staff_required(Perm.MANAGE_CONTROL)
def set_team(request, case_id: int, scope):
    case = actions.access_case(request.user, case_id)
    form = TeamForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return redirect(_back_to_case(case.pk, "team"))
    data = form.cleaned_data
    user = None
    if data["user"]:
        staff = next((s for s in _candidates(case) if s.user_id == data["user"]), None)
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
    return redirect(_back_to_case(case.pk, "team"))


@require_POST
@staff_required(Perm.MANAGE_CONTROL)
def change_period(request, case_id: int, scope):
    case = actions.access_case(request.user, case_id)
    form = PeriodForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
    else:
        try:
            case = actions.do_change_period(case, form.cleaned_data["days_delta"], form.cleaned_data["reason"],
                                            acting_user=request.user)
        except actions.ControlError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("管控期限已调整为 %(end)s 止") % {"end": f"{case.end_date:%Y-%m-%d}"})
    return redirect(_back_to_case(case.pk))


@require_POST
@staff_required(Perm.MANAGE_CONTROL)
def move_up(request, case_id: int, scope):
    case = actions.access_case(request.user, case_id)
    stricter = list(ControlType.objects.filter(rank__gt=case.type.rank))
    form = MoveUpForm(request.POST, types=stricter)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return redirect(_back_to_case(case.pk))
    data = form.cleaned_data
    try:
        new = actions.do_move_up(case, data["type_code"], data["reason"], site_address=data["site_address"],
                                 site_room=data["site_room"], acting_user=request.user)
    except actions.ControlError as exc:
        messages.error(request, exc.message)
        return redirect(_back_to_case(case.pk))
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
        return redirect(_next(request, _back_to_case(case.pk)))
    messages.success(request, _("已解除管控，请打印解除告知书"))
    return redirect(_next(request, _back_to_case(case.pk)))


@signed_in
def notice(request, case_id: int, scope):
    """The release notice (解除隔离告知书), printable HTML; a preview until the case is released."""
    case = _care_case(request, case_id)
    return HttpResponse(release.release_notice_html(case))


@signed_in
def notice_pdf(request, case_id: int, scope):
    case = _care_case(request, case_id)
    data = release.release_notice_pdf(case)
    audit.record(actor=request.user, action="control.notice.export", target=case, changes={"format": "pdf"})
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="release-notice-{case.pk}.pdf"'
    return response


# --- tests, services, care visits, alerts (HTMX rows) ----------------------------------------------------

@require_POST
@signed_in
def test_result(request, sample_id: int, scope):
    sample = TestSample.objects.filter(pk=sample_id).first()
    if sample is None:
        raise Http404("no such test")
    _care_case(request, sample.case_id)
    error = ""
    try:
        sample = sampling.do_record_result(sample, request.POST.get("result", ""), acting_user=request.user)
    except ERRORS as exc:
        error = _message(exc)
    if not _is_htmx(request):
        (messages.error if error else messages.success)(request, error or _("已记录结果"))
        return redirect(_next(request, _back_to_case(sample.case_id, "tests")))
    sample = TestSample.objects.select_related("case__type", "recorded_by").get(pk=sample.pk)
    template = "control/_sample_row.html" if request.POST.get("row") == "today" else "control/_test_row.html"
    return render(request, template, {"t": sample, "s": sample, "error": error, "result_buttons": _result_buttons(),
                                      "today": timezone.localdate(), "is_open": sample.case.state in OPEN_CASE_STATES})


@require_POST
@signed_in
def request_service(request, case_id: int, scope):
    """Staff ask for a service on the person's behalf (HTMX: the service section comes back)."""
    case = _care_case(request, case_id)
    form = ServiceForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.do_request_service(case, kind=form.cleaned_data["kind"], text=form.cleaned_data["text"],
                                        acting_user=request.user)
        except ERRORS as exc:
            error = _message(exc)
    else:
        error = _form_errors(form)
    if not _is_htmx(request):
        (messages.error if error else messages.success)(request, error or _("已登记服务需求"))
        return redirect(_back_to_case(case.pk, "services"))
    team = actions.team_of(case)
    return render(request, "control/_services.html", {
        "case": case, "services": _services_of(case), "service_form": form if error else ServiceForm(),
        "service_error": error, "assignees": _assignees(case, team), "is_open": case.state in OPEN_CASE_STATES})


def _service_row(request, service_id: int, action) -> HttpResponse:
    service = ServiceRequest.objects.filter(pk=service_id).first()
    if service is None:
        raise Http404("no such service request")
    case = _care_case(request, service.case_id)
    error = ""
    try:
        action(service)
    except ERRORS as exc:
        error = _message(exc)
    if not _is_htmx(request):
        (messages.error if error else messages.success)(request, error or _("已更新"))
        return redirect(_next(request, _back_to_case(case.pk, "services")))
    service = ServiceRequest.objects.select_related("case", "assigned_to__staff", "loop").get(pk=service.pk)
    team = actions.team_of(case)
    return render(request, "control/_service_row.html", {
        "r": service, "error": error, "assignees": _assignees(case, team), "show_case": request.POST.get("row") == "today",
        "is_open": case.state in OPEN_CASE_STATES})


@require_POST
@signed_in
def assign_service(request, service_id: int, scope):
    from django.contrib.auth import get_user_model

    raw = request.POST.get("user") or ""
    if raw == "me" or not raw:
        user = request.user
    else:
        user = get_user_model().objects.filter(pk=_int(raw)).first()
        if user is None:
            raise Http404("no such user")
    return _service_row(request, service_id, lambda s: services.do_assign_service(s, user=user,
                                                                                  acting_user=request.user))


@require_POST
@signed_in
def service_done(request, service_id: int, scope):
    return _service_row(request, service_id, lambda s: services.do_mark_service_done(
        s, note=(request.POST.get("note") or "")[:500], acting_user=request.user))


@require_POST
@signed_in
def confirm_service(request, service_id: int, scope):
    """Staff confirm for the person, after asking them (e.g. by phone)."""
    return _service_row(request, service_id, lambda s: services.do_confirm_service(s, acting_user=request.user))


@require_POST
@staff_required(Perm.CARE)
def care_visit(request, scope):
    """Record today's care visit to a key-group resident or a person under home control (HTMX row)."""
    resident = case = None
    if request.POST.get("resident"):
        resident = access_resident(request.user, _int(request.POST["resident"]))
    if request.POST.get("case"):
        case = _care_case(request, _int(request.POST["case"]))
    if resident is None and case is None:
        raise Http404("nobody named")
    needs = [n for n in request.POST.getlist("needs") if n in ServiceKind.values]
    error = ""
    try:
        actions.do_record_care_visit(day=timezone.localdate(), resident=resident, case=case, needs=needs,
                                     note=(request.POST.get("note") or "")[:300], acting_user=request.user)
    except actions.ControlError as exc:
        error = exc.message
    unit = access_unit(request.user, resident.unit_id if resident is not None else case.unit_id)
    rows = care.care_visit_list(unit, timezone.localdate())
    row = next((r for r in rows if (resident is not None and r.resident is not None and r.resident.pk == resident.pk)
                or (case is not None and r.case is not None and r.case.pk == case.pk)), None)
    if row is None:
        raise Http404("not on the care-visit list")
    if not _is_htmx(request):
        (messages.error if error else messages.success)(request, error or _("已记录走访"))
        return redirect(reverse("control:today") + f"?unit={request.POST.get('unit') or unit.pk}#care")
    return render(request, "control/_care_row.html", {"row": row, "error": error, "kinds": ServiceKind.choices})


@require_POST
@staff_required(Perm.CARE)
def resolve_alert(request, loop_id: int, scope):
    loop = scoped(request.user, Loop.objects.filter(kind__in=ALERT_KINDS)).filter(pk=loop_id).first()
    if loop is None:
        raise Http404("no such alert in your part of the district")
    error = ""
    try:
        loop = checkins.do_resolve_alert(loop, request.POST.get("note", ""), acting_user=request.user)
    except ERRORS as exc:
        error = _message(exc)
    if not _is_htmx(request):
        (messages.error if error else messages.success)(request, error or _("已处置"))
        return redirect(reverse("control:today") + f"?unit={request.POST.get('unit') or scope.root.pk}#alerts")
    return render(request, "control/_alert_row.html", {"a": loop, "error": error})


# --- the today page --------------------------------------------------------------------------------------

def _due_checkin_rows(unit: Unit, user, today: dt.date) -> tuple[list[dict], int]:
    """Open cases whose period covers today with today's check-ins: abnormal first, then missing, then done.
    Two queries (the cases, their check-ins of today)."""
    base = (scoped(user, ControlCase.objects).filter(subtree_q(unit.path), state__in=OPEN_CASE_STATES,
                                                      start_date__lte=today, end_date__gte=today))
    qs = (base.select_related("type", "unit")
          .annotate(any_abnormal=Exists(CheckIn.objects.filter(case=OuterRef("pk"), date=today, abnormal=True)),
                    any_done=Exists(CheckIn.objects.filter(case=OuterRef("pk"), date=today)))
          .order_by("-any_abnormal", "any_done", "path", "id")
          .prefetch_related(Prefetch("checkins", queryset=CheckIn.objects.filter(date=today), to_attr="today_checkins")))
    cases = list(qs[:LIST_LIMIT + 1])
    now = timezone.now()
    rows = [{"case": c, "slots": _today_slots(c, c.today_checkins, now)} for c in cases[:LIST_LIMIT]]
    for r in rows:
        statuses = {s["status"] for s in r["slots"]}
        r["status"] = ("abnormal" if "abnormal" in statuses else "missing" if "missing" in statuses
                       else "open" if "open" in statuses else "done")
    order = {"abnormal": 0, "missing": 1, "open": 2, "done": 3}
    rows.sort(key=lambda r: order[r["status"]])
    return rows, len(cases) > LIST_LIMIT


def _care_context(unit: Unit, units: list, day: dt.date) -> dict:
    """The care-visit list: every person at a grid (``care.care_visit_list``); above it, per grid how many to
    visit and how many are done — a community visits through its grid workers, and a phone page of hundreds
    of rows helps nobody. The summary follows the list's rules (people under home control, then key-group
    residents without a case; a visit counts for the resident or the case) with three reads of plain values."""
    if unit.level == MAX_LEVEL:
        return {"care_rows": care.care_visit_list(unit, day)[:LIST_LIMIT], "care_grids": None}
    flagged = Q()
    for group in care.CARE_GROUPS:
        flagged |= Q(**{group: True})
    residents = list(Resident.objects.filter(subtree_q(unit.path), flagged, status=ResidentStatus.PRESENT)
                     .values_list("id", "unit_id"))
    cases = list(ControlCase.objects.filter(subtree_q(unit.path), state__in=OPEN_CASE_STATES, site_kind="home",
                                            start_date__lte=day)
                 .values_list("id", "unit_id", "resident_id", "resident__unit_id", "resident__path"))
    visits = list(CareVisit.objects.filter(subtree_q(unit.path), date=day).values_list("resident_id", "case_id"))
    visited_residents = {r for r, _c in visits if r}
    visited_cases = {c for _r, c in visits if c}
    by_grid: dict[int, list[int]] = {}

    def count(unit_id: int, visited: bool) -> None:
        counts = by_grid.setdefault(unit_id, [0, 0])
        counts[0] += 1
        counts[1] += int(visited)

    covered = set()
    for case_id, case_unit, resident_id, resident_unit, resident_path in cases:
        inside = resident_id and resident_path and resident_path.startswith(unit.path)
        count(resident_unit if inside else case_unit, resident_id in visited_residents or case_id in visited_cases)
        covered.add(resident_id)
    for resident_id, unit_id in residents:
        if resident_id not in covered:
            count(unit_id, resident_id in visited_residents)
    names = {u.id: u for u in units}
    grids = [{"unit": names[uid], "total": t, "visited": v} for uid, (t, v) in by_grid.items() if uid in names]
    grids.sort(key=lambda g: (g["visited"] >= g["total"], g["unit"].path))
    return {"care_rows": None, "care_grids": grids, "care_total": sum(g["total"] for g in grids),
            "care_visited": sum(g["visited"] for g in grids)}


@staff_required(Perm.CARE)
def today(request, scope):
    """A community's (or grid's) work of the day: check-ins due (abnormal / missing / done), the sampling list
    and results, open service requests, open alerts, the care-visit list and the cases ending today. Above the
    community level the page shows the units below with their figures, to pick one."""
    unit = _unit(request, scope)
    day = timezone.localdate()
    units, totals = dashboard.rollup(unit, day)
    counts = totals[unit.id]
    context = {"unit": unit, "breadcrumb": _breadcrumb(scope, unit), "today": day, "counts": counts,
               "can_manage": scope.can(Perm.MANAGE_CONTROL)}
    if unit.level < TODAY_LEVEL:
        context["children"] = dashboard.children_rows(units, totals, unit.id)
        return render(request, "control/today.html", context)
    checkin_rows, more_checkins = _due_checkin_rows(unit, request.user, day)
    open_services = list(
        ServiceRequest.objects.filter(subtree_q(unit.path, "case__path"), confirmed_at__isnull=True,
                                      case__state__in=OPEN_CASE_STATES)
        .select_related("case", "assigned_to__staff", "loop").prefetch_related("case__team")
        .order_by("requested_at", "id")[:LIST_LIMIT])
    for r in open_services:
        r.assignee_options = [(m.user_id, f"{m.name}（{m.get_slot_display()}）") for m in r.case.team.all()
                              if m.user_id]
    services_pending = [r for r in open_services if r.done_at is None]
    services_unconfirmed = [r for r in open_services if r.done_at is not None]
    alerts = list(Loop.objects.filter(subtree_q(unit.path), kind__in=ALERT_KINDS, state__in=OPEN_STATES)
                  .order_by("created_at", "id")[:LIST_LIMIT])
    ending = list(scoped(request.user, ControlCase.objects).filter(subtree_q(unit.path), state__in=OPEN_CASE_STATES)
                  .filter(Q(end_date=day) | Q(state=CaseState.RELEASE_PROPOSED))
                  .annotate(blocked=Exists(TestSample.objects.filter(case=OuterRef("pk"))
                                           .exclude(result=TestResult.NEGATIVE)))
                  .select_related("type").order_by("-state", "end_date", "id")[:LIST_LIMIT])
    for c in ending:
        c.can_release = not c.blocked and (c.state == CaseState.RELEASE_PROPOSED or not actions.has_next_phase(c))
    context |= {
        "checkin_rows": checkin_rows, "more_checkins": more_checkins,
        "done_rows": [r for r in checkin_rows if r["status"] == "done"],
        "groups": sampling.sampling_list(unit, day), "result_buttons": _result_buttons(),
        "services_pending": services_pending, "services_unconfirmed": services_unconfirmed,
        "alerts": alerts, "kinds": [(value, str(label)) for value, label in ServiceKind.choices],
        **_care_context(unit, units, day),
        "ending": ending, "is_open": True,
    }
    return render(request, "control/today.html", context)


# --- the dashboard ---------------------------------------------------------------------------------------

@staff_required(Perm.VIEW_REGISTER)
def dashboard_page(request, scope):
    unit = _unit(request, scope)
    day = _date(request.GET.get("date"), timezone.localdate())
    units, _own, totals, types = dashboard.collect(unit, day)
    counts = totals[unit.id]
    children = dashboard.children_rows(units, totals, unit.id)
    charted = [(u, c) for u, c in children if c.checkins_due or c.open_cases]
    if len(charted) < 2:  # one bar says nothing the KPIs do not
        charted = []
    under = [(t.label, counts.under.get(t.code, 0)) for t in types]
    charts = {
        "under": {"labels": [label for label, _n in under], "values": [n for _label, n in under]},
        "today": {"labels": [_("健康打卡"), _("上门核酸")],
                  "done": [counts.checkins_done - counts.abnormal if counts.checkins_done >= counts.abnormal
                           else counts.checkins_done, counts.tests_done - counts.tests_positive],
                  "alert": [min(counts.abnormal, counts.checkins_done), counts.tests_positive + counts.tests_missed],
                  "waiting": [counts.checkins_missing, counts.tests_waiting]},
        "units": {"labels": [u.name for u, _c in charted], "done": [c.checkins_done for _u, c in charted],
                  "missing": [c.checkins_missing for _u, c in charted]},
        "names": {"under": _("在管人数"), "done": _("已完成"), "alert": _("异常 / 阳性 / 未采"), "waiting": _("未完成"),
                  "checked": _("已打卡"), "missing": _("未打卡")},
    }
    return render(request, "control/dashboard.html", {
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "day": day, "counts": counts, "under": under,
        "children": children, "charts": charts, "units_chart_height": 60 + 28 * len(charted),
        "prev_day": day - dt.timedelta(days=1), "next_day": day + dt.timedelta(days=1),
    })


@staff_required(Perm.VIEW_REGISTER)
def export(request, scope):
    unit = _unit(request, scope)
    day = _date(request.GET.get("date"), timezone.localdate())
    data = dashboard_workbook(unit, day)
    audit.record(actor=request.user, action="control.dashboard.export", target=unit,
                 changes={"date": day.isoformat()})
    response = HttpResponse(data, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="control-{unit.code}-{day:%Y%m%d}.xlsx"'
    return response


# --- the person's own page -------------------------------------------------------------------------------

@csrf_exempt  # the unguessable token is the authority; there is no session to ride on
def person(request, token):
    """The person's own page through their signed link, no login: today's temperature and symptoms, asking for
    a service, confirming a service done. Big buttons; repeats are harmless."""
    case = links.case_for_token(token)
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405)
    today = timezone.localdate()
    is_open = case.state in OPEN_CASE_STATES
    symptoms = [(s, s) for s in checkins.SYMPTOMS]
    checkin_form = CheckInForm(symptoms=symptoms)
    service_form = ServiceForm()
    error, error_section = "", ""
    if request.method == "POST" and is_open:
        action = request.POST.get("action")
        try:
            if action == "checkin":
                checkin_form = CheckInForm(request.POST, symptoms=symptoms)
                if not checkin_form.is_valid():
                    raise checkins.CheckInError("temperature: " + _("请填写体温，例如 36.5"))
                data = checkin_form.cleaned_data
                checkins.do_record_checkin(case, date=today, slot=data["slot"], temperature=data["temperature"],
                                           symptoms=list(data["symptoms"]), acting_user=None)
                messages.success(request, _("体温已上报，谢谢！"))
            elif action == "service":
                service_form = ServiceForm(request.POST)
                if not service_form.is_valid():
                    raise checkins.CareError("kind: " + _("请选择需要什么"))
                services.do_request_service(case, kind=service_form.cleaned_data["kind"],
                                            text=service_form.cleaned_data["text"], acting_user=None)
                messages.success(request, _("已收到您的需求，工作人员会尽快联系您"))
            elif action == "confirm":
                service = ServiceRequest.objects.filter(pk=_int(request.POST.get("service")), case=case).first()
                if service is None:
                    raise Http404("no such request")
                services.do_confirm_service(service, case=case, acting_user=None)
                messages.success(request, _("已确认完成，谢谢！"))
            else:
                raise Http404("no such action")
        except ERRORS as exc:
            error, error_section = _message(exc), action
        else:
            return redirect(request.path + f"#{action}")
    case_checkins = list(case.checkins.filter(date=today))
    slots = _today_slots(case, case_checkins)
    if not checkin_form.is_bound:
        checkin_form = CheckInForm(initial={"slot": _next_slot(slots)}, symptoms=symptoms)
    requests_ = list(case.service_requests.order_by("-requested_at")[:20])
    return render(request, "control/person.html", {
        "case": case, "type_name": case.type.label, "today": today, "day": case.day_number(today),
        "days": (case.end_date - case.start_date).days + 1, "is_open": is_open, "slots": slots,
        "all_done": bool(slots) and all(s["checkin"] is not None for s in slots),
        "open_slots": [s for s in slots if s["checkin"] is None],
        "checkin_form": checkin_form, "service_form": service_form, "requests": requests_,
        "error": error, "error_section": error_section,
        "tests": list(case.tests.filter(date__gte=today).order_by("date")[:3]),
    }, status=400 if error else 200)
