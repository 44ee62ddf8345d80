"""Fan-out of a directive, set-based: one loop per unit in scope (one INSERT … SELECT), the responsible
people of every receiving unit told at once (in unit-id chunks, each committed with its cursor and with
idempotency keys per directive version), and one reach row per household in scope (INSERT … SELECT in
household-id chunks, each committed with its cursor), so a crashed worker resumes where it stopped and
never writes a household or sends a message twice."""

from __future__ import annotations

import os
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import Q

from bihuan.env import ConfigError
from bihuan.loops import engine
from bihuan.loops.models import Loop
from bihuan.notify.outbox import notify_units
from bihuan.register.models import Household, Resident, Unit, UnitKind, next_path, subtree_q

from .models import RECEIPT, Directive, DirectiveStatus, FanoutState, Reach


def _chunk_from_env() -> int | None:
    """``BIHUAN_FANOUT_CHUNK``: household ids per worker transaction (default 100,000 on PostgreSQL, 25,000 on
    SQLite). Smaller chunks commit progress more often; the crash test uses tiny ones so that a killed worker stops
    mid-fan-out. On SQLite a chunk holds the one write lock while it is written (pages that write wait for it),
    so its default is a quarter: ~0.1–0.2 s a chunk for a district instead of ~0.5–1 s under load."""
    value = os.environ.get("BIHUAN_FANOUT_CHUNK", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"BIHUAN_FANOUT_CHUNK must be a whole number of at least 1, got {value!r}")
    return int(value)


CHUNK = _chunk_from_env()  # households per transaction in the worker (None: the database's default)
DEFAULT_CHUNK = {"postgresql": 100_000, "sqlite": 25_000}


def chunk_size() -> int:
    return CHUNK or DEFAULT_CHUNK.get(connection.vendor, 100_000)
INLINE_LIMIT = 3000  # scopes up to this many households fan out inside the issuing request
NOTIFY_CHUNK = 500  # receiving units told per transaction
EVENTS = {"issued": "directive.issued", "updated": "directive.updated", "cancelled": "directive.cancelled"}


def notice_key(directive: Directive, what: str) -> str:
    """The idempotency key of one notice of a directive (``directive:<id>:v<version>:<issued|updated|cancelled>``);
    the outbox adds the recipient and channel."""
    return f"directive:{directive.pk}:v{directive.version}:{what}"


def _receiving_units(directive: Directive, after: int = 0):
    return (Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk, owner_unit_id__gt=after)
            .order_by("owner_unit_id").values_list("owner_unit_id", flat=True))


def _notify_chunk(directive: Directive, unit_ids: list[int], what: str, subject: str, body: str) -> int:
    return notify_units(unit_ids, key=notice_key(directive, what), subject=subject, body=body, event=EVENTS[what],
                        urgent=directive.is_urgent)


def notify_receivers(directive: Directive, what: str, subject: str, body: str) -> int:
    """Tell the responsible people of every receiving unit (every unit with a receipt) of an update or a
    cancellation, in chunks of units, inside the caller's transaction. Returns the messages enqueued."""
    told, after = 0, 0
    while True:
        ids = list(_receiving_units(directive, after)[:NOTIFY_CHUNK])
        if not ids:
            return told
        told += _notify_chunk(directive, ids, what, subject, body)
        after = ids[-1]


def issue_subject(directive: Directive) -> str:
    mark = {"extra_urgent": "【特急】", "urgent": "【紧急】"}.get(directive.urgency, "")
    drill = "【演练】" if directive.is_exercise else ""
    return f"{mark}{drill}新指令：{directive.title}"


def notify_issued(directive: Directive, chunk: int = NOTIFY_CHUNK) -> int:
    """Tell every receiving unit of the new directive, ``chunk`` units per transaction, each committed with the
    cursor (``notify_cursor``: the last unit id told). A re-run (a crashed worker) starts after the cursor, and
    the idempotency keys make a repeated chunk enqueue nothing. Nothing is sent for a directive already
    cancelled or closed."""
    told = 0
    while True:
        directive.refresh_from_db(fields=["notify_cursor", "status"])
        if directive.status != DirectiveStatus.ISSUED:
            return told
        start = directive.notify_cursor
        with transaction.atomic():
            ids = list(_receiving_units(directive, start)[:chunk])
            if not ids:
                return told
            told += _notify_chunk(directive, ids, "issued", issue_subject(directive), directive.body)
            Directive.objects.filter(pk=directive.pk, notify_cursor=start).update(notify_cursor=ids[-1])


def target_paths(directive: Directive) -> list[str]:
    """Paths of the subtrees the directive goes to (its scope, narrowed by the target filter)."""
    root = directive.scope_unit
    if not directive.target_kinds and not directive.target_unit_ids:
        return [root.path]
    chosen = Unit.objects.filter(root.subtree()).filter(
        Q(kind__in=directive.target_kinds or []) | Q(id__in=directive.target_unit_ids or []))
    paths = sorted(chosen.values_list("path", flat=True))
    # Keep only the topmost of nested targets.
    tops: list[str] = []
    for p in paths:
        if not tops or not p.startswith(tops[-1]):
            tops.append(p)
    return tops


