"""Search from the header, the household page that gathers everything, and "my profile" (language, sign out
everywhere). Views parse, authorize through ``register.access`` and call actions."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.http import require_POST

from bihuan.control.models import SERVICE, ControlCase, ServiceRequest
from bihuan.core.errors import Refused
from bihuan.core.http import safe_next
from bihuan.core.personal import mask_id_number, mask_phone
from bihuan.core.roles import Perm
from bihuan.directives.models import Reach
from bihuan.loops.models import Loop
from bihuan.pushes.models import PushedPerson
from bihuan.register import privacy
from bihuan.register.access import access_household, staff_required
from bihuan.register.models import Language
from bihuan.register.search import exact_q

from .actions import do_set_own_language
from .search import search_all


@staff_required(Perm.VIEW_REGISTER)
def search(request, scope):
    """POST from the header (a full ID number or phone never lands in a URL or an access log); GET works too."""
    q = (request.POST.get("q") or request.GET.get("q") or "").strip()[:40]
    shown = q if exact_q(q) is None else (mask_id_number(q) if len(q) == 18 else mask_phone(q))
    return render(request, "today/search.html", {"q": q, "shown_q": shown, "groups": search_all(request.user, q)})


@staff_required(Perm.VIEW_REGISTER)
def household_all(request, household_id: int, scope):
    """One household: its residents, the directives' marks, the pushes and control cases of its people, their
    service requests — in one page, five queries."""
    household = access_household(request.user, household_id)
    view = privacy.view_of(scope)
    privacy.apply_households([household], view)
    residents = privacy.apply_residents(household.residents.order_by("relation", "id"), view)
    ids = [r.pk for r in residents]
    marks = list(Reach.objects.filter(household=household).select_related("directive", "marked_by__staff")
                 .order_by("-directive__issued_at")[:30])
    pushed = list(PushedPerson.objects.filter(resident_id__in=ids).select_related("verification", "unit")
                  .order_by("-first_pushed_at"))
    cases = list(ControlCase.objects.filter(resident_id__in=ids).select_related("type").order_by("-start_date"))
    services = list(ServiceRequest.objects.filter(case__in=cases).select_related("case", "loop").order_by("-id")[:30])
    if view == privacy.PSEUDONYM:  # a department reads the household's directive marks, not its people's cases
        pushed, cases, services = [], [], []
    return render(request, "today/household.html", {
        "household": household, "residents": residents, "marks": marks, "pushed": pushed, "cases": cases,
        "services": services, "service_kind": SERVICE, "loops": Loop,
    })


@staff_required(Perm.VIEW_REGISTER)
def profile(request, scope):
    staff = request.user.staff
    return render(request, "today/profile.html", {"staff": staff, "languages": Language.choices})


def _next(request, default: str) -> str:
    return safe_next(request, default)


@require_POST
@staff_required(Perm.VIEW_REGISTER)
def set_language(request, scope):
    """The header's language button and the profile's choice: remembered for the person, not only the browser."""
    try:
        language = do_set_own_language(user=request.user, language=request.POST.get("language", ""))
    except Refused as exc:
        messages.error(request, exc.message)
        return redirect("profile")
    response = redirect(_next(request, "/"))
    from django.conf import settings

    if language:
        translation.activate(language)
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
    return response

