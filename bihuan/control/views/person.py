"""The person's own page through their signed link (``/p/<token>/``), no login."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from bihuan.core.errors import Refused
from bihuan.core.http import int_param

from .. import checkins, links, selectors, services
from ..forms import CheckInForm, ServiceForm
from ..models import OPEN_CASE_STATES, ServiceRequest


@csrf_exempt  # the unguessable token is the authority; there is no session to ride on
def person(request, token):
    """The person's own page through their signed link, no login: today's temperature and symptoms, asking for
    a service, confirming a service done. Big buttons; repeats are harmless."""
    case = links.case_for_token(token)
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405)
    today = timezone.localdate()
    is_open = case.state in OPEN_CASE_STATES
    symptoms = checkins.symptom_choices()
    checkin_form = CheckInForm(symptoms=symptoms)
    service_form = ServiceForm()
    error, error_section = "", ""
    if request.method == "POST" and is_open:
        action = request.POST.get("action")
        try:
            if action == "checkin":
                checkin_form = CheckInForm(request.POST, symptoms=symptoms)
                if not checkin_form.is_valid():
                    raise checkins.CheckInError("temperature", _("请填写体温，例如 36.5"))
                data = checkin_form.cleaned_data
                checkins.do_record_checkin(case, date=today, slot=data["slot"], temperature=data["temperature"],
                                           symptoms=list(data["symptoms"]), acting_user=None)
                messages.success(request, _("体温已上报，谢谢！"))
            elif action == "service":
                service_form = ServiceForm(request.POST)
                if not service_form.is_valid():
                    raise checkins.CareError("kind", _("请选择需要什么"))
                services.do_request_service(case, kind=service_form.cleaned_data["kind"],
                                            text=service_form.cleaned_data["text"], acting_user=None)
                messages.success(request, _("已收到您的需求，工作人员会尽快联系您"))
            elif action == "confirm":
                service = ServiceRequest.objects.filter(pk=int_param(request.POST.get("service")), case=case).first()
                if service is None:
                    raise Http404("no such request")
                services.do_confirm_service(service, case=case, acting_user=None)
                messages.success(request, _("已确认完成，谢谢！"))
            else:
                raise Http404("no such action")
        except Refused as exc:
            error, error_section = exc.message, action
        else:
            return redirect(request.path + f"#{action}")
    case_checkins = list(case.checkins.filter(date=today))
    slots = selectors.today_slots(case, case_checkins)
    if not checkin_form.is_bound:
        checkin_form = CheckInForm(initial={"slot": selectors.next_slot(slots)}, symptoms=symptoms)
    requests_ = list(case.service_requests.select_related("loop").order_by("-requested_at")[:20])
    return render(request, "control/person.html", {
        "case": case, "type_name": case.type.label, "today": today, "day": case.day_number(today),
        "days": (case.end_date - case.start_date).days + 1, "is_open": is_open, "slots": slots,
        "all_done": bool(slots) and all(s["checkin"] is not None for s in slots),
        "open_slots": [s for s in slots if s["checkin"] is None],
        "checkin_form": checkin_form, "service_form": service_form, "requests": requests_,
        "error": error, "error_section": error_section,
        "tests": list(case.tests.filter(date__gte=today).order_by("date")[:3]),
    }, status=400 if error else 200)
