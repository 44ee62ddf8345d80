"""Enqueue notifications. Call these INSIDE the transaction of the action that causes them (transactional
outbox): the rows commit or roll back with the action, and the ``notify.deliver`` worker task sends them.

Every message has an idempotency key; enqueuing a key that exists returns the existing row and changes
nothing. That holds when two processes race: the insert is ``INSERT … ON CONFLICT DO NOTHING`` (PostgreSQL;
it waits for a concurrent uncommitted insert of the same key and then does nothing) or ``INSERT OR IGNORE``
(SQLite, where writers are serialised anyway), followed by a read of the key.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from bihuan.core import crypto
from bihuan.core.personal import mask_phone, normalize_phone

from . import conf
from .models import ROBOT_CHANNELS, Channel, Message, Robot, quiet_until

log = logging.getLogger("bihuan.notify")

KEY_MAX = Message._meta.get_field("idempotency_key").max_length
SUBJECT_MAX = Message._meta.get_field("subject").max_length


def build(channel: str, *, key: str, subject: str, body: str, user=None, address: str = "",
          robot: Robot | None = None) -> Message:
    """An unsaved message, validated. Raises ValueError for a message that could never be delivered."""
    channel = Channel(channel)
    if not key or len(key) > KEY_MAX:
        raise ValueError(f"idempotency key must be 1..{KEY_MAX} characters")
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    now = timezone.now()
    message = Message(channel=channel, idempotency_key=key, subject=subject, body=body, user=user,
                      created_at=now, next_attempt_at=now)
    if channel == Channel.INBOX:
        if user is None:
            raise ValueError("an inbox message needs a user")
    elif channel == Channel.EMAIL:
        message.address = address or (user.email if user is not None else "")
        if "@" not in message.address:
            raise ValueError("an email message needs an email address")
    elif channel == Channel.SMS:
        phone = normalize_phone(address or (staff_phone(user) if user is not None else ""))
        message.address = mask_phone(phone)
        message.address_sealed = crypto.seal(phone)
        message.address_hash = crypto.lookup_hash("phone", phone)
    else:
        if robot is None and address.isdigit():
            robot = Robot.objects.filter(pk=int(address)).first()
        if robot is None or robot.kind != channel:
            raise ValueError(f"a {channel} message needs a {channel} robot")
        message.robot = robot
        message.address = str(robot.pk)
    return message


CHUNK = 500  # messages per INSERT (and keys per read-back): well inside every database's parameter limit


def _insert_sql() -> tuple[str, list]:
    """One parameterised INSERT of a message that does nothing when its key exists, and the fields it sets."""
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    q = connection.ops.quote_name
    columns = ", ".join(q(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    table = q(Message._meta.db_table)
    if connection.vendor == "sqlite":
        return f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})", fields
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING", fields


def _preparers(fields) -> list:
    """Per column, how a Python value becomes a database parameter: text, numbers and ids as they are (the
    driver takes them), date-times adapted for the database, anything else through the field itself."""
    plain = {"CharField", "TextField", "PositiveSmallIntegerField", "IntegerField", "BigIntegerField",
             "ForeignKey", "BooleanField"}
    adapt_dt = connection.ops.adapt_datetimefield_value
    out = []
    for f in fields:
        kind = f.get_internal_type()
        if kind in plain:
            out.append(None)
        elif kind == "DateTimeField":
            out.append(adapt_dt)
        elif kind == "BinaryField":
            out.append(bytes)
        else:
            out.append(lambda value, f=f: f.get_db_prep_save(value, connection))
    return out


Row = dict  # a message as {field attname: value}; fields left out take their defaults


def _as_row(message: Message | Row) -> Row:
    if isinstance(message, dict):
        return message
    return {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields if not f.primary_key}


def _insert(messages: list[Message | Row]) -> int:
    """Insert rows whose keys are new with one ``executemany`` (one round of statements, not one query per
    batch of 55 rows as ``bulk_create`` does on SQLite). A key that exists is left as it is. Rows may be plain
    dicts: building thousands of model instances costs more than inserting them."""
    sql, fields = _insert_sql()
    defaults = {f.attname: f.get_default() for f in fields}
    preparers = list(zip([f.attname for f in fields], _preparers(fields), strict=True))
    rows = []
    for m in messages:
        row = defaults | _as_row(m)
        rows.append([row[name] if prep is None or row[name] is None else prep(row[name]) for name, prep in preparers])
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    return len(rows)


def enqueue_many(messages: Iterable[Message | Row]) -> list[Message]:
    """Insert built messages whose keys are new; return the stored row for every key, in order. Large lists go
    in chunks of ``CHUNK``: one INSERT and one read-back each."""
    messages = list(messages)
    if not messages:
        return []
    out: list[Message] = []
    # Within the caller's transaction no savepoint is needed: an error aborts the caller's action anyway.
    with transaction.atomic(savepoint=False):
        for start in range(0, len(messages), CHUNK):
            chunk = messages[start:start + CHUNK]
            keys = [_as_row(m)["idempotency_key"] for m in chunk]
            _insert(chunk)
            stored = {m.idempotency_key: m for m in Message.objects.filter(idempotency_key__in=set(keys))}
            missing = set(keys) - stored.keys()
            if missing:  # only possible under REPEATABLE READ / SERIALIZABLE, which Bihuan does not use
                raise RuntimeError(f"outbox rows not visible after insert: {sorted(missing)[:3]}")
            out.extend(stored[k] for k in keys)
    return out


def enqueue(channel: str, *, key: str, subject: str, body: str, user=None, address: str = "",
            robot: Robot | None = None) -> Message:
    """Enqueue one message; the same ``key`` never creates a second row.

    ``address`` is the email address (default: the user's), the phone for SMS (default: the user's staff
    phone; stored sealed) or the robot id for wecom / dingtalk (or pass ``robot``).
    """
    return enqueue_many([build(channel, key=key, subject=subject, body=body, user=user, address=address,
                               robot=robot)])[0]


def staff_phone(user) -> str:
    from bihuan.register.models import Staff

    sealed = Staff.objects.filter(user_id=user.pk).values_list("phone_sealed", flat=True).first()
    return crypto.unseal(sealed) if sealed else ""


# ---- recipients: who, on which channels, when ------------------------------------------------------------

@dataclass(frozen=True)
class Recipient:
    """One person as the outbox needs them, read with their staff phone and preferences in one query."""

    user_id: int
    unit_id: int | None
    email: str
    phone_sealed: bytes
    phone_hash: str
    phone_masked: str
    wants_email: bool
    wants_sms: bool
    quiet_start: dt.time | None
    quiet_end: dt.time | None


RECIPIENT_COLUMNS = ("pk", "staff__unit_id", "email", "staff__phone_sealed", "staff__phone_hash",
                     "staff__phone_masked", "notify_preference__email", "notify_preference__sms",
                     "notify_preference__quiet_start", "notify_preference__quiet_end")


def recipients(q: Q) -> list[Recipient]:
    """Active accounts matching ``q`` (on the user model) with staff phone and preferences: one query."""
    rows = get_user_model().objects.filter(q, is_active=True).order_by("pk").values_list(*RECIPIENT_COLUMNS)
    return [Recipient(user_id=pk, unit_id=unit_id, email=email or "", phone_sealed=bytes(sealed or b""),
                      phone_hash=phone_hash or "", phone_masked=masked or "",
                      wants_email=True if email_on is None else email_on, wants_sms=True if sms_on is None else sms_on,
                      quiet_start=q_start, quiet_end=q_end)
            for pk, unit_id, email, sealed, phone_hash, masked, email_on, sms_on, q_start, q_end in rows]


def direct_messages(person: Recipient, *, key: str, subject: str, body: str, urgent: bool, config: conf.Config,
                    now) -> list[Row]:
    """The unsaved messages for one person, keys ``f"{key}:{channel}"``: inbox always; email if SMTP is
    configured, they have an address and want email; SMS if the gateway is configured, they have a phone and
    want SMS — or the work is urgent. Email and SMS wait for the end of their quiet hours unless urgent."""
    subject = _fit_subject(subject)
    out = [Row(channel=Channel.INBOX.value, idempotency_key=f"{key}:inbox", subject=subject, body=body,
               user_id=person.user_id, created_at=now, next_attempt_at=now)]
    later = now
    if not urgent and person.quiet_start is not None and person.quiet_end is not None \
            and person.quiet_start != person.quiet_end:
        later = quiet_until(person.quiet_start, person.quiet_end, now) or now
    if config.smtp is not None and person.wants_email and "@" in person.email:
        out.append(Row(channel=Channel.EMAIL.value, idempotency_key=f"{key}:email", subject=subject, body=body,
                       user_id=person.user_id, address=person.email[:254], created_at=now, next_attempt_at=later))
    if config.sms is not None and person.phone_sealed and (person.wants_sms or urgent):
        # The staff record's sealed phone, hash and mask are exactly what the message stores: copied, not
        # decrypted and sealed again.
        out.append(Row(channel=Channel.SMS.value, idempotency_key=f"{key}:sms", subject=subject, body=body,
                       user_id=person.user_id, address=person.phone_masked, address_sealed=person.phone_sealed,
                       address_hash=person.phone_hash, created_at=now, next_attempt_at=later))
    return out


def _fit_subject(subject: str) -> str:
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1] + "…"


def _check_key(key: str, longest_suffix: int) -> None:
    if not key or len(key) + longest_suffix > KEY_MAX:
        raise ValueError(f"idempotency key must be 1..{KEY_MAX - longest_suffix} characters")


def notify_user(user, *, key: str, subject: str, body: str, urgent: bool = False) -> list[Message]:
    """Tell one person: always their inbox; email if they have an address, want email and SMTP is configured;
    SMS if their staff record has a phone, they want SMS (or it is ``urgent``) and the gateway is configured.
    Non-urgent email and SMS wait for the end of the person's quiet hours. Keys are ``f"{key}:{channel}"``.
    An inactive account gets nothing."""
    _check_key(key, len(":inbox"))
    people = recipients(Q(pk=user.pk))
    if not people:
        return []
    return enqueue_many(direct_messages(people[0], key=key, subject=subject, body=body, urgent=urgent,
                                        config=conf.load(), now=timezone.now()))


def notify_unit_robots(unit, *, key: str, subject: str, body: str, event: str = "") -> list[Message]:
    """Post to every active group robot of ``unit`` (whose event filter passes ``event``, if given); keys are
    ``f"{key}:robot:{robot.pk}"``. Messages waiting for the same robot are sent together as one digest, at
    most 20 requests a minute."""
    robots = Robot.objects.filter(unit=unit, active=True, kind__in=ROBOT_CHANNELS)
    return enqueue_many(build(robot.kind, key=f"{key}:robot:{robot.pk}", subject=subject, body=body, robot=robot)
                        for robot in robots if not event or robot.wants(event))


def _robot_message(robot: Robot, *, key: str, subject: str, body: str, now) -> Row:
    return Row(channel=robot.kind, idempotency_key=f"{key}:robot:{robot.pk}", subject=subject, body=body,
               robot_id=robot.pk, address=str(robot.pk), created_at=now, next_attempt_at=now)


def _id_chunks(unit_ids) -> Iterator:
    """``unit_ids`` as filter values: a queryset stays one subquery; a collection goes in chunks."""
    if isinstance(unit_ids, QuerySet):
        yield unit_ids
        return
    ids = sorted(set(unit_ids))
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def notify_units(unit_ids, *, key: str, subject: str, body: str, event: str, urgent: bool = False) -> int:
    """Tell the people who answer for each unit of ``unit_ids`` about new work, at once: each active staff
    account of the unit (keys ``f"{key}:u{user_id}:{channel}"``: inbox; email and SMS by the person's
    preferences and quiet hours) and the unit's active group robots whose event filter passes ``event`` (keys
    ``f"{key}:robot:{robot_id}"``). ``event`` names the kind of work (``"directive.issued"``,
    ``"loop.opened:<kind>"`` …); ``urgent`` work goes by SMS to everyone with a phone (when the gateway is
    configured) and ignores quiet hours.

    Set-based: for each chunk of 500 units, one query reads the staff with their phones and preferences, one
    the robots, and the messages go in with one INSERT and one read-back per 500; a fan-out to thousands of
    units is a few dozen statements. ``unit_ids`` may be a collection of ids or a queryset of ids. Call inside
    the action's transaction (rows commit with it). Returns the number of messages enqueued (keys that existed
    already count too: enqueuing again changes nothing)."""
    _check_key(key, len(":u:inbox") + 20)
    config = conf.load()
    now = timezone.now()
    subject = _fit_subject(subject)
    count = 0
    with transaction.atomic(savepoint=False):
        for ids in _id_chunks(unit_ids):
            messages: list[Row] = []
            for person in recipients(Q(staff__unit_id__in=ids)):
                messages.extend(direct_messages(person, key=f"{key}:u{person.user_id}", subject=subject,
                                                body=body, urgent=urgent, config=config, now=now))
            for robot in Robot.objects.filter(unit_id__in=ids, active=True, kind__in=ROBOT_CHANNELS).order_by("pk"):
                if robot.wants(event):
                    messages.append(_robot_message(robot, key=key, subject=subject, body=body, now=now))
            for start in range(0, len(messages), CHUNK):  # no read-back: callers want the count, not the rows
                count += _insert(messages[start:start + CHUNK])
    return count
