"""Reads that may go to a streaming replica: rollups, dashboards, reports and exports.

When ``DATABASE_REPLICA_URL`` is set, settings add a ``replica`` database (a PostgreSQL hot standby of
``default``), this module's ``Router`` and ``PinAfterWrite`` middleware. Nothing goes to the replica by
accident: only a view wrapped in ``replica_reads`` reads there, and only while

- the user is not *pinned*: after any write request (POST, PUT, PATCH, DELETE) the response carries a
  short-lived cookie, and for ``BIHUAN_REPLICA_PIN_SECONDS`` (default 10) that user's reads stay on the
  primary, so they see their own writes however far the replica is behind;
- the replica is *healthy*: in recovery, streaming from the primary, and less than
  ``BIHUAN_REPLICA_MAX_LAG_SECONDS`` (default 10) behind: it has replayed every WAL position the primary
  reported at a check (``pg_current_wal_lsn()``) longer ago than that. The check runs at most once per
  ``BIHUAN_REPLICA_CHECK_SECONDS`` (default 2) per process; a replica that cannot be reached within 2 s,
  or lags, is skipped until the next check. (The standby's own ``pg_last_xact_replay_timestamp()`` is no
  measure: it is the time of the last commit replayed, old whenever the primary commits rarely.)

A view that fails on the replica part way (the standby went down after the check) is run again on the
primary: views wrapped here only read (GET/HEAD), so running them twice is safe. Writes a read view makes
(an export's audit row) always go to the primary.

Raw SQL in the rollups uses ``read_connection()`` instead of ``django.db.connection``: the connection of the
database this request reads from.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import logging
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

log = logging.getLogger("bihuan.dbroute")

REPLICA = "replica"
PIN_COOKIE = "bihuan_primary"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_reading: contextvars.ContextVar[str | None] = contextvars.ContextVar("bihuan_read_alias", default=None)
_health = {"checked": 0.0, "ok": False, "why": "not checked"}

HEALTH_SQL = """
SELECT pg_is_in_recovery(), COALESCE((SELECT status FROM pg_stat_wal_receiver LIMIT 1), 'none'),
       pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')
"""
# The primary's WAL position at each check: (monotonic time, byte position), newest last. The standby lags by more
# than the bound when it has not replayed what the primary had written at least the bound ago.
_primary_positions: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)


def configured() -> bool:
    return REPLICA in settings.DATABASES


def read_alias() -> str:
    """The database the current code path reads from."""
    return _reading.get() or DEFAULT_DB_ALIAS


def read_connection():
    """The connection for raw-SQL reads (rollups): the replica inside a ``replica_reads`` view, else default."""
    return connections[read_alias()]


def health() -> tuple[bool, str]:
    """(usable, why not), checked at most once per BIHUAN_REPLICA_CHECK_SECONDS per process."""
    now = time.monotonic()
    if now - _health["checked"] < settings.REPLICA_CHECK_SECONDS:
        return _health["ok"], _health["why"]
    ok, why = _check()
    _health.update(checked=now, ok=ok, why=why)
    if not ok:
        log.warning("replica skipped: %s", why)
    return ok, why


def forget_health() -> None:
    """The next ``health()`` checks again (tests; and after a failure on the replica)."""
    _health.update(checked=0.0, ok=False, why="not checked")
    _primary_positions.clear()


def mark_down(why: str) -> None:
    _health.update(checked=time.monotonic(), ok=False, why=why)
    log.warning("replica skipped: %s", why)


def _check() -> tuple[bool, str]:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cur:
            cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
            primary_at = int(cur.fetchone()[0])
    except (OperationalError, InterfaceError):
        return False, "the primary's position is unknown"
    now = time.monotonic()
    _primary_positions.append((now, primary_at))
    conn = connections[REPLICA]
    try:
        with conn.cursor() as cur:
            cur.execute(HEALTH_SQL)
            in_recovery, status, replayed = cur.fetchone()
    except (OperationalError, InterfaceError) as exc:
        conn.close()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"unreachable ({first})"
    if not in_recovery:
        return False, "not a standby (not in recovery)"
    if status != "streaming":
        return False, f"not streaming from the primary ({status})"
    bound = settings.REPLICA_MAX_LAG_SECONDS
    behind = [t for t, at in _primary_positions if at > int(replayed or 0)]
    if behind and now - behind[0] > bound:
        return False, f"{now - behind[0]:.1f} s behind (bound {bound} s)"
    return True, ""


def pinned(request) -> bool:
    """True while the user's own recent write may not have reached the replica yet."""
    try:
        return float(request.COOKIES.get(PIN_COOKIE, 0)) > time.time()
    except ValueError:
        return False


def choose(request) -> str:
    """The alias a read-only view should use for this request."""
    if not configured() or request.method not in ("GET", "HEAD") or pinned(request):
        return DEFAULT_DB_ALIAS
    ok, _ = health()
    return REPLICA if ok else DEFAULT_DB_ALIAS


def replica_reads(view):
    """Run a read-only view against the replica when it is usable (see the module's docstring)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        alias = choose(request)
        if alias == DEFAULT_DB_ALIAS:
            return view(request, *args, **kwargs)
        token = _reading.set(alias)
        try:
            response = view(request, *args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            replica = connections[REPLICA]
            if replica.connection is not None and replica.is_usable():
                raise  # the error came from the primary, or from the query itself
            replica.close()
            mark_down(f"failed during a request ({type(exc).__name__})")
            _reading.reset(token)
            token = None
            return view(request, *args, **kwargs)
        finally:
            if token is not None:
                _reading.reset(token)
        request.bihuan_read_from = alias
        return response

    return wrapper


class Router:
    """Reads go where ``replica_reads`` sent the current view (default everywhere else); writes, migrations
    and relations are the primary's."""

    def db_for_read(self, model, **hints):
        return _reading.get()

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica is a copy of the same database

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


class PinAfterWrite:
    """Middleware: a write request's response pins its user to the primary for a few seconds."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method in WRITE_METHODS:
            seconds = settings.REPLICA_PIN_SECONDS
            response.set_cookie(PIN_COOKIE, f"{time.time() + seconds:.0f}", max_age=seconds, httponly=True,
                                samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)
        return response
