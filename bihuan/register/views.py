"""Register pages: home, unit, blind spots, household and resident lists, household detail, reveal,
workbook import and export. Views parse, authorize through ``access`` and call actions; nothing else."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from bihuan.core import audit, reveal
from bihuan.core.dbroute import replica_reads
from bihuan.core.errors import Refused
from bihuan.core.http import download, int_param
from bihuan.core.roles import RESPONSIBLE_ROLES, Perm

from . import coverage, privacy
from .access import access_household, access_resident, access_unit, scoped, staff_required
from .actions import do_reveal_resident
from .models import KEY_GROUPS, MAX_LEVEL, Household, Resident, Unit, subtree_q
from .ordering import household_order
from .search import search_households, search_residents
from .selectors import leaders_of, responsible_people

PAGE_SIZE = 50


def _breadcrumb(scope, unit: Unit) -> list[Unit]:
    """Ancestors the user may open (their own scope root and below)."""
    return [u for u in unit.ancestors() if u.path.startswith(scope.root.path)]


def _unit_context(scope, unit: Unit) -> dict:
    units, totals = coverage.rollup(unit)
    children = [u for u in units if u.parent_id == unit.id]
    counts = totals[unit.id]
    return {
        "unit": unit,
        "breadcrumb": _breadcrumb(scope, unit),
        "counts": counts,
        "groups": [(label, counts.groups[key]) for key, label in KEY_GROUPS.items()],
        "children": [(child, totals[child.id]) for child in children],
        # the address book a commander reaches for first: the unit's own people and its 包保 cadres
        "people": responsible_people(unit),
        "leaders": leaders_of(unit),
    }


@staff_required(Perm.VIEW_REGISTER)
@replica_reads
def home(request, scope):
    """Every role lands on its own part of the tree; level-6 people land on their households."""
    if scope.unit.level == MAX_LEVEL or scope.role in RESPONSIBLE_ROLES:
        return households(request, unit_id=scope.root.id, home=True)
    return render(request, "register/unit.html", _unit_context(scope, scope.root) | {"home": True})


@staff_required(Perm.VIEW_REGISTER)
@replica_reads
def unit_detail(request, unit_id: int, scope):
    unit = access_unit(request.user, unit_id)
    return render(request, "register/unit.html", _unit_context(scope, unit))


@staff_required(Perm.VIEW_REGISTER)
@replica_reads
def blind_spots(request, unit_id: int, scope):
    unit = access_unit(request.user, unit_id)
    spots = coverage.blind_spot_lists(unit)
    privacy.apply_households(spots["households_without_grid"], privacy.view_of(scope))
    return render(request, "register/blind_spots.html", {
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "spots": spots,
    })


def _params(request):
    """A list's unit and search: from the POST body when the search form sent it (a full phone or ID number then
    stays out of the URL, the history and the access log), else from the query string (pager links)."""
    return request.POST if request.method == "POST" else request.GET


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _audit_list(request, what: str, unit: Unit, q: str, page) -> None:
    """The one audit row of a list page that showed personal data (who, which list, filter, how many)."""
    audit.bulk_read(actor=request.user, what=what, count=len(page.object_list),
                    filters={"unit": unit.pk, "q": q, "page": page.number})


@staff_required(Perm.VIEW_REGISTER)
def households(request, scope, unit_id: int | None = None, home: bool = False):
    params = _params(request)
    unit = access_unit(request.user, int_param(unit_id or params.get("unit") or scope.root.id))
    q = params.get("q", "")
    view = privacy.view_of(scope)
    qs = privacy.search(search_households, scoped(request.user, Household.objects).filter(subtree_q(unit.path)), q,
                        view)
    page = _page(request, qs.select_related("unit").order_by("path", *household_order()))
    page.object_list = privacy.apply_households(page.object_list, view)
    _audit_list(request, "register.households", unit, q, page)
    template = "register/_household_rows.html" if request.headers.get("HX-Request") else "register/households.html"
    return render(request, template, {
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "page": page, "q": q, "home": home,
    })


@staff_required(Perm.VIEW_REGISTER)
def residents(request, scope):
    params = _params(request)
    unit = access_unit(request.user, int_param(params.get("unit") or scope.root.id))
    q = params.get("q", "")
    view = privacy.view_of(scope)
    qs = privacy.search(search_residents, scoped(request.user, Resident.objects).filter(subtree_q(unit.path)), q, view)
    page = _page(request, qs.select_related("household").order_by("path", *household_order("household__"), "id"))
    page.object_list = privacy.apply_residents(page.object_list, view)
    _audit_list(request, "register.residents", unit, q, page)
    template = "register/_resident_rows.html" if request.headers.get("HX-Request") else "register/residents.html"
    return render(request, template, {
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "page": page, "q": q, "today": timezone.localdate(),
    })


@staff_required(Perm.VIEW_REGISTER)
def household_detail(request, household_id: int, scope):
    household = access_household(request.user, household_id)
    view = privacy.view_of(scope)
    privacy.apply_households([household], view)
    return render(request, "register/household.html", {
        "household": household,
        "breadcrumb": _breadcrumb(scope, household.unit) + [household.unit],
        "residents": privacy.apply_residents(household.residents.all(), view),
        "today": timezone.localdate(),
    })


@require_POST
@staff_required(Perm.REVEAL_PERSONAL)
def reveal_resident(request, resident_id: int, scope):
    """The full ID number and phone of one resident: a reason from the short list or free text (blank refused),
    throttled per user, audited. A refusal comes back in place of the values, with its message."""
    access_resident(request.user, resident_id)  # outsiders: 404 before anything else
    try:
        reason = reveal.reason_of(request.POST.get("reason", ""), request.POST.get("reason_text", ""))
        values = do_reveal_resident(resident_id=resident_id, acting_user=request.user, reason=reason)
    except Refused as exc:
        return render(request, "register/_reveal_refused.html", {"message": exc.message})
    return render(request, "register/_revealed.html", values)


@require_http_methods(["GET", "POST"])
@staff_required(Perm.EXPORT_REGISTER)
def export_unit(request, unit_id: int, scope):
    """The register workbook of a unit's subtree: masked on GET; full values on a POST with a reason and a
    confirmation by a role that may reveal (``core.reveal.full_export``). Audited either way."""
    from .workbook import export_workbook

    unit = access_unit(request.user, unit_id)
    try:
        full_reason = reveal.full_export(request, can_reveal=scope.can(Perm.REVEAL_PERSONAL))
    except Refused as exc:
        messages.error(request, exc.message)
        return redirect("register:unit", unit_id=unit.id)
    data = export_workbook(unit, acting_user=request.user, full_reason=full_reason)  # audits it with its counts
    suffix = "-full" if full_reason is not None else ""
    return download(data, f"register-{unit.code}-{timezone.localdate():%Y%m%d}{suffix}.xlsx")


@staff_required(Perm.IMPORT_REGISTER)
def import_register(request, scope):
    from .workbook import import_workbook

    result = None
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, _("请选择要导入的 Excel 文件"))
            return redirect("register:import")
        try:
            result = import_workbook(upload, acting_user=request.user)
        except PermissionDenied:
            raise
        except Exception as exc:  # noqa: BLE001 - an unreadable file is the user's error, shown to them
            messages.error(request, _("无法读取该文件：%(error)s") % {"error": exc})
            return redirect("register:import")
    return render(request, "register/import.html", {"result": result})


@staff_required(Perm.VIEW_REGISTER)
def template_download(request, scope):
    from .workbook import template_bytes

    response = HttpResponse(template_bytes(),
                            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = 'attachment; filename="bihuan-register-template.xlsx"'
    return response
