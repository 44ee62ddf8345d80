"""Enqueue notifications. Call these INSIDE the transaction of the action that causes them (transactional
outbox): the rows commit or roll back with the action, and the ``notify.deliver`` worker task sends them.

Every message has an idempotency key; enqueuing a key that exists returns the existing row and changes
nothing. That holds when two processes race: the insert is ``INSERT … ON CONFLICT DO NOTHING`` (PostgreSQL;
it waits for a concurrent uncommitted insert of the same key and then does nothing) or ``INSERT OR IGNORE``
(SQLite, where writers are serialised anyway), followed by a read of the key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from bihuan.core import crypto
from bihuan.core.personal import mask_phone, normalize_phone

from . import conf
from .models import ROBOT_CHANNELS, Channel, Message, Robot

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


def enqueue_many(messages: Iterable[Message]) -> list[Message]:
    """Insert built messages whose keys are new; return the stored row for every key, in order."""
    messages = list(messages)
    if not messages:
        return []
    keys = [m.idempotency_key for m in messages]
    with transaction.atomic():
        Message.objects.bulk_create(messages, ignore_conflicts=True)
        stored = {m.idempotency_key: m for m in Message.objects.filter(idempotency_key__in=set(keys))}
    missing = set(keys) - stored.keys()
    if missing:  # only possible under REPEATABLE READ / SERIALIZABLE, which Bihuan does not use
        raise RuntimeError(f"outbox rows not visible after insert: {sorted(missing)[:3]}")
    return [stored[k] for k in keys]


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


def notify_user(user, *, key: str, subject: str, body: str) -> list[Message]:
    """Tell one person: always their inbox; email if they have an address and SMTP is configured; SMS if their
    staff record has a phone and the SMS gateway is configured. Keys are ``f"{key}:{channel}"``."""
    config = conf.load()
    messages = [build(Channel.INBOX, key=f"{key}:inbox", subject=subject, body=body, user=user)]
    if config.smtp is not None and user.email:
        try:
            messages.append(build(Channel.EMAIL, key=f"{key}:email", subject=subject, body=body, user=user))
        except ValueError:
            log.warning("user %s has an unusable email address; no email for %s", user.pk, key)
    if config.sms is not None:
        phone = staff_phone(user)
        if phone:
            try:
                messages.append(build(Channel.SMS, key=f"{key}:sms", subject=subject, body=body, user=user,
                                      address=phone))
            except ValueError:
                log.warning("user %s has an unusable phone; no SMS for %s", user.pk, key)
    return enqueue_many(messages)


def notify_unit_robots(unit, *, key: str, subject: str, body: str) -> list[Message]:
    """Post to every active group robot of ``unit``; keys are ``f"{key}:robot:{robot.pk}"``. Messages waiting
    for the same robot are sent together as one digest, at most 20 requests a minute."""
    robots = Robot.objects.filter(unit=unit, active=True, kind__in=ROBOT_CHANNELS)
    return enqueue_many(build(robot.kind, key=f"{key}:robot:{robot.pk}", subject=subject, body=body, robot=robot)
                        for robot in robots)


def notify_units(unit_ids, *, key: str, subject: str, body: str, event: str, urgent: bool = False) -> int:
    """Tell the people who answer for each unit of ``unit_ids`` about new work, at once: each active staff
    account of the unit through ``notify_user`` (keys ``f"{key}:u{user_id}"``), and the unit's group robots
    (keys ``f"{key}:robot:{robot_id}"``). ``event`` names the kind of work (``"directive.issued"``,
    ``"loop.opened:<kind>"`` …) for the recipients' and robots' settings; ``urgent`` work goes by SMS too.
    Call inside the action's transaction. Returns the number of messages enqueued."""
    from bihuan.register.models import Staff, Unit

    count = 0
    staff = Staff.objects.filter(unit_id__in=set(unit_ids), user__is_active=True).select_related("user")
    for member in staff:
        count += len(notify_user(member.user, key=f"{key}:u{member.user_id}", subject=subject, body=body))
    for unit in Unit.objects.filter(pk__in=set(unit_ids), robots__active=True).distinct():
        count += len(notify_unit_robots(unit, key=key, subject=subject, body=body))
    return count