def units_in_scope(directive: Directive, paths: list[str]):
    """Targets and everything below them, plus the relay chain between the issuer and each target."""
    root, issuer = directive.scope_unit, directive.issuer_unit
    chain = {p[:i] for p in paths for i in range(len(root.path), len(p), 4)}
    cond = Q(path__in=chain)
    for p in paths:
        cond |= subtree_q(p)
    qs = Unit.objects.filter(cond, level__gt=issuer.level).exclude(pk=issuer.pk)
    named = directive.target_unit_ids or []
    return qs.exclude(Q(kind=UnitKind.DEPARTMENT) & ~Q(id__in=named))


def _household_where(directive: Directive, paths: list[str], alias: str = "h") -> tuple[str, list]:
    if not paths:  # the target names no unit there is (a kind the district does not have)
        return "1 = 0", []
    if len(paths) == 1:
        sql, params = f"{alias}.path >= %s AND {alias}.path < %s", [paths[0], next_path(paths[0])]
    else:
        by_len: dict[int, list[str]] = defaultdict(list)
        for p in paths:
            by_len[len(p)].append(p)
        parts, params = [], []
        for length, group in sorted(by_len.items()):
            parts.append(f"SUBSTR({alias}.path, 1, {length}) IN ({', '.join(['%s'] * len(group))})")
            params += group
        sql = "(" + " OR ".join(parts) + ")"
    if directive.household_flag:
        res = connection.ops.quote_name(Resident._meta.db_table)
        flag = connection.ops.quote_name(directive.household_flag)
        sql += f" AND EXISTS (SELECT 1 FROM {res} r WHERE r.household_id = {alias}.id AND r.{flag})"
    return sql, params


def count_households(directive: Directive, paths: list[str]) -> int:
    hh = connection.ops.quote_name(Household._meta.db_table)
    where, params = _household_where(directive, paths)
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {hh} h WHERE {where}", params)
        return cur.fetchone()[0]


def open_receipts(directive: Directive, paths: list[str], *, acting_user) -> int:
    base = directive.issued_at
    added = 0
    # One INSERT … SELECT per level: each level has its own deadline to sign.
    units = units_in_scope(directive, paths)
    for level in sorted(set(units.values_list("level", flat=True))):
        added += engine.open_for_units(
            kind=RECEIPT, subject_id=directive.pk, title=directive.title, units=units.filter(level=level),
            originator_unit=directive.issuer_unit, originator_user=acting_user,
            ack_due_at=directive.ack_due_for(level), due_at=directive.reach_due,
            reminder_interval=directive.reminder_minutes * 60, reminder_limit=directive.reminder_limit,
        )
    assert base == directive.issued_at
    return added


def insert_reaches(directive: Directive, paths: list[str], id_from: int | None = None,
                   id_to: int | None = None) -> int:
    """The raw INSERT … SELECT (also the benchmark's baseline). Idempotent through the unique constraint."""
    q = connection.ops.quote_name
    reach, hh = q(Reach._meta.db_table), q(Household._meta.db_table)
    where, params = _household_where(directive, paths)
    if id_from is not None:
        where += " AND h.id >= %s AND h.id < %s"
        params += [id_from, id_to]
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {reach} (directive_id, household_id, unit_id, path, status, method, reason) "
            f"SELECT %s, h.id, h.unit_id, h.path, 'pending', '', '' FROM {hh} h WHERE {where} "
            "ON CONFLICT (directive_id, household_id) DO NOTHING",
            [directive.pk, *params],
        )
        return cur.rowcount


def distribute(directive: Directive) -> None:
    """What happens to a new directive, in the issuing request for small scopes and in the worker otherwise:
    the receiving units are told first (``notify_issued``), then every household gets its row (``run_fanout``)."""
    notify_issued(directive)
    run_fanout(directive)


def run_fanout(directive: Directive, chunk: int | None = None) -> None:
    """Write the reach rows chunk by chunk; each chunk commits with the cursor (``fanout_cursor``)."""
    chunk = chunk or chunk_size()
    paths = target_paths(directive)
    hi = (Household.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    while True:
        directive.refresh_from_db(fields=["fanout_cursor", "fanout_done", "fanout_state"])
        start = directive.fanout_cursor
        if start >= hi or directive.fanout_state == FanoutState.DONE:
            break
        with transaction.atomic():
            n = insert_reaches(directive, paths, start, start + chunk)
            Directive.objects.filter(pk=directive.pk, fanout_cursor=start).update(
                fanout_cursor=start + chunk, fanout_done=directive.fanout_done + n, fanout_state=FanoutState.RUNNING)
    with transaction.atomic():
        done = Reach.objects.filter(directive=directive).count()
        Directive.objects.filter(pk=directive.pk).update(fanout_state=FanoutState.DONE, fanout_done=done,
                                                         fanout_total=done, locked_until=None)
