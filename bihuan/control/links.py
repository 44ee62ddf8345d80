"""The person's own signed link: ``/p/<case id>-<signature>/`` opens their control page without a login —
today's check-ins, service requests and their confirmation. Signed with ``core.links`` (purpose
``bihuan-person``), so a directive's household token never opens it.

SMS texts carry the full address when ``settings.PUBLIC_URL`` (e.g. ``https://bihuan.yaodu.gov.cn``) is set;
without it they name no link (a path alone is useless on a phone).
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.urls import reverse

from bihuan.core import links

from .models import ControlCase

PURPOSE = "bihuan-person"


def token_for(case_id: int) -> str:
    return links.token_for(PURPOSE, case_id)


def case_id_from(token: str) -> int | None:
    """The case id if the token is genuine, else None (constant-time comparison)."""
    return links.id_from(PURPOSE, token)


def person_path(case_id: int) -> str:
    return reverse("person", args=[token_for(case_id)])


def person_url(case_id: int) -> str:
    """The absolute link for SMS texts, or "" when no public address is configured."""
    base = (getattr(settings, "PUBLIC_URL", "") or "").rstrip("/")
    return f"{base}{person_path(case_id)}" if base else ""


def case_for_token(token: str) -> ControlCase:
    """The case a genuine token names; ``Http404`` for a forged token or a case that no longer exists."""
    case_id = case_id_from(token)
    case = ControlCase.objects.select_related("type", "unit").filter(pk=case_id).first() if case_id else None
    if case is None:
        raise Http404("no such link")
    return case
