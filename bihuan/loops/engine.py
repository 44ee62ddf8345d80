"""The loop engine's API: open loops for many units at once (set-based), move one loop through its states,
and the reminder / escalation round the worker runs. Modules call these from their own action functions."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.register.models import Staff, Unit

from . import kinds
from .models import OPEN_STATES, Loop, LoopEvent, LoopState

S = LoopState
User = get_user_model()
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
    status = 409  # a step the loop's state does not allow now (signed twice, closed before the report)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _dt(value: datetime | None):
    return connection.ops.adapt_datetimefield_value(value) if value else None


def sql_time(expr: str = "%s") -> str:
    """A deadline column of a ``rows_sql`` SELECT (a parameter or NULL), typed for PostgreSQL, which would take
    an untyped one for text; SQLite keeps it as it is (a CAST there would turn the text into a number)."""
    return f"CAST({expr} AS TIMESTAMP WITH TIME ZONE)" if connection.vendor == "postgresql" else expr


@dataclass(frozen=True)
class Notice:
    """What the owners of a newly opened loop are told (default: the kind's label and the loop's title)."""

    subject: str
    body: str = ""


def _now_params(kind: str, ack_due_at, due_at, now):
    """A kind's default deadlines, unless the caller gives its own."""
    spec = kinds.get(kind)
    ack = ack_due_at or (now + spec.ack_within if spec.ack_within else None)
    due = due_at or (now + spec.due_within if spec.due_within else None)
    return spec, ack, due


def open_many(kind: str, rows_sql: str, params: list, *, originator_user=None, ack_due_at: datetime | None = None,
              due_at: datetime | None = None, reminder_interval: int | None = None,
              reminder_limit: int | None = None, notice: Notice | None = None) -> int:
    """Open one loop per row of ``rows_sql`` in one ``INSERT … SELECT`` — the set-based way to open thousands.

    ``rows_sql`` is a SELECT with these named columns: ``subject_id, title, owner_unit_id, owner_path,
    owner_level, originator_unit_id, ack_due_at, due_at`` (deadlines written with ``sql_time("%s")`` or
    ``sql_time("NULL")``). Rows whose
    (kind, subject, owner unit) already has a loop are skipped, so a crashed run can simply be run again.
    Deadlines left NULL by the SELECT take ``ack_due_at`` / ``due_at`` or the kind's defaults. Every new loop
    gets its "issued" event, and its owners are told at once (``notice`` or the kind's default text).
    Returns the number of loops added."""
    loop, event = _q(Loop._meta.db_table), _q(LoopEvent._meta.db_table)
    now = timezone.now()
    spec, ack, due = _now_params(kind, ack_due_at, due_at, now)
    interval = spec.reminder_interval if reminder_interval is None else reminder_interval
    limit = spec.reminder_limit if reminder_limit is None else reminder_limit
    user_id = getattr(originator_user, "pk", None)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {loop} (kind, subject_id, title, owner_unit_id, path, level, originator_unit_id, "
            "originator_user_id, state, ack_due_at, due_at, reminder_interval, reminder_limit, reminders_sent, "
            "next_reminder_at, data, locked_by, created_at) "
            "SELECT %s, r.subject_id, r.title, r.owner_unit_id, r.owner_path, r.owner_level, r.originator_unit_id, "
            "%s, %s, COALESCE(r.ack_due_at, %s), COALESCE(r.due_at, %s), %s, %s, 0, "
            "COALESCE(r.ack_due_at, %s, r.due_at, %s), %s, '', %s "
            f"FROM ({rows_sql}) r WHERE 1 = 1 "  # WHERE: SQLite's parser needs it before ON CONFLICT
            "ON CONFLICT (kind, subject_id, owner_unit_id) DO NOTHING",
            [kind, user_id, S.ISSUED, _dt(ack), _dt(due), interval, limit, _dt(ack), _dt(due), "{}", _dt(now),
             *params],
        )
        added = cur.rowcount
        if added:
            # The loops this call added are exactly those of this kind created at this instant.
            cur.execute(
                f"INSERT INTO {event} (loop_id, at, actor_id, action, from_state, to_state, note) "
                f"SELECT l.id, %s, %s, 'issued', '', 'issued', '' FROM {loop} l "
                "WHERE l.kind = %s AND l.created_at = %s",
                [_dt(now), user_id, kind, _dt(now)],
            )
            if spec.notify_on_open:
                _tell_owners(Loop.objects.filter(kind=kind, created_at=now), spec, notice)
    return added


