"""Search from the header across the user's part of the district: residents, households, pushed people and people
under control — by name, pinyin initials, the last four digits of an ID number or phone, or the full ID number or
phone (through the lookup hashes). Results grouped by kind, each list bounded."""

from __future__ import annotations

import re

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from bihuan.control.models import ControlCase
from bihuan.pushes.models import PushedPerson
from bihuan.register import privacy
from bihuan.register.access import scope_of, scoped
from bihuan.register.models import Household, Resident
from bihuan.register.ordering import household_order
from bihuan.register.search import exact_q, search_households, search_residents

LIMIT = 20
_TAIL = re.compile(r"^[0-9]{3}[0-9Xx]$")
_LATIN = re.compile(r"^[A-Za-z]+$")


def _person_q(q: str, *, initials: str | None = None, has_id: bool = True) -> Q:
    exact = exact_q(q)
    if exact is not None:
        return exact if has_id or "id_hash" not in str(exact) else Q(pk__in=[])
    cond = Q(name__icontains=q)
    if initials and _LATIN.match(q):
        cond |= Q(**{f"{initials}__startswith": q.lower()})
    if _TAIL.match(q):
        cond |= Q(phone_tail=q) | (Q(id_tail=q.upper()) if has_id else Q(pk__in=[]))
    return cond


def search_all(user, q: str) -> list[tuple[str, str, list]]:
    """[(kind, label, rows)] for the kinds with results."""
    q = (q or "").strip()
    view = privacy.view_of(scope_of(user))
    if not q or view == privacy.PSEUDONYM:  # departments do not look people up (register.privacy)
        return []
    residents = privacy.apply_residents(search_residents(scoped(user, Resident.objects), q)
                                        .select_related("household")
                                        .order_by("path", *household_order("household__"), "id")[:LIMIT], view)
    households = list(search_households(scoped(user, Household.objects), q).order_by("path", *household_order())[:LIMIT])
    pushed = list(scoped(user, PushedPerson.objects).filter(_person_q(q)).select_related("unit")
                  .order_by("-first_pushed_at")[:LIMIT])
    cases = list(scoped(user, ControlCase.objects).filter(_person_q(q, has_id=False)).select_related("type", "unit")
                 .order_by("-start_date")[:LIMIT])
    return [(k, label, rows) for k, label, rows in (
        ("residents", _("居民"), residents), ("households", _("住户"), households),
        ("pushed", _("推送人员"), pushed), ("cases", _("管控人员"), cases)) if rows]
