"""Who may see and do what with the field force: the register's scope (``register.access``), never re-implemented.

- ``VIEW`` (view_register): helpers (masked), teams, posts, rosters, tasks, places and logs of one's subtree.
- ``MANAGE`` (manage_staff): approve report-ins, form teams, create posts, assign shifts, give tasks, publish.
- ``RECORD`` (care): record field work for others (duty taps, disinfection jobs) as staff.

A single object is looked up in the user's subtree first (404 for an outsider, who learns nothing), then the
permission is checked (403). A cadre's home organisation (双报到) sees *its* cadres wherever they serve, through
``home_helpers`` (names, where, hours: no phone, no ID).
"""

from __future__ import annotations

from django.http import Http404

from bihuan.core.roles import Perm
from bihuan.register.access import require, scope_of, scoped
from bihuan.register.models import subtree_q

from .models import DisinfectionLog, Helper, Notice, Place, Post, Shift, ShiftSwap, Task, Team

VIEW = Perm.VIEW_REGISTER
MANAGE = Perm.MANAGE_STAFF
RECORD = Perm.CARE


def _one(user, queryset, pk: int, perm: str, what: str):
    obj = scoped(user, queryset).filter(pk=pk).first()
    if obj is None:
        raise Http404(f"no such {what} in your part of the district")
    require(user, perm)
    return obj


def access_helper(user, pk: int, perm: str = VIEW) -> Helper:
    return _one(user, Helper.objects.select_related("unit", "home_unit"), pk, perm, "helper")


def access_team(user, pk: int, perm: str = VIEW) -> Team:
    return _one(user, Team.objects.select_related("unit", "leader"), pk, perm, "team")


def access_post(user, pk: int, perm: str = VIEW) -> Post:
    return _one(user, Post.objects.select_related("unit"), pk, perm, "post")


def access_shift(user, pk: int, perm: str = VIEW) -> Shift:
    return _one(user, Shift.objects.select_related("post", "helper", "staff"), pk, perm, "shift")


def access_swap(user, pk: int, perm: str = MANAGE) -> ShiftSwap:
    return _one(user, ShiftSwap.objects.select_related("shift__post", "from_helper", "to_helper"), pk, perm, "swap")


def access_task(user, pk: int, perm: str = VIEW) -> Task:
    return _one(user, Task.objects.select_related("unit", "helper", "team"), pk, perm, "task")


def access_place(user, pk: int, perm: str = VIEW) -> Place:
    return _one(user, Place.objects.select_related("unit"), pk, perm, "place")


def access_log(user, pk: int, perm: str = VIEW) -> DisinfectionLog:
    return _one(user, DisinfectionLog.objects.select_related("place"), pk, perm, "log")


def access_notice(user, pk: int, perm: str = VIEW) -> Notice:
    return _one(user, Notice.objects.select_related("unit"), pk, perm, "notice")


def home_helpers(user):
    """Helpers whose home organisation (a department, a township …) lies in the user's subtree, wherever they
    serve: the 双报到 view of a cadre's own organisation."""
    scope = require(user, VIEW)
    return Helper.objects.filter(subtree_q(scope.root.path, "home_path"))


def may_act_on(user, path: str, perm: str) -> bool:
    scope = scope_of(user)
    return scope.contains(path) and scope.can(perm)
