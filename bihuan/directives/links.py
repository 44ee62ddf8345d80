"""Signed, unguessable per-household links: ``/r/<reach id>-<signature>/`` lets a resident confirm a
directive with one tap and no login. The signature is an HMAC of the reach id under the secret key."""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings
from django.urls import reverse


def _sign(reach_id: int) -> str:
    mac = hmac.new(settings.SECRET_KEY.encode(), f"bihuan-reach|{reach_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:15]).decode()  # 120 bits, 20 characters


def token_for(reach_id: int) -> str:
    return f"{reach_id}-{_sign(reach_id)}"


def reach_id_from(token: str) -> int | None:
    """The reach id if the token is genuine, else None (constant-time comparison)."""
    head, _, signature = token.partition("-")
    if not head.isdigit() or not signature:
        return None
    return int(head) if hmac.compare_digest(signature, _sign(int(head))) else None


def confirm_path(reach_id: int) -> str:
    return reverse("confirm", args=[token_for(reach_id)])
