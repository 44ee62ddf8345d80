"""Lookups shared by the register's pages and API routes (so the two never filter differently)."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from bihuan.core.roles import Role

from .access import scope_of, scoped
from .models import Staff, Unit, UnitLeader, subtree_q

# Columns a list never needs: the phone's ciphertext and lookup hash stay in the database.
STAFF_LIST_DEFER = ("phone_sealed", "phone_hash")


def staff_in(user, unit: Unit, *, role: str = "", include_inactive: bool = False) -> QuerySet[Staff]:
    """The staff of ``unit``'s subtree (which must be inside the user's), by unit path then name; with the unit,
    the user and the number of households each answers for, in one query."""
    qs = (Staff.objects.filter(subtree_q(unit.path, "unit__path"))
          .filter(subtree_q(scope_of(user).root.path, "unit__path"))
          .select_related("unit", "user").defer(*STAFF_LIST_DEFER)
          .annotate(household_count=Count("households"))
          .order_by("unit__path", "role", "name", "id"))
    if role:
        qs = qs.filter(role=role)
    if not include_inactive:
        qs = qs.filter(deactivated_at__isnull=True)
    return qs


def responsible_people(unit: Unit) -> list[Staff]:
    """The address book of a unit: its own active staff, responsible roles first, in one query."""
    order = {role: i for i, role in enumerate(Role.values)}
    people = list(Staff.objects.filter(unit=unit, deactivated_at__isnull=True).defer(*STAFF_LIST_DEFER))
    return sorted(people, key=lambda s: (order.get(s.role, 99), s.name))


def leaders_of(unit: Unit) -> list[UnitLeader]:
    """The cadres answering for ``unit`` (包保), with their own unit, in one query."""
    return list(UnitLeader.objects.filter(unit=unit, staff__deactivated_at__isnull=True)
                .select_related("staff", "staff__unit").order_by("id"))


def units_for_choice(user, unit: Unit) -> QuerySet[Unit]:
    """Units a person can be placed at from ``unit``'s staff page: its subtree within the user's scope."""
    return scoped(user, Unit.objects.filter(subtree_q(unit.path))).only("id", "name", "level", "kind", "path")
