"""Signed links of the field force (``core.links``), each with its own purpose so one never opens another:

- ``/f/join/<unit token>/``: a community's report-in poster (报到二维码) — anyone may report in there;
- ``/f/h/<helper token>/``: a helper's own page (receipt of the report-in, then "my duty": shifts with one tap on
  and off, tasks, disinfection jobs) — a helper needs no account;
- ``/f/n/<notice token>/``: a notice's resident page; ``?b=<building token>`` counts a reading for that building.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.urls import reverse

from bihuan.core import links

JOIN, HELPER, NOTICE, BUILDING = "bihuan-join", "bihuan-helper", "bihuan-notice", "bihuan-building"


def join_token(unit_id: int) -> str:
    return links.token_for(JOIN, unit_id)


def helper_token(helper_id: int) -> str:
    return links.token_for(HELPER, helper_id)


def notice_token(notice_id: int) -> str:
    return links.token_for(NOTICE, notice_id)


def building_token(unit_id: int, building: str) -> str:
    """A building of a compound (or a grid / group when ``building`` is ""): ``<unit id>-<sig>.<building>``."""
    return f"{links.token_for(BUILDING + '|' + building, unit_id)}.{building}"


def building_from(token: str) -> tuple[int, str] | None:
    head, _, building = (token or "").partition(".")
    unit_id = links.id_from(BUILDING + "|" + building, head)
    return (unit_id, building) if unit_id else None


def join_path(unit_id: int) -> str:
    return reverse("forces_join", args=[join_token(unit_id)])


def helper_path(helper_id: int) -> str:
    return reverse("forces_helper", args=[helper_token(helper_id)])


def notice_path(notice_id: int, unit_id: int | None = None, building: str = "") -> str:
    path = reverse("forces_notice", args=[notice_token(notice_id)])
    return f"{path}?b={building_token(unit_id, building)}" if unit_id else path


def absolute(path: str, request=None) -> str:
    base = (getattr(settings, "PUBLIC_URL", "") or "").rstrip("/")
    if base:
        return base + path
    return request.build_absolute_uri(path) if request is not None else path


def id_from(purpose: str, token: str) -> int:
    pk = links.id_from(purpose, token)
    if pk is None:
        raise Http404("no such link")
    return pk
