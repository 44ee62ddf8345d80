"""The loop engine's API: open loops for many units at once (set-based), move one loop through its states,
and the reminder / escalation round the worker runs. Modules call these from their own action functions."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.register.models import Staff, Unit

from .models import OPEN_STATES, Loop, LoopEvent, LoopState

S = LoopState
ALLOWED = {
    S.ISSUED: {S.ACKNOWLEDGED, S.IN_PROGRESS, S.REPORTED, S.RETURNED, S.CANCELLED},
    S.ACKNOWLEDGED: {S.IN_PROGRESS, S.REPORTED, S.RETURNED, S.CANCELLED},
    S.IN_PROGRESS: {S.REPORTED, S.RETURNED, S.CANCELLED},
    S.REPORTED: {S.CLOSED, S.IN_PROGRESS, S.CANCELLED},
    S.RETURNED: {S.ISSUED, S.CANCELLED},
    S.CLOSED: set(),
    S.CANCELLED: set(),
}
ACTIONS = {S.ACKNOWLEDGED: "acknowledged", S.IN_PROGRESS: "started", S.REPORTED: "reported",
           S.CLOSED: "closed", S.RETURNED: "returned", S.CANCELLED: "cancelled", S.ISSUED: "reissued"}


class LoopError(Refused):
    pass


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _dt(value: datetime | None):
    return connection.ops.adapt_datetimefield_value(value) if value else None


def open_for_units(*, kind: str, subject_id: int, title: str, units: QuerySet, originator_unit: Unit,
                   originator_user=None, ack_due_at: datetime | None = None, due_at: datetime | None = None,
                   reminder_interval: int = 1800, reminder_limit: int = 3) -> int:
    """One loop per unit of ``units`` for this subject, in one INSERT … SELECT. Idempotent: a unit that
    already has its loop is skipped, so a crashed fan-out can simply be run again. Returns rows added."""
    loop, unit, event = _q(Loop._meta.db_table), _q(Unit._meta.db_table), _q(LoopEvent._meta.db_table)
    sub_sql, sub_params = units.values("id").query.sql_with_params()
    now = timezone.now()
    first_reminder = ack_due_at or due_at
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {loop} (kind, subject_id, title, owner_unit_id, path, level, originator_unit_id, "
            "originator_user_id, state, ack_due_at, due_at, reminder_interval, reminder_limit, reminders_sent, "
            "next_reminder_at, data, locked_by, created_at) "
            f"SELECT %s, %s, %s, u.id, u.path, u.level, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, '', %s "
            f"FROM {unit} u WHERE u.id IN ({sub_sql}) "
            "ON CONFLICT (kind, subject_id, owner_unit_id) DO NOTHING",
            [kind, subject_id, title[:200], originator_unit.pk, getattr(originator_user, "pk", None), S.ISSUED,
             _dt(ack_due_at), _dt(due_at), reminder_interval, reminder_limit, _dt(first_reminder), "{}",
             _dt(now), *sub_params],
        )
        added = cur.rowcount
        cur.execute(
            f"INSERT INTO {event} (loop_id, at, actor_id, action, from_state, to_state, note) "
            f"SELECT l.id, %s, %s, 'issued', '', 'issued', '' FROM {loop} l "
            "WHERE l.kind = %s AND l.subject_id = %s AND NOT EXISTS "
            f"(SELECT 1 FROM {event} e WHERE e.loop_id = l.id AND e.action = 'issued')",
            [_dt(now), getattr(originator_user, "pk", None), kind, subject_id],
        )
    return added


def transition(loop: Loop, to_state: str, *, actor, note: str = "", data: dict | None = None) -> Loop:
    """Move one loop, with its event and audit row. Call inside the module's action (a transaction)."""
    loop = Loop.objects.select_for_update().get(pk=loop.pk)
    if to_state == loop.state:
        if not data or loop.state in (S.CLOSED, S.CANCELLED):
            return loop  # repeating an action (a double tap) changes nothing
        # A corrected report: new answers replace the old ones, and the history says so.
        loop.data = {**loop.data, **data}
        loop.save(update_fields=["data"])
        LoopEvent.objects.create(loop=loop, actor=actor, action="amended", from_state=loop.state,
                                 to_state=loop.state, note=note)
        audit.record(actor=actor, action="loop.amended", target=loop, changes={"note": note[:200]})
        return loop
    if to_state not in ALLOWED[loop.state]:
        raise LoopError(f"state: cannot go from {loop.state} to {to_state}")
    now = timezone.now()
    before = loop.state
    loop.state = to_state
    if to_state == S.ACKNOWLEDGED:
        loop.acknowledged_at, loop.acknowledged_by = now, actor
        # Signed in time: reminders now chase the report deadline, from zero.
        loop.reminders_sent, loop.next_reminder_at = 0, loop.due_at
    elif to_state == S.IN_PROGRESS:
        loop.started_at = loop.started_at or now
        loop.acknowledged_at = loop.acknowledged_at or now
        loop.acknowledged_by = loop.acknowledged_by or actor
        if before == S.ISSUED:
            loop.reminders_sent, loop.next_reminder_at = 0, loop.due_at
    elif to_state == S.REPORTED:
        loop.reported_at = now
        loop.acknowledged_at = loop.acknowledged_at or now
        loop.next_reminder_at = None
    elif to_state in (S.CLOSED, S.CANCELLED, S.RETURNED):
        loop.closed_at, loop.next_reminder_at = now, None
    if data:
        loop.data = {**loop.data, **data}
    loop.save()
    LoopEvent.objects.create(loop=loop, at=now, actor=actor, action=ACTIONS[to_state], from_state=before,
                             to_state=to_state, note=note)
    audit.record(actor=actor, action=f"loop.{ACTIONS[to_state]}", target=loop,
                 changes={"state": [before, to_state], "note": note[:200]})
    return loop