def open_for_units(*, kind: str, subject_id: int, title: str, units: QuerySet, originator_unit: Unit,
                   originator_user=None, ack_due_at: datetime | None = None, due_at: datetime | None = None,
                   reminder_interval: int | None = None, reminder_limit: int | None = None,
                   notice: Notice | None = None) -> int:
    """One loop per unit of ``units`` for this subject (``open_many`` over the units). Idempotent."""
    unit = _q(Unit._meta.db_table)
    sub_sql, sub_params = units.values("id").query.sql_with_params()
    rows = (f"SELECT CAST(%s AS BIGINT) AS subject_id, CAST(%s AS VARCHAR(200)) AS title, u.id AS owner_unit_id, "
            f"u.path AS owner_path, u.level AS owner_level, CAST(%s AS BIGINT) AS originator_unit_id, "
            f"{sql_time('NULL')} AS ack_due_at, {sql_time('NULL')} AS due_at FROM {unit} u WHERE u.id IN ({sub_sql})")
    return open_many(kind, rows, [subject_id, title[:200], originator_unit.pk, *sub_params],
                     originator_user=originator_user, ack_due_at=ack_due_at, due_at=due_at,
                     reminder_interval=reminder_interval, reminder_limit=reminder_limit, notice=notice)


def open_one(*, kind: str, subject_id: int, title: str, owner_unit: Unit, originator_unit: Unit,
             originator_user=None, owner_user=None, ack_due_at: datetime | None = None,
             due_at: datetime | None = None, data: dict | None = None, notice: Notice | None = None) -> Loop:
    """The loop of this kind and subject owned by ``owner_unit``: opened now (owners told at once), or the one
    that exists (idempotent). ``owner_user`` hands it to one person of the unit; ``data`` is merged in."""
    with transaction.atomic():
        open_for_units(kind=kind, subject_id=subject_id, title=title, units=Unit.objects.filter(pk=owner_unit.pk),
                       originator_unit=originator_unit, originator_user=originator_user, ack_due_at=ack_due_at,
                       due_at=due_at, notice=notice)
        loop = Loop.objects.select_for_update().get(kind=kind, subject_id=subject_id, owner_unit=owner_unit)
        changed = []
        if data and {**loop.data, **data} != loop.data:
            loop.data = {**loop.data, **data}
            changed.append("data")
        if owner_user is not None and loop.owner_user_id != owner_user.pk:
            loop.owner_user = owner_user
            changed.append("owner_user")
        if changed:
            loop.save(update_fields=changed)
    return loop


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


def reassign(loop: Loop, unit: Unit, *, actor, action: str = "reassigned", note: str = "",
             due_at: datetime | None = None) -> Loop:
    """Hand a loop to another unit (dispatch, accepted transfer): the same loop, so its history stays in one
    place; a new owner, reminders from zero, optionally a new deadline. The new owners are told at once."""
    with transaction.atomic():
        loop = Loop.objects.select_for_update().get(pk=loop.pk)
        before = loop.owner_unit_id
        loop.owner_unit, loop.path, loop.level = unit, unit.path, unit.level
        loop.owner_user = None
        if due_at is not None:
            loop.due_at = due_at
        loop.reminders_sent, loop.escalated_at = 0, None
        loop.next_reminder_at = loop.due_at if loop.is_open else None
        loop.save()
        _event(loop, actor, action, note)
        audit.record(actor=actor, action=f"loop.{action}", target=loop, changes={"owner_unit": [before, unit.pk]})
        spec = kinds.get(loop.kind)
        if loop.is_open and spec.notify_on_open:
            _tell_owners(Loop.objects.filter(pk=loop.pk), spec, None, key_suffix=f"to{unit.pk}")
    return loop


