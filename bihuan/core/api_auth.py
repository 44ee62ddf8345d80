"""Authentication for /api/v1/: a bearer token, or the web UI's own Django session (with CSRF).

``API_AUTH`` is the list handed to the NinjaAPI; ninja tries its entries in order:

1. ``BearerToken`` — ``Authorization: Bearer <key>``. The key is looked up by its sha256 hash (the only
   thing stored). An unknown or revoked key, or one whose user is inactive, is refused at once with 401:
   a request that names a token is never quietly served through a session instead.
2. ``SessionWithCsrf`` — a logged-in browser session. Unsafe methods need Django's CSRF token, exactly
   as the web pages do; a request without a logged-in session falls through to 401, never to a CSRF 403.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthenticationError, HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from .models import ApiToken

# last_used_at is written at most once per interval per token, not on every request.
TOUCH_INTERVAL = dt.timedelta(minutes=1)


def touch(token: ApiToken, now: dt.datetime | None = None) -> bool:
    """Record that ``token`` was used, unless that was already recorded less than a minute ago.

    The check is made on the row already in memory, so a busy client costs no write per request; the
    conditional UPDATE keeps concurrent requests from writing the same minute twice. Returns True if
    it wrote.
    """
    now = now or timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_INTERVAL:
        return False
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_INTERVAL)
    written = ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
    return bool(written)


def user_for_key(key: str):
    """The active user that ``key`` belongs to, with the token row; None if the key is not usable."""
    if not key:
        return None, None
    token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_key(key)).first()
    if token is None or token.revoked or token.expired() or not token.user.is_active:
        return None, None
    return token.user, token


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _token_in_query(request: HttpRequest) -> bool:
    return any(value.strip().startswith("bh_") for values in request.GET.lists() for value in values[1])


class BearerToken(HttpBearer):
    """``Authorization: Bearer bh_…`` against ApiToken rows."""

    def __call__(self, request: HttpRequest) -> Any:
        # A token is a credential: never in a URL (it would land in access logs, proxies and browser history).
        if _token_in_query(request):
            raise AuthenticationError(401, "API tokens are accepted only in the Authorization header")
        # Like HttpBearer.__call__, without its DEBUG log of any other Authorization value (a credential).
        scheme, _, key = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, key)

    def lookup(self, key: str):
        """(user, token row) or (None, None): the one query a hot path may replace (checkpoints.gate)."""
        return user_for_key(key)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user, row = self.lookup(token.strip())
        if user is None:
            raise AuthenticationError(401, "invalid, expired or revoked API token")
        if request.method not in SAFE_METHODS and not row.can_write:
            raise HttpError(403, "this API token may only read")
        touch(row)
        # The access functions take the user: make the token's user the request's user, narrowed to the token's
        # subtree (register.access.scope_of reads it).
        user._api_subtree_unit_id = row.subtree_unit_id  # type: ignore[attr-defined]
        request.user = user
        request.api_token = row  # type: ignore[attr-defined]
        return user


class SessionWithCsrf(APIKeyCookie):
    """The Django session of a logged-in user; CSRF-checked like the web pages (unsafe methods only)."""

    param_name: str = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # not a session request: no CSRF verdict, let the request end in 401
        if check_csrf(request):
            raise HttpError(403, "CSRF check failed")
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user
        return None


API_AUTH = [BearerToken(), SessionWithCsrf()]