def bulk_transition(loops: QuerySet, to_state: str, *, actor, note: str = "") -> int:
    """Move every open loop of ``loops`` to a terminal state at once (cancel or close a whole subject)."""
    if to_state not in (S.CLOSED, S.CANCELLED):
        raise LoopError("bulk transitions only close or cancel")
    now = timezone.now()
    sources = [s for s, targets in ALLOWED.items() if to_state in targets]
    ids = list(loops.filter(state__in=sources).values_list("id", "state"))
    with transaction.atomic():
        Loop.objects.filter(id__in=[i for i, _ in ids]).update(state=to_state, closed_at=now, next_reminder_at=None)
        LoopEvent.objects.bulk_create(
            [LoopEvent(loop_id=i, at=now, actor=actor, action=ACTIONS[to_state], from_state=s, to_state=to_state,
                       note=note) for i, s in ids], batch_size=2000)
    return len(ids)


def recipients_of(unit_ids: set[int]) -> dict[int, list]:
    """Staff accounts answering for each unit (the people a reminder goes to)."""
    out: dict[int, list] = defaultdict(list)
    for staff in Staff.objects.filter(unit_id__in=unit_ids).select_related("user"):
        out[staff.unit_id].append(staff.user)
    return out


def _digest_key(kind: str, user_id: int, items: list[tuple[int, int]]) -> str:
    digest = hashlib.sha256(repr(sorted(items)).encode()).hexdigest()[:24]
    return f"{kind}:{user_id}:{digest}"


def remind_round(loops: list[Loop], now: datetime | None = None) -> int:
    """One reminder round over claimed loops: remind owners (催办) or tell the parent unit (督办).

    One digest per recipient per round; the message rows are written in the same transaction as the
    loops' counters, so a crash either does both or neither, and a loop is never reminded twice a round.
    """
    from bihuan.notify.outbox import notify_user

    now = now or timezone.now()
    parents = dict(Unit.objects.filter(id__in={lp.owner_unit_id for lp in loops}).values_list("id", "parent_id"))
    remind, escalate = [], []
    for lp in loops:
        if lp.state not in OPEN_STATES or not lp.next_reminder_at or lp.next_reminder_at > now:
            continue
        (remind if lp.reminders_sent < lp.reminder_limit else escalate).append(lp)
    people = recipients_of({lp.owner_unit_id for lp in remind} | {parents.get(lp.owner_unit_id) for lp in escalate})
    digests: dict[tuple[str, int], list[Loop]] = defaultdict(list)
    for lp in remind:
        for user in people.get(lp.owner_unit_id, []):
            digests[("remind", user.pk)].append(lp)
    for lp in escalate:
        for user in people.get(parents.get(lp.owner_unit_id), []):
            digests[("escalate", user.pk)].append(lp)
    users = {u.pk: u for us in people.values() for u in us}
    with transaction.atomic():
        for (kind, user_id), items in digests.items():
            lines = [f"- {lp.title} · {lp.owner_unit_id}" for lp in items[:50]]
            subject = (f"催办：{len(items)} 项待办已超时" if kind == "remind"
                       else f"督办：下级 {len(items)} 项催办无果")
            key = _digest_key(kind, user_id, [(lp.pk, lp.reminders_sent) for lp in items])
            notify_user(users[user_id], key=key, subject=subject, body="\n".join(lines))
        events = []
        for lp in remind:
            lp.reminders_sent += 1
            lp.next_reminder_at = now + timedelta(seconds=lp.reminder_interval)
            Loop.objects.filter(pk=lp.pk).update(reminders_sent=lp.reminders_sent,
                                                 next_reminder_at=lp.next_reminder_at, locked_until=None)
            events.append(LoopEvent(loop=lp, at=now, action="reminded", note=f"round {lp.reminders_sent}"))
        for lp in escalate:
            Loop.objects.filter(pk=lp.pk).update(escalated_at=now, next_reminder_at=None, locked_until=None)
            events.append(LoopEvent(loop=lp, at=now, action="escalated", note=f"to unit {parents.get(lp.owner_unit_id)}"))
        LoopEvent.objects.bulk_create(events)
    return len(remind) + len(escalate)
