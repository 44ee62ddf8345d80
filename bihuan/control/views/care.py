"""The work of the day around a case: check-ins and test results recorded by the team, service requests and
their steps, care visits, alerts resolved — each a small form that comes back as its HTMX row or section."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core.errors import Refused
from bihuan.core.http import int_param, is_htmx
from bihuan.core.roles import Perm
from bihuan.loops.models import Loop
from bihuan.register.access import access_resident, access_unit, scoped, staff_required

from .. import actions, care, checkins, sampling, selectors, services
from ..forms import CheckInForm, ServiceForm
from ..models import ALERT_KINDS, OPEN_CASE_STATES, ServiceKind, ServiceRequest, TestSample
from ._common import back_to_case, care_case, flash, form_errors, next_url, refusal, result_buttons, signed_in
from .cases import case_context


@require_POST
@signed_in
def record_checkin(request, case_id: int, scope):
    """A team member records a check-in (HTMX: the check-in section comes back)."""
    case = care_case(request, case_id)
    form = CheckInForm(request.POST, symptoms=checkins.symptom_choices())
    error = ""
    if form.is_valid():
        data = form.cleaned_data
        extra = [s for s in (request.POST.get("other") or "").replace("，", ",").split(",") if s.strip()]
        try:
            checkins.do_record_checkin(case, date=timezone.localdate(), slot=data["slot"],
                                       temperature=data["temperature"], symptoms=list(data["symptoms"]) + extra,
                                       acting_user=request.user)
        except Refused as exc:
            error = refusal(exc)
    else:
        error = form_errors(form)
    if not is_htmx(request):
        flash(request, error, _("已记录体温"))
        return redirect(back_to_case(case.pk, "checkins"))
    case.refresh_from_db()
    context = case_context(request, case, scope, checkin_error=error)
    if error:
        context["checkin_form"] = form
    return render(request, "control/_checkins.html", context)


@require_POST
@signed_in
def test_result(request, sample_id: int, scope):
    sample = TestSample.objects.filter(pk=sample_id).first()
    if sample is None:
        raise Http404("no such test")
    care_case(request, sample.case_id)
    error = ""
    try:
        sample = sampling.do_record_result(sample, request.POST.get("result", ""), acting_user=request.user)
    except Refused as exc:
        error = refusal(exc)
    if not is_htmx(request):
        flash(request, error, _("已记录结果"))
        return redirect(next_url(request, back_to_case(sample.case_id, "tests")))
    sample = TestSample.objects.select_related("case__type", "recorded_by").get(pk=sample.pk)
    template = "control/_sample_row.html" if request.POST.get("row") == "today" else "control/_test_row.html"
    return render(request, template, {"t": sample, "s": sample, "error": error, "result_buttons": result_buttons(),
                                      "today": timezone.localdate(), "is_open": sample.case.state in OPEN_CASE_STATES})


# --- service requests ------------------------------------------------------------------------------------

@require_POST
@signed_in
def request_service(request, case_id: int, scope):
    """Staff ask for a service on the person's behalf (HTMX: the service section comes back)."""
    case = care_case(request, case_id)
    form = ServiceForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.do_request_service(case, kind=form.cleaned_data["kind"], text=form.cleaned_data["text"],
                                        acting_user=request.user)
        except Refused as exc:
            error = refusal(exc)
    else:
        error = form_errors(form)
    if not is_htmx(request):
        flash(request, error, _("已登记服务需求"))
        return redirect(back_to_case(case.pk, "services"))
    return render(request, "control/_services.html", {
        "case": case, "services": selectors.services_of(case), "service_form": form if error else ServiceForm(),
        "service_error": error, "assignees": selectors.assignees(actions.team_of(case)),
        "is_open": case.state in OPEN_CASE_STATES})


def _service_row(request, service_id: int, action) -> HttpResponse:
    service = ServiceRequest.objects.filter(pk=service_id).first()
    if service is None:
        raise Http404("no such service request")
    case = care_case(request, service.case_id)
    error = ""
    try:
        action(service)
    except Refused as exc:
        error = refusal(exc)
    if not is_htmx(request):
        flash(request, error, _("已更新"))
        return redirect(next_url(request, back_to_case(case.pk, "services")))
    service = ServiceRequest.objects.select_related("case", "loop__owner_user__staff").get(pk=service.pk)
    return render(request, "control/_service_row.html", {
        "r": service, "error": error, "assignees": selectors.assignees(actions.team_of(case)),
        "show_case": request.POST.get("row") == "today", "is_open": case.state in OPEN_CASE_STATES})


@require_POST
@signed_in
def assign_service(request, service_id: int, scope):
    raw = request.POST.get("user") or ""
    if raw == "me" or not raw:
        user = request.user
    else:
        user = get_user_model().objects.filter(pk=int_param(raw)).first()
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


# --- care visits and alerts ------------------------------------------------------------------------------

@require_POST
@staff_required(Perm.CARE)
def care_visit(request, scope):
    """Record today's care visit to a key-group resident or a person under home control (HTMX row)."""
    resident = case = None
    if request.POST.get("resident"):
        resident = access_resident(request.user, int_param(request.POST["resident"]))
    if request.POST.get("case"):
        case = care_case(request, int_param(request.POST["case"]))
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
    if not is_htmx(request):
        flash(request, error, _("已记录走访"))
        return redirect(reverse("control:today") + f"?unit={int_param(request.POST.get('unit') or unit.pk)}#care")
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
    except Refused as exc:
        error = refusal(exc)
    if not is_htmx(request):
        flash(request, error, _("已处置"))
        return redirect(reverse("control:today") + f"?unit={int_param(request.POST.get('unit') or scope.root.pk)}#alerts")
    return render(request, "control/_alert_row.html", {"a": loop, "error": error})
