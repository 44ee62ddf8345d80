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
from django.views.decorators.http import require_POST

from bihuan.core.http import download, int_param
from bihuan.core.roles import RESPONSIBLE_ROLES, Perm

from . import coverage
from .access import access_household, access_unit, scoped, staff_required
from .actions import do_reveal_resident
from .models import KEY_GROUPS, MAX_LEVEL, Household, Resident, Unit, subtree_q
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
def home(request, scope):
    """Every role lands on its own part of the tree; level-6 people land on their households."""
    if scope.unit.level == MAX_LEVEL or scope.role in RESPONSIBLE_ROLES:
        return households(request, unit_id=scope.root.id, home=True)
    return render(request, "register/unit.html", _unit_context(scope, scope.root) | {"home": True})


@staff_required(Perm.VIEW_REGISTER)
def unit_detail(request, unit_id: int, scope):
    unit = access_unit(request.user, unit_id)
    return render(request, "register/unit.html", _unit_context(scope, unit))


@staff_required(Perm.VIEW_REGISTER)
def blind_spots(request, unit_id: int, scope):
    unit = access_unit(request.user, unit_id)
    return render(request, "register/blind_spots.html", {
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "spots": coverage.blind_spot_lists(unit),
    })


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


@staff_required(Perm.VIEW_REGISTER)
def households(request, scope, unit_id: int | None = None, home: bool = False):
    unit = access_unit(request.user, int_param(unit_id or request.GET.get("unit") or scope.root.id))
    q = request.GET.get("q", "")
    qs = search_households(scoped(request.user, Household.objects).filter(subtree_q(unit.path)), q)
    page = _page(request, qs.select_related("unit"))
    template = "register/_household_rows.html" if request.headers.get("HX-Request") else "register/households.html"
    return render(request, template, {
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "page": page, "q": q, "home": home,
    })


@staff_required(Perm.VIEW_REGISTER)
def residents(request, scope):
    unit = access_unit(request.user, int_param(request.GET.get("unit") or scope.root.id))
    q = request.GET.get("q", "")
    qs = search_residents(scoped(request.user, Resident.objects).filter(subtree_q(unit.path)), q)
    page = _page(request, qs.select_related("household").order_by("path", "household_id", "id"))
    template = "register/_resident_rows.html" if request.headers.get("HX-Request") else "register/residents.html"
    return render(request, template, {
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "page": page, "q": q, "today": timezone.localdate(),
    })


@staff_required(Perm.VIEW_REGISTER)
def household_detail(request, household_id: int, scope):
    household = access_household(request.user, household_id)
    return render(request, "register/household.html", {
        "household": household,
        "breadcrumb": _breadcrumb(scope, household.unit) + [household.unit],
        "residents": list(household.residents.all()),
        "today": timezone.localdate(),
    })


@require_POST
@staff_required(Perm.REVEAL_PERSONAL)
def reveal_resident(request, resident_id: int, scope):
    values = do_reveal_resident(resident_id=resident_id, acting_user=request.user,
                                reason=request.POST.get("reason", "")[:200])
    return render(request, "register/_revealed.html", values)


@staff_required(Perm.EXPORT_REGISTER)
def export_unit(request, unit_id: int, scope):
    from .workbook import export_workbook

    unit = access_unit(request.user, unit_id)
    data = export_workbook(unit, acting_user=request.user)  # audits the export with its counts
    return download(data, f"register-{unit.code}-{timezone.localdate():%Y%m%d}.xlsx")


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
