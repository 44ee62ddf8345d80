"""Background work driven by state in the database.

There is no queue server: deadlines, outbox rows and job rows are the truth. `bihuan worker` calls every
registered task once per tick; each task claims its due rows with ``claim`` (a conditional UPDATE on
SQLite, ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL), works on them, and releases them by changing
their state. A worker killed at any moment leaves rows whose lease simply runs out; another worker (or the
same one restarted) picks them up again, so every task must be idempotent.

A worker that outlives a database restart (or any lost connection) does not wait for its own leases to run
out: the task fails with the connection error, and at the start of the next tick the worker closes the broken
connection and ends every lease it still holds, so the ``claim`` that follows takes the rows again at once —
a push import or fan-out cut by a restart resumes within a tick of the database being back, not after its
5-minute lease.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

log = logging.getLogger("bihuan.worker")

TASKS: dict[str, Callable[[str], int]] = {}
_LAST: set[str] = set()
# Every (model, lock field, until field) this process has claimed rows of, and whether its connection broke.
_LEASED: set[tuple[type, str, str]] = set()
_CONNECTION_LOST = {"owner": None}


def task(name: str, *, last: bool = False):
    """Register ``fn(worker_id) -> rows handled`` to run on every tick of every worker. ``last`` tasks run
    after the others (delivery, so that what this tick's tasks enqueued goes out in the same tick)."""

    def register(fn):
        TASKS[name] = fn
        if last:
            _LAST.add(name)
        return fn

    return register


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(queryset: QuerySet, *, owner: str, lease_seconds: int = 60, limit: int = 100,
          lock_field: str = "locked_by", until_field: str = "locked_until") -> list:
    """Lease up to ``limit`` rows of ``queryset`` to ``owner``; rows leased to someone else are skipped
    until their lease runs out. Returns the leased rows (fresh from the database)."""
    _LEASED.add((queryset.model, lock_field, until_field))
    now = timezone.now()
    free = Q(**{f"{until_field}__isnull": True}) | Q(**{f"{until_field}__lt": now})
    lease = {lock_field: owner, until_field: now + timedelta(seconds=lease_seconds)}
    model = queryset.model
    with transaction.atomic():
        if connection.vendor == "postgresql":
            ids = list(queryset.filter(free).select_for_update(skip_locked=True)
                       .values_list("pk", flat=True)[:limit])
            model.objects.filter(pk__in=ids).update(**lease)
        else:
            # SQLite serialises writers (IMMEDIATE transactions), so this UPDATE is the claim.
            ids = list(queryset.filter(free).values_list("pk", flat=True)[:limit])
            model.objects.filter(free, pk__in=ids).update(**lease)
        return list(model.objects.filter(pk__in=ids, **{lock_field: owner}).order_by("pk"))


def release_own_leases(owner: str) -> int:
    """End every lease ``owner`` holds (its work was cut off: the rows are free to claim again at once)."""
    now = timezone.now()
    released = 0
    for model, lock_field, until_field in sorted(_LEASED, key=lambda leased: leased[0]._meta.label):
        released += model.objects.filter(**{lock_field: owner, f"{until_field}__gt": now}).update(
            **{until_field: now})
    return released


def _recover(owner: str) -> bool:
    """After a lost connection: a new connection, and this worker's leases ended. False while the database is
    still away (the next tick tries again)."""
    if not connection.in_atomic_block:
        connection.close()  # the broken one; the next statement opens a new one
    try:
        released = release_own_leases(owner)
    except (OperationalError, InterfaceError) as exc:
        log.warning("database still unreachable: %s", str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
        return False
    _CONNECTION_LOST["owner"] = None
    log.warning("database connection back; %d lease(s) of this worker released to be claimed again", released)
    return True


def run_tick(owner: str | None = None) -> dict[str, int]:
    owner = owner or worker_id()
    done = {}
    if _CONNECTION_LOST["owner"] == owner and not _recover(owner):
        return {name: -1 for name in TASKS}
    for name, fn in sorted(TASKS.items(), key=lambda item: item[0] in _LAST):
        try:
            done[name] = fn(owner)
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or (connection.connection is not None and connection.is_usable()):
                log.exception("task %s failed", name)  # the statement's own error, on a live connection
            else:
                log.warning("task %s: database connection lost (%s)", name, type(exc).__name__)
                _CONNECTION_LOST["owner"] = owner
            done[name] = -1
            if _CONNECTION_LOST["owner"] == owner:
                break  # the other tasks would fail the same way; recover first
        except Exception:  # noqa: BLE001 - one failing task must not stop the others; it is retried next tick
            log.exception("task %s failed", name)
            done[name] = -1
    return done


def run_forever(interval: float = 2.0, max_ticks: int | None = None) -> None:
    owner = worker_id()
    log.info("worker %s started with tasks %s", owner, ", ".join(TASKS))
    ticks = 0
    while max_ticks is None or ticks < max_ticks:
        started = time.monotonic()
        done = run_tick(owner)
        ticks += 1
        if not any(n > 0 for n in done.values()):
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