def assign_person(loop: Loop, user, *, actor, note: str = "") -> Loop:
    """Hand a loop to one person of its unit (a service request to a volunteer); they are told at once.
    An unsigned loop is signed for by the assignment."""
    with transaction.atomic():
        loop = Loop.objects.select_for_update().get(pk=loop.pk)
        if loop.owner_user_id == user.pk:
            return loop
        if loop.state == S.ISSUED:
            loop = transition(loop, S.ACKNOWLEDGED, actor=actor, note=note)
        else:
            _event(loop, actor, "assigned", note)
        Loop.objects.filter(pk=loop.pk).update(owner_user=user)
        loop.owner_user = user
        audit.record(actor=actor, action="loop.assigned", target=loop, changes={"owner_user": user.pk})
    return loop


def reopen(loop: Loop, *, actor, note: str, due_at: datetime | None = None) -> Loop:
    """A reported loop back to work (an outcome withdrawn, a transfer returned): in progress again, reminded
    from its deadline (or a new one) on."""
    with transaction.atomic():
        loop = transition(loop, S.IN_PROGRESS, actor=actor, note=note)
        loop.due_at = due_at or loop.due_at
        loop.reminders_sent, loop.escalated_at = 0, None
        loop.next_reminder_at = loop.due_at
        loop.save(update_fields=["due_at", "reminders_sent", "escalated_at", "next_reminder_at"])
    return loop


def note(loop: Loop | int, *, actor, action: str, note: str = "") -> None:
    """A line in a loop's history that changes no state (transferred, a transfer returned, a call made)."""
    loop_id = loop if isinstance(loop, int) else loop.pk
    state = Loop.objects.filter(pk=loop_id).values_list("state", flat=True).first()
    if state is None:
        raise LoopError(f"loop: {loop_id} does not exist")
    LoopEvent.objects.create(loop_id=loop_id, actor=actor, action=action[:20], from_state=state, to_state=state,
                             note=note[:2000])


def update_data(loop: Loop, data: dict) -> Loop:
    """Merge module facts into a loop's ``data`` (the case an alert is about); no event, nothing to audit."""
    merged = {**loop.data, **data}
    if merged != loop.data:
        Loop.objects.filter(pk=loop.pk).update(data=merged)
        loop.data = merged
    return loop


def hand_back_user(user, *, actor, note: str = "") -> int:
    """A person leaves (deactivated, moved): every open loop handed to them goes back to its unit, so nothing is
    orphaned; the unit's people are told. Returns how many loops went back."""
    with transaction.atomic():
        loops = list(Loop.objects.select_for_update().filter(owner_user=user, state__in=OPEN_STATES))
        if not loops:
            return 0
        Loop.objects.filter(pk__in=[lp.pk for lp in loops]).update(owner_user=None)
        now = timezone.now()
        LoopEvent.objects.bulk_create(LoopEvent(loop=lp, at=now, actor=actor, action="handed_back",
                                                from_state=lp.state, to_state=lp.state,
                                                note=note or f"{user.get_username()} 不再负责，交回单位")
                                      for lp in loops)
        audit.record(actor=actor, action="loop.handed_back", target=user, target_type="auth.user",
                     changes={"loops": [lp.pk for lp in loops]})
        for spec_name in {lp.kind for lp in loops}:
            _tell_owners(Loop.objects.filter(pk__in=[lp.pk for lp in loops if lp.kind == spec_name]),
                         kinds.get(spec_name), None, key_suffix=f"back{user.pk}")
    return len(loops)


