"""Search of households and residents: by name, pinyin initials, phone tail or ID tail.

One function per list, used by the web pages and the API alike.
"""

from __future__ import annotations

import re

from django.db.models import Exists, OuterRef, Q, QuerySet

from bihuan.core import crypto

from .models import Resident

_TAIL = re.compile(r"^[0-9]{3}[0-9Xx]$")
_LATIN = re.compile(r"^[A-Za-z]+$")


_FULL_ID = re.compile(r"^[0-9]{17}[0-9Xx]$")
_FULL_PHONE = re.compile(r"^1[0-9]{10}$")


def exact_q(q: str, prefix: str = "") -> Q | None:
    """A full ID number or mobile number, matched through its lookup hash (the clear value is never stored)."""
    q = q.replace(" ", "").replace("-", "")
    if _FULL_ID.match(q):
        return Q(**{f"{prefix}id_hash": crypto.lookup_hash("id", q.upper())})
    if _FULL_PHONE.match(q):
        return Q(**{f"{prefix}phone_hash": crypto.lookup_hash("phone", q)})
    return None


def _resident_q(q: str, prefix: str = "") -> Q:
    """Conditions on Resident columns (``prefix`` lets households reuse them through a subquery)."""
    exact = exact_q(q, prefix)
    if exact is not None:
        return exact
    cond = Q(**{f"{prefix}name__icontains": q})
    if _LATIN.match(q):
        cond |= Q(**{f"{prefix}name_initials__startswith": q.lower()})
    if _TAIL.match(q):
        # Four characters: the end of a phone number or of an ID number (the only parts kept in clear).
        cond |= Q(**{f"{prefix}phone_tail": q}) | Q(**{f"{prefix}id_tail": q.upper()})
    return cond


def search_residents(queryset: QuerySet, q: str) -> QuerySet:
    q = (q or "").strip()
    return queryset.filter(_resident_q(q)) if q else queryset


def search_households(queryset: QuerySet, q: str) -> QuerySet:
    q = (q or "").strip()
    if not q:
        return queryset
    cond = Q(address__icontains=q) | Q(head_name__icontains=q)
    if _LATIN.match(q):
        cond |= Q(head_initials__startswith=q.lower())
    if _TAIL.match(q) or not _LATIN.match(q):
        member = Resident.objects.filter(_resident_q(q), household_id=OuterRef("pk"))
        cond |= Exists(member)
    return queryset.filter(cond)
