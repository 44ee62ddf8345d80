"""How much of a resident a role may read in lists, pages, the API and exports: the one place that decides it.

Three views, chosen from the role (``view_of``):

- ``FULL`` — roles with ``Perm.REVEAL_PERSONAL`` (they may reveal the full values on purpose anyway): the stored
  masked ID (``141002********1234``), masked phone and the full birth date.
- ``MASKED`` — roles without it (inspectors, volunteers): only the last four characters of the ID number
  (``**************1234``) and the birth *year*, never the birth date or the exact age. The eight hidden digits
  of an ID number are the birth date: a region code (from the address) + birth date + the last four rebuilds
  the number, so a list that showed both would undo the mask. With the year alone about 33 dates of the year
  agree with the check digit, and the age band shown is computed from the year alone (it adds nothing).
- ``PSEUDONYM`` — departments (区直部门): they serve the whole district but their business is directives and
  counts, not the register. Residents are shown by a stable pseudonym (SORMAS-style: the same person always gets
  the same code, so lists can still be compared, but the name is gone), their household by a pseudonym too (the unit stays: counts per unit are their business), no ID or
  phone at all, the age band only. Counts are unchanged.

``apply_residents`` and ``apply_households`` change the display attributes of loaded objects in memory (they are
never saved afterwards); ``resident_fields`` gives the API's dict. A test over every role and every list, page,
API route and export tries to rebuild full ID numbers from what each role reads (tests/test_privacy.py).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import pgettext

from bihuan.core import crypto
from bihuan.core.roles import Perm, Role

FULL, MASKED, PSEUDONYM = "full", "masked", "pseudonym"
# Roles whose business is not the register: every resident is pseudonymised for them.
PSEUDONYM_ROLES = frozenset({Role.DEPARTMENT})


def view_of(scope) -> str:
    if scope.role in PSEUDONYM_ROLES:
        return PSEUDONYM
    return FULL if scope.can(Perm.REVEAL_PERSONAL) else MASKED


def id_tail_mask(tail: str) -> str:
    """Only the last four characters of an ID number: ``**************1234``."""
    return ("*" * 14 + tail) if tail else ""


def age_band(birth_year: int, today: dt.date | None = None) -> str:
    """A ten-year band from the birth year alone (``30–39``; ``80+``): no more than the year says."""
    age = (today or timezone.localdate()).year - birth_year
    if age >= 80:
        return "80+"
    low = max(age, 0) // 10 * 10
    return f"{low}–{low + 9}"


def pseudonym(resident_id: int) -> str:
    """A stable code for a resident (keyed hash of the row id: the same person, the same code; not reversible
    without the data key)."""
    code = crypto.lookup_hash("pseudonym", f"resident:{resident_id}")[:8].upper()
    return f"{pgettext('pseudonym', '居民')}-{code}"


def household_pseudonym(household_id: int) -> str:
    return f"{pgettext('pseudonym', '住户')}-{crypto.lookup_hash('pseudonym', f'household:{household_id}')[:8].upper()}"


def resident_fields(r, view: str, today: dt.date | None = None) -> dict:
    """The personal fields of one resident as ``view`` may read them (the API's dict)."""
    today = today or timezone.localdate()
    year = r.birth_date.year if r.birth_date else None
    out = {
        "name": r.name, "birth_date": r.birth_date, "birth_year": year,
        "age": r.age(today) if r.birth_date else None,
        "age_band": age_band(year, today) if year else "",
        "id_masked": r.id_masked, "phone_masked": r.phone_masked,
    }
    if view == MASKED:
        out.update(birth_date=None, age=None, id_masked=id_tail_mask(r.id_tail))
    elif view == PSEUDONYM:
        out.update(name=pseudonym(r.id), birth_date=None, birth_year=None, age=None, id_masked="", phone_masked="")
    return out


def household_fields(h, view: str) -> dict:
    """Address and head of one household as ``view`` may read them."""
    if view != PSEUDONYM:
        return {"address": h.address, "head_name": h.head_name, "building": h.building, "entrance": h.entrance,
                "room": h.room, "house_number": h.house_number}
    return {"address": household_pseudonym(h.id), "head_name": "", "building": "", "entrance": "", "room": "", "house_number": ""}


def apply_residents(residents, view: str, today: dt.date | None = None) -> list:
    """Set what a template shows on each resident (and its household, when loaded) for ``view``."""
    rows = list(residents)
    for r in rows:
        shown = resident_fields(r, view, today)
        r.name, r.id_masked, r.phone_masked = shown["name"], shown["id_masked"], shown["phone_masked"]
        r.shown_age = shown["age"]
        r.shown_birth_year = shown["birth_year"]
        r.shown_age_band = shown["age_band"]
        household = r._state.fields_cache.get("household")
        if household is not None and not getattr(household, "_privacy_applied", False):
            apply_households([household], view)
    return rows


def apply_households(households, view: str) -> list:
    rows = list(households)
    if view != PSEUDONYM:
        return rows
    for h in rows:
        for field, value in household_fields(h, view).items():
            setattr(h, field, value)
        h._privacy_applied = True
    return rows


def search(search_fn, queryset, q: str, view: str):
    """``search_fn(queryset, q)`` unless the view is pseudonymised: a department may not search residents by name,
    phone or ID number (a hit would tell it that the person lives there), so a search finds nobody."""
    if view == PSEUDONYM and (q or "").strip():
        return queryset.none()
    return search_fn(queryset, q)
