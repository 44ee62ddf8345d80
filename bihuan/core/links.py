"""Signed, unguessable links for people without an account: ``<id>-<signature>``, where the signature is an
HMAC-SHA256 of ``"<purpose>|<id>"`` under the secret key, cut to 120 bits (20 URL-safe characters).

The purpose separates the kinds of link, so a directive's household token never opens a person's control
page: directives use ``bihuan-reach`` (``directives.links``), control cases ``bihuan-person``
(``control.links``). Tokens are compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings


def sign(purpose: str, object_id: int) -> str:
    mac = hmac.new(settings.SECRET_KEY.encode(), f"{purpose}|{object_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:15]).decode()  # 120 bits, 20 characters


def token_for(purpose: str, object_id: int) -> str:
    return f"{object_id}-{sign(purpose, object_id)}"


def id_from(purpose: str, token: str) -> int | None:
    """The id if the token is genuine for ``purpose``, else None (constant-time comparison)."""
    head, _, signature = (token or "").partition("-")
    # ASCII digits only ("²".isdigit() is true), a signature of the URL-safe alphabet: anything else is no token
    if not (head.isascii() and head.isdigit()) or not signature.isascii() or not signature or len(head) > 18:
        return None
    return int(head) if hmac.compare_digest(signature, sign(purpose, int(head))) else None
