"""The one place that decides what a user may see: the subtree of their unit.

Views and API endpoints never filter by unit themselves; they call ``scoped`` for lists and
``access_*`` for single objects, which raise ``Http404`` for anything outside the subtree (an outsider
cannot even learn that the record exists).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from bihuan.core.roles import PERMISSIONS, Role

from .models import Household, Resident, Staff, Unit, UnitKind, subtree_q


@dataclass(frozen=True)
class Scope:
    """What a user sees: the root of their subtree, their own unit and role, their permissions."""

    user_id: int
    unit: Unit  # the user's own unit: the one they act as (for a narrowed API token, see ``_narrowed``)
    root: Unit  # the top of what they may see
    role: str
    perms: frozenset[str]
    home: Unit | None = None  # the account's own unit when ``unit`` is another (a narrowed API token); else None

    @property
    def own_unit(self) -> Unit:
        """The unit the account belongs to, whatever it acts as."""
        return self.home or self.unit

    @property
    def acts_as_own_unit(self) -> bool:
        return self.home is None or self.home.pk == self.unit.pk

    def contains(self, path: str) -> bool:
        return path.startswith(self.root.path)

    def can(self, perm: str) -> bool:
        return perm in self.perms


def scope_of(user) -> Scope:
    """The user's scope, cached on the user object for the request. Raises PermissionDenied."""
    cached = getattr(user, "_bihuan_scope", None)
    if cached is not None:
        return cached
    if not user.is_authenticated:
        raise PermissionDenied("login required")
    try:
        staff = Staff.objects.select_related("unit").get(user=user, deactivated_at__isnull=True)
    except Staff.DoesNotExist:
        if not user.is_superuser:
            raise PermissionDenied("this account is not bound to a unit") from None
        root = Unit.objects.filter(level=1).order_by("path").first()
        if root is None:
            raise PermissionDenied("the register is empty") from None
        scope = Scope(user.pk, root, root, Role.DISTRICT_COMMANDER, PERMISSIONS[Role.DISTRICT_COMMANDER])
    else:
        user.staff = staff  # cache the relation: templates and audit rows read user.staff without a query
        root = staff.unit
        # Departments serve the whole district (they may issue to any part of it).
        if staff.unit.kind == UnitKind.DEPARTMENT and staff.unit.parent_id:
            root = staff.unit.parent
        scope = Scope(user.pk, staff.unit, root, staff.role, PERMISSIONS.get(staff.role, frozenset()))
    subtree = getattr(user, "_api_subtree_unit_id", None)  # an API token limited to part of the user's subtree
    if subtree is not None:
        scope = _narrowed(scope, subtree)
    user._bihuan_scope = scope
    return scope


def _narrowed(scope: Scope, unit_id: int) -> Scope:
    """The scope of an API token narrowed to the subtree of ``unit_id`` (core.api_auth sets it on the request's
    user): everything it reads *and* does stays in that subtree. It sees only the subtree (``root``), and it acts
    as the subtree's top unit (``unit``: the unit a directive is issued from, a list uploaded for, whose robots and
    receipts are "one's own") when that unit lies below the account's own — a supervisor acting for a unit they
    answer for, never as their own unit outside the subtree (``home`` keeps that one; what only the unit itself
    may do, such as issuing a directive in its name, is refused while ``acts_as_own_unit`` is false). A
    department, whose own unit stands beside the district it serves rather than above it, keeps acting as itself
    (its own directives) within the subtree."""
    unit = Unit.objects.filter(pk=unit_id).first()
    if unit is None or not unit.path.startswith(scope.root.path):
        raise PermissionDenied("the token's unit is outside this account's part of the district")
    acting = unit if unit.path.startswith(scope.unit.path) else scope.unit
    return Scope(scope.user_id, acting, unit, scope.role, scope.perms, home=scope.unit)


def require(user, perm: str) -> Scope:
    scope = scope_of(user)
    if not scope.can(perm):
        raise PermissionDenied(f"your role may not {perm}")
    return scope


def scoped(user, queryset: QuerySet) -> QuerySet:
    """Restrict any queryset of a model with a ``path`` column to the user's subtree."""
    return queryset.filter(subtree_q(scope_of(user).root.path))


def access_unit(user, unit_id: int) -> Unit:
    unit = scoped(user, Unit.objects).filter(pk=unit_id).first()
    if unit is None:
        raise Http404("no such unit in your part of the district")
    return unit


def access_household(user, household_id: int) -> Household:
    household = scoped(user, Household.objects.select_related("unit")).filter(pk=household_id).first()
    if household is None:
        raise Http404("no such household in your part of the district")
    return household


def access_resident(user, resident_id: int) -> Resident:
    resident = scoped(user, Resident.objects.select_related("household")).filter(pk=resident_id).first()
    if resident is None:
        raise Http404("no such resident in your part of the district")
    return resident


def access_staff(user, staff_id: int, *, for_update: bool = False) -> Staff:
    """A staff account whose unit is in the user's subtree (404 otherwise: a sibling's or an ancestor's people
    are as invisible as their households)."""
    qs = Staff.objects.select_related("unit", "user")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    staff = qs.filter(subtree_q(scope_of(user).root.path, "unit__path"), pk=staff_id).first()
    if staff is None:
        raise Http404("no such staff member in your part of the district")
    return staff


def staff_required(perm: str):
    """View decorator: login, a staff binding and ``perm``; passes the user's Scope as ``scope``."""
    from functools import wraps

    from django.contrib.auth.views import redirect_to_login

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            return view(request, *args, scope=require(request.user, perm), **kwargs)

        return wrapper

    return decorator
