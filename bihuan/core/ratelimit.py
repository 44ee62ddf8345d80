"""Rate limits for the pages anyone may open without an account (a resident's link, the self-report form, a helper's
sign-up): per client address and per link, counted in the database (no cache server, shared by every web process).

``PublicRateLimitMiddleware`` counts every request to a public prefix (``settings.PUBLIC_PREFIXES``) twice — once for
the client address, once for the link (the path) — and answers 429 with ``Retry-After`` once either is over its
limit in the current window. The answer is the same whether or not the link exists, so the limit is no oracle.
Counters hold keyed hashes, never an address or a token in clear."""

from __future__ import annotations

import random
import time

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.shortcuts import render

from . import crypto
from .http import client_address
from .models import RateCounter


def _key(kind: str, value: str) -> str:
    return f"{kind}:{crypto.lookup_hash('ratelimit', value)}"[:64]


def hit(kind: str, value: str, *, limit: int, window: int) -> int:
    """Count one request of ``kind``/``value`` in the current window of ``window`` seconds. Returns 0 while within
    ``limit``, else the seconds until the window ends (what to wait)."""
    key = _key(kind, value)
    now = time.time()
    number = int(now) // window
    expires = (number + 1) * window
    if connection.vendor in ("postgresql", "sqlite"):
        with connection.cursor() as cursor:
            table = RateCounter._meta.db_table
            cursor.execute(
                f'INSERT INTO {table} ("key", "bucket", "hits", "expires") VALUES (%s, %s, 1, %s) '  # noqa: S608
                f'ON CONFLICT ("key", "bucket") DO UPDATE SET "hits" = {table}."hits" + 1 RETURNING "hits"',
                [key, number, expires])
            hits = cursor.fetchone()[0]
    else:  # pragma: no cover - other databases
        with transaction.atomic():
            if not RateCounter.objects.filter(key=key, bucket=number).update(hits=F("hits") + 1):
                try:
                    with transaction.atomic():
                        RateCounter.objects.create(key=key, bucket=number, hits=1, expires=expires)
                except IntegrityError:
                    RateCounter.objects.filter(key=key, bucket=number).update(hits=F("hits") + 1)
            hits = RateCounter.objects.filter(key=key, bucket=number).values_list("hits", flat=True).first() or 0
    if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
        RateCounter.objects.filter(expires__lt=int(now)).delete()
    return 0 if hits <= limit else max(1, int(expires - now))


def _public(path: str) -> bool:
    return path.startswith(settings.PUBLIC_PREFIXES)


def too_many(request, wait: int):
    response = render(request, "too_many.html", {"minutes": max(1, -(-wait // 60))}, status=429)
    response["Retry-After"] = str(wait)
    return response


class PublicRateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _public(request.path):
            window = settings.PUBLIC_RATE_WINDOW_SECONDS
            wait = hit("addr", client_address(request), limit=settings.PUBLIC_RATE_PER_ADDRESS, window=window)
            shared = request.path in settings.PUBLIC_SHARED_PATHS or request.path.startswith(
                settings.PUBLIC_SHARED_PREFIXES)
            if not shared:  # one page for many people is counted per address only
                wait = max(wait, hit("link", request.path, limit=settings.PUBLIC_RATE_PER_LINK, window=window))
            if wait:
                return too_many(request, wait)
        return self.get_response(request)
