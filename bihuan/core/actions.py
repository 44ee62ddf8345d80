"""Writes to the core app: API tokens. Each runs in a transaction and writes its audit row."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from bihuan.core.errors import Refused

from . import audit
from .models import ApiToken


class TokenError(Refused):
    """A token write was refused; the message names the field."""


def _may_manage_tokens_of(acting_user, user) -> bool:
    # None is the console (the create_token command): the operator who runs it is trusted.
    if acting_user is None:
        return True
    if not getattr(acting_user, "is_authenticated", False):
        return False
    return acting_user.pk == user.pk or acting_user.is_superuser


def do_create_api_token(*, user, name: str, acting_user, write: bool = False, subtree_unit_id: int | None = None,
                        days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user``: read-only unless ``write``, limited to the subtree of ``subtree_unit_id`` if given
    (the caller checks it lies in the user's own part), expiring after ``days`` (default BIHUAN_API_TOKEN_DAYS).
    Returns the row and the clear key, which is never stored or shown again."""
    import datetime as dt

    from django.conf import settings
    from django.utils import timezone

    days = settings.API_TOKEN_DAYS if days is None else days
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        raise TokenError("days", f"1-{settings.API_TOKEN_MAX_DAYS}")
    name = (name or "").strip()
    if not name:
        raise TokenError("name: required")
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise TokenError("name: too long")
    if not user.is_active:
        raise TokenError("user: the account is inactive")
    if not _may_manage_tokens_of(acting_user, user):
        raise PermissionDenied("only the user themselves or a superuser may create their tokens")
    key = ApiToken.new_key()
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name, key_hash=ApiToken.hash_key(key),
                                        prefix=key[:8], can_write=bool(write), subtree_unit_id=subtree_unit_id,
                                        expires_at=timezone.now() + dt.timedelta(days=days))
        audit.record(actor=acting_user, action="api_token.create", target=token,
                     changes={"user": user.pk, "name": name, "prefix": token.prefix, "write": bool(write),
                              "unit": subtree_unit_id, "expires_at": token.expires_at.isoformat()})
    return token, key


def do_revoke_api_token(*, token: ApiToken, acting_user) -> ApiToken:
    """Revoke ``token`` for good. Revoking a revoked token changes nothing and writes no audit row."""
    if not _may_manage_tokens_of(acting_user, token.user):
        raise PermissionDenied("only the token's user or a superuser may revoke it")
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked:
            return token
        token.revoked = True
        token.save(update_fields=["revoked"])
        audit.record(actor=acting_user, action="api_token.revoke", target=token,
                     changes={"user": token.user_id, "name": token.name, "prefix": token.prefix})
    return token