def _event(loop: Loop, actor, action: str, note: str) -> None:
    LoopEvent.objects.create(loop=loop, actor=actor, action=action, from_state=loop.state, to_state=loop.state,
                             note=note[:2000])


def _tell_owners(loops: QuerySet, spec: kinds.LoopKind, notice: Notice | None, key_suffix: str = "") -> int:
    """Tell the owners of newly opened (or newly handed) loops at once: one message per owner unit (or owner
    person) listing its loops, through the outbox in the caller's transaction. Idempotent per loop set."""
    from bihuan.notify.outbox import notify_units, notify_user

    if notice is None:
        rows = list(loops.values_list("pk", "title", "owner_unit_id", "owner_user_id", "due_at"))
    else:  # the notice's text is fixed: neither titles nor deadlines are read (tens of thousands for a list)
        rows = [(pk, None, unit_id, user_id, None)
                for pk, unit_id, user_id in loops.values_list("pk", "owner_unit_id", "owner_user_id")]
    if not rows:
        return 0
    label = spec.label or spec.name
    by_unit: dict[int, list] = defaultdict(list)
    to_person = []
    for row in rows:
        (to_person if row[3] else by_unit[row[2]]).append(row)
    # Units whose lists read alike get one call (a directive to thousands of units is one message text).
    texts: dict[tuple[str, str], list[int]] = defaultdict(list)
    for unit_id, items in by_unit.items():
        texts[_notice_text(label, items, notice)].append(unit_id)
    sent = 0
    for (subject, body), unit_ids in texts.items():
        ids = sorted(pk for uid in unit_ids for pk, *_ in by_unit[uid])
        key = f"open:{spec.name}:{_digest(ids)}{key_suffix}"
        sent += notify_units(unit_ids, key=key, subject=subject, body=body, event=spec.open_event, urgent=spec.urgent)
    users = {u.pk: u for u in User.objects.filter(pk__in={row[3] for row in to_person})}
    for row in to_person:
        subject, body = _notice_text(label, [row], notice)
        sent += len(notify_user(users[row[3]], key=f"open:{spec.name}:{row[0]}:p{row[3]}{key_suffix}",
                                subject=subject, body=body))
    return sent


def _notice_text(label: str, items: list, notice: Notice | None) -> tuple[str, str]:
    if notice is not None:
        return notice.subject, notice.body
    if len(items) == 1:
        _pk, title, _unit, _user, due = items[0]
        when = f"，请于 {timezone.localtime(due):%m-%d %H:%M} 前办结" if due else ""
        return f"新{label}：{title}", f"{title}{when}。"
    lines = [f"- {title}" for _pk, title, *_ in items[:30]]
    more = [f"…… 共 {len(items)} 项"] if len(items) > 30 else []
    return f"新{label} {len(items)} 项", "\n".join(lines + more)


def _digest(ids: list[int]) -> str:
    return hashlib.sha256(repr(ids).encode()).hexdigest()[:20]


def recipients_of(unit_ids: set[int]) -> dict[int, list]:
    """Staff accounts answering for each unit (the people a reminder goes to)."""
    out: dict[int, list] = defaultdict(list)
    for staff in Staff.objects.filter(unit_id__in=unit_ids, user__is_active=True).select_related("user"):
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
    from bihuan.notify.digest import loop_lines, unit_names
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
    names = unit_names([lp.owner_unit_id for lp in remind + escalate] + [parents.get(lp.owner_unit_id) for lp in escalate])
    with transaction.atomic():
        for (kind, user_id), items in digests.items():
            lines = loop_lines(items, names=names)
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
            parent = parents.get(lp.owner_unit_id)
            events.append(LoopEvent(loop=lp, at=now, action="escalated", note=f"督办：{names.get(parent) or parent}"))
        LoopEvent.objects.bulk_create(events)
    return len(remind) + len(escalate)
