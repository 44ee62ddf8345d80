"""A flood guard for the public pages, kept in the database (no cache server): ``hit(key, limit, window)``
counts one request of ``key`` (a client address or a phone, hashed: no clear value is stored) in the current
window and says whether it is still within ``limit``. One UPDATE (an INSERT for the window's first request);
windows two or more behind are deleted as new ones start."""

from __future__ import annotations

import time

from django.db import IntegrityError, transaction
from django.db.models import F

from bihuan.core import crypto

from .models import Throttle


def _key(kind: str, value: str) -> str:
    return f"{kind}:{crypto.lookup_hash('throttle', value)}"[:64]


def hit(kind: str, value: str, *, limit: int, window: int) -> bool:
    """Count one request; True while the key has made at most ``limit`` in this window."""
    key = _key(kind, value)
    number = int(time.time()) // window
    with transaction.atomic():
        if not Throttle.objects.filter(key=key, window=number).update(hits=F("hits") + 1):
            try:
                with transaction.atomic():
                    Throttle.objects.create(key=key, window=number, hits=1)
            except IntegrityError:
                Throttle.objects.filter(key=key, window=number).update(hits=F("hits") + 1)
            Throttle.objects.filter(key=key, window__lt=number - 1).delete()
        hits = Throttle.objects.filter(key=key, window=number).values_list("hits", flat=True).first() or 0
    return hits <= limit
