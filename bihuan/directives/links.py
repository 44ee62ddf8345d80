"""Signed, unguessable per-household links: ``/r/<reach id>-<signature>/`` lets a resident confirm a
directive with one tap and no login. The signing lives in ``core.links`` (purpose ``bihuan-reach``)."""

from __future__ import annotations

from django.urls import reverse

from bihuan.core import links

PURPOSE = "bihuan-reach"


def _sign(reach_id: int) -> str:
    return links.sign(PURPOSE, reach_id)


def token_for(reach_id: int) -> str:
    return links.token_for(PURPOSE, reach_id)


def reach_id_from(token: str) -> int | None:
    """The reach id if the token is genuine, else None (constant-time comparison)."""
    return links.id_from(PURPOSE, token)


def confirm_path(reach_id: int) -> str:
    return reverse("confirm", args=[token_for(reach_id)])
