"""The ``notify.deliver`` worker task: send due outbox messages, retry failures with backoff.

Direct messages (inbox, email, SMS) are claimed row by row with ``core.worker.claim``. Robot messages are
handled per robot: a worker claims the *robot* (a lease on the Robot row), so exactly one worker at a time
talks to a given webhook; it counts the requests that robot received in the last 60 s (``RobotRequest``),
joins everything waiting for it into as few digests as fit the size limit, and sends no more than the
remaining budget of 20 a minute. What does not fit stays pending, with no attempt counted.

A lease is renewed (a conditional UPDATE) just before each send, and a message is marked only while its
lease is held, so a worker that stalls past its lease skips the message instead of sending it a second time.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from bihuan.core.worker import claim, task

from . import conf
from .channels import EmailSender, SendError, send_dingtalk, send_sms, send_wecom
from .conf import Config
from .models import (
    DIRECT_CHANNELS,
    DUE_STATES,
    ROBOT_CHANNELS,
    Channel,
    InboxItem,
    Message,
    Robot,
    RobotRequest,
    State,
)

log = logging.getLogger("bihuan.notify")

BATCH = 50  # direct messages claimed at a time
MAX_PER_TICK = 1000  # then give the worker's other tasks a turn
ROBOTS_PER_TICK = 50
RATE_WINDOW = timedelta(seconds=60)


def lease_seconds(config: Config) -> int:
    """Longer than any single send can take (every socket operation is bounded by the timeout)."""
    return max(60, config.timeout * 4)


def due_q(now) -> Q:
    return Q(state__in=DUE_STATES, next_attempt_at__lte=now)


@task("notify.deliver", last=True)
def deliver(owner: str) -> int:
    """One round: direct messages, then robots. Returns how many messages were sent or failed."""
    config = conf.load()
    return deliver_direct(owner, config) + deliver_robots(owner, config)


# ---- marking -------------------------------------------------------------------------------------------

def _renew(model, pk: int, owner: str, seconds: int, **still) -> bool:
    """Extend our lease on a row; False if we no longer hold it (it ran out and someone else took it)."""
    now = timezone.now()
    return model.objects.filter(pk=pk, locked_by=owner, locked_until__gt=now, **still).update(
        locked_until=now + timedelta(seconds=seconds)) == 1


def _mark_sent(rows) -> int:
    return rows.update(state=State.SENT, sent_at=timezone.now(), attempts=F("attempts") + 1, last_error="",
                       locked_by="", locked_until=None)


def _mark_failed(message: Message, rows, config: Config, error: str, *, permanent: bool = False) -> None:
    """Count a failed attempt: retry after base · 2^(attempts-1) seconds (capped), or give up."""
    attempts = message.attempts + 1
    dead = permanent or attempts >= config.max_attempts
    update = {"state": State.DEAD if dead else State.FAILED, "attempts": attempts, "last_error": error[:2000],
              "locked_by": "", "locked_until": None}
    if not dead:
        update["next_attempt_at"] = timezone.now() + timedelta(seconds=config.backoff(attempts))
    rows.update(**update)
    log.log(logging.ERROR if dead else logging.WARNING, "notify %s %s attempt %d: %s",
            message.channel, message.pk, attempts, error)


# ---- inbox, email, SMS ---------------------------------------------------------------------------------

def deliver_direct(owner: str, config: Config, *, batch: int = BATCH, max_messages: int = MAX_PER_TICK) -> int:
    lease = lease_seconds(config)
    email = EmailSender(config)
    handled = 0
    try:
        while handled < max_messages:
            due = (Message.objects.filter(due_q(timezone.now()), channel__in=DIRECT_CHANNELS)
                   .order_by("next_attempt_at", "pk"))
            if not due.exists():
                break  # a read; claim() would open a write transaction, which on SQLite blocks other writers
            messages = claim(due, owner=owner, lease_seconds=lease, limit=min(batch, max_messages - handled))
            if not messages:
                break
            for message in messages:
                if not _renew(Message, message.pk, owner, lease, state__in=DUE_STATES):
                    continue  # our lease ran out and another worker has the message: it is theirs now
                handled += 1
                _deliver_one(message, owner, config, email)
    finally:
        email.close()
    return handled


def _deliver_one(message: Message, owner: str, config: Config, email: EmailSender) -> None:
    mine = Message.objects.filter(pk=message.pk, locked_by=owner)
    try:
        if message.channel == Channel.INBOX:
            if message.user_id is None:
                raise SendError("the recipient's account was deleted", permanent=True)
            # The inbox item and the "sent" mark commit together: in-app delivery is exactly once.
            with transaction.atomic():
                InboxItem.objects.get_or_create(message=message, defaults={"user_id": message.user_id,
                                                                             "created_at": timezone.now()})
                _mark_sent(mine)
            return
        if message.channel == Channel.EMAIL:
            email.send(key=message.idempotency_key, to=message.address, subject=message.subject,
                       body=message.body)
        elif message.channel == Channel.SMS:
            text = f"【{message.subject}】{message.body}" if message.body else message.subject
            send_sms(config, key=message.idempotency_key, phone=message.phone(), text=text)
        else:
            raise SendError(f"channel {message.channel} is not a direct channel", permanent=True)
    except SendError as exc:
        _mark_failed(message, mine, config, str(exc), permanent=exc.permanent)
        return
    except Exception as exc:  # noqa: BLE001 - a bug or an odd answer must not stop the batch; it is retried
        log.exception("notify %s %s: unexpected error", message.channel, message.pk)
        _mark_failed(message, mine, config, f"{type(exc).__name__}: {exc}")
        return
    _mark_sent(mine)


# ---- group robots --------------------------------------------------------------------------------------

def deliver_robots(owner: str, config: Config, *, max_robots: int = ROBOTS_PER_TICK) -> int:
    now = timezone.now()
    robot_due = Message.objects.filter(due_q(now), channel__in=ROBOT_CHANNELS)
    if not robot_due.exists():
        return 0
    # A message whose robot was deleted or switched off can never be sent.
    orphans = robot_due.filter(Q(robot__isnull=True) | Q(robot__active=False))
    if orphans.exists():
        orphans.update(state=State.DEAD, last_error="the robot was deleted or switched off", locked_by="",
                       locked_until=None)
    waiting = Robot.objects.filter(pk__in=robot_due.values("robot_id"), active=True).order_by("pk")
    robots = claim(waiting, owner=owner, lease_seconds=lease_seconds(config), limit=max_robots)
    if not robots:
        return 0
    RobotRequest.objects.filter(at__lt=now - timedelta(hours=1)).delete()  # only the last minute counts
    handled = 0
    for robot in robots:
        try:
            handled += _deliver_robot(robot, owner, config)
        finally:
            Robot.objects.filter(pk=robot.pk, locked_by=owner).update(locked_by="", locked_until=None)
    return handled


def _deliver_robot(robot: Robot, owner: str, config: Config) -> int:
    now = timezone.now()
    budget = config.robot_per_minute - RobotRequest.objects.filter(robot=robot, at__gt=now - RATE_WINDOW).count()
    if budget <= 0:
        return 0  # everything stays pending until the window has room; no attempt is counted
    waiting = list(Message.objects.filter(due_q(now), robot=robot).order_by("pk")[:2000])
    chunks = digest_chunks(robot.kind, waiting, config.robot_max_bytes)[:budget]
    url, secret = robot.webhook_url(), robot.secret()
    handled = 0
    for messages, content in chunks:
        if not _renew(Robot, robot.pk, owner, lease_seconds(config)):
            break
        ids = [m.pk for m in messages]
        try:
            if robot.kind == Channel.WECOM:
                send_wecom(url, content, timeout=config.timeout)
            else:
                send_dingtalk(url, secret, content, timeout=config.timeout)
        except Exception as exc:  # noqa: BLE001 - SendError or a bug: either way count the attempt and stop
            error = str(exc) if isinstance(exc, SendError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, SendError):
                log.exception("notify robot %s: unexpected error", robot.pk)
            with transaction.atomic():
                RobotRequest.objects.create(robot=robot, at=timezone.now(), messages=len(messages), ok=False)
                for message in messages:
                    _mark_failed(message, Message.objects.filter(pk=message.pk, state__in=DUE_STATES), config,
                                 error, permanent=getattr(exc, "permanent", False))
            # The robot is failing (bad token, throttled, down): later digests would fail the same way.
            return handled + len(messages)
        with transaction.atomic():
            RobotRequest.objects.create(robot=robot, at=timezone.now(), messages=len(messages), ok=True)
            _mark_sent(Message.objects.filter(pk__in=ids, state__in=DUE_STATES))
        handled += len(messages)
    return handled


def _truncate(text: str, max_bytes: int) -> str:
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    return data[: max_bytes - 3].decode("utf-8", "ignore") + "…"


def marker(key: str) -> str:
    """The idempotency marker a robot message carries in its text (robots have no idempotency field): ``#``
    and 8 hex digits of the key's SHA-256. The same message always carries the same marker, so a digest sent
    again after a crash is recognisable in the group as the one already seen."""
    return "#" + hashlib.sha256(key.encode()).hexdigest()[:8]


def _marker_line(kind: str, key: str) -> str:
    # WeCom markdown shows "comment" text in grey; DingTalk's text message has no markup.
    return f'<font color="comment">{marker(key)}</font>' if kind == Channel.WECOM else marker(key)


def _block(kind: str, message: Message, limit: int = 1 << 30) -> str:
    """One message as a robot shows it: subject, body (cut to fit ``limit`` bytes) and its marker line."""
    title = f"**{message.subject}**" if kind == Channel.WECOM else f"【{message.subject}】"
    tail = "\n" + _marker_line(kind, message.idempotency_key)
    text = f"{title}\n{message.body}" if message.body else title
    return _truncate(text, limit - len(tail.encode())) + tail


def _header(kind: str, count: int) -> str:
    text = _("共 %(count)d 条通知") % {"count": count}
    return f"**{text}**" if kind == Channel.WECOM else text


SEPARATOR = "\n\n"


def digest_chunks(kind: str, messages: list[Message], max_bytes: int) -> list[tuple[list[Message], str]]:
    """Group messages, in order, into as few robot messages as fit ``max_bytes`` (UTF-8) each. One message is
    sent as it is; several become a digest: a count header, then each subject and body."""
    reserve = len(_header(kind, 99999).encode()) + len(SEPARATOR)
    limit = max_bytes - reserve - len(SEPARATOR)  # the most one block may take
    groups: list[list[tuple[Message, str]]] = []
    size = reserve
    for message in messages:
        block = _block(kind, message, limit)
        need = len(block.encode()) + len(SEPARATOR)
        if not groups or size + need > max_bytes:
            groups.append([])
            size = reserve
        groups[-1].append((message, block))
        size += need
    out = []
    for group in groups:
        blocks = [block for _m, block in group]
        content = blocks[0] if len(group) == 1 else SEPARATOR.join([_header(kind, len(group)), *blocks])
        out.append(([m for m, _b in group], content))
    return out
