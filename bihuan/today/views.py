"""Each role's first page ("today"), the situation board and its wall display, and the grid worker's one-tap mark.

Views parse, authorize through ``register.access`` and call actions; the figures come from ``board`` (the
providers of every app), the grid worker's tasks from ``tasks``.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from bihuan.core.errors import Refused
from bihuan.core.http import int_param, is_htmx
from bihuan.core.roles import RESPONSIBLE_ROLES, Perm
from bihuan.register.access import access_unit, staff_required
from bihuan.register.models import MAX_LEVEL

from . import board as boards
from . import tasks


def _is_grid_role(scope) -> bool:
    return scope.unit.level == MAX_LEVEL or scope.role in RESPONSIBLE_ROLES


@staff_required(Perm.VIEW_REGISTER)
def home(request, scope):
    """The first page: grid roles get their tasks and households; everyone else the board of their part."""
    if _is_grid_role(scope):
        return render(request, "today/grid.html", tasks.grid_context(request.user, scope, request.GET.get("q", "")))
    unit = access_unit(request.user, int_param(request.GET.get("unit") or scope.root.id))
    return render(request, "today/board.html", {
        "board": boards.build(unit), "unit": unit, "own": tasks.own_loops(scope.unit),
        "first_steps": tasks.first_steps(scope), "breadcrumb": _breadcrumb(scope, unit),
    })


def _breadcrumb(scope, unit):
    return [u for u in unit.ancestors() if u.path.startswith(scope.root.path)]


@staff_required(Perm.VIEW_REGISTER)
def board_fragment(request, scope):
    """The board alone, for the page's polling (HTMX swaps it in place every 30 s)."""
    unit = access_unit(request.user, int_param(request.GET.get("unit") or scope.root.id))
    return render(request, "today/_board.html", {"board": boards.build(unit), "unit": unit})


@staff_required(Perm.VIEW_REGISTER)
def wall(request, scope):
    """大屏: the board full screen for the command centre, with coverage by township and the day's curves."""
    unit = access_unit(request.user, int_param(request.GET.get("unit") or scope.root.id))
    board = boards.build(unit)
    return render(request, "today/wall.html", {"board": board, "unit": unit,
                                               "charts": tasks.wall_charts(unit, board)})


@require_POST
@staff_required(Perm.MARK_REACH)
def mark(request, scope):
    """One household reached, one tap (also what the phone's offline queue sends later). Idempotent: the same mark
    twice is one mark. JSON for the queue (``Accept: application/json``), else back to the page."""
    directive_id = int_param(request.POST.get("directive"))
    household_id = int_param(request.POST.get("household"))
    method = request.POST.get("method") or "visit"
    try:
        changed = tasks.mark_reached(request.user, directive_id, household_id, method)
    except Refused as exc:
        if "json" in request.headers.get("Accept", ""):
            return JsonResponse({"detail": exc.message, "field": exc.field}, status=400)
        raise
    if "json" in request.headers.get("Accept", ""):
        return JsonResponse({"ok": True, "changed": changed, "household": household_id})
    if is_htmx(request):
        return render(request, "today/_marked.html", {"household_id": household_id})
    return redirect(reverse("home") + f"#h{household_id}")


def now_local():
    return timezone.localtime()
