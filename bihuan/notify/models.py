"""The notification outbox.

A ``Message`` row is written in the caller's transaction (transactional outbox) and delivered later by the
``notify.deliver`` worker task, so a rolled-back action never notifies anyone and a committed one always does,
however often workers crash. ``idempotency_key`` is unique: enqueuing the same key twice is one message.

Personal data: an SMS recipient's phone is stored sealed (AES-GCM, ``crypto.seal``) with a masked copy in
``address`` for display and a keyed hash for finding or purging a person's messages. A robot's webhook URL
(which carries its access token) and its DingTalk signing secret are sealed too. All three take part in
``bihuan rotate_data_key`` through ``SEALED_FIELDS``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bihuan.core import crypto


class Channel(models.TextChoices):
    INBOX = "inbox", _("站内信")
    EMAIL = "email", _("邮件")
    WECOM = "wecom", _("企业微信群机器人")
    DINGTALK = "dingtalk", _("钉钉群机器人")
    SMS = "sms", _("短信")


ROBOT_CHANNELS = (Channel.WECOM, Channel.DINGTALK)
DIRECT_CHANNELS = (Channel.INBOX, Channel.EMAIL, Channel.SMS)


class State(models.TextChoices):
    PENDING = "pending", _("待发送")
    SENT = "sent", _("已发送")
    FAILED = "failed", _("发送失败，待重试")  # next_attempt_at says when
    DEAD = "dead", _("已放弃")  # max attempts reached, or a permanent error


DUE_STATES = (State.PENDING, State.FAILED)


class RobotKind(models.TextChoices):
    WECOM = Channel.WECOM.value, Channel.WECOM.label
    DINGTALK = Channel.DINGTALK.value, Channel.DINGTALK.label


class Robot(models.Model):
    """A WeCom or DingTalk group robot of a unit. Accepts at most 20 messages a minute."""

    SEALED_FIELDS = {"webhook_sealed": ("robot_webhook", "webhook_hash"),
                     "secret_sealed": ("robot_secret", "secret_hash")}

    unit = models.ForeignKey("register.Unit", on_delete=models.CASCADE, related_name="robots")
    kind = models.CharField(max_length=10, choices=RobotKind.choices)
    name = models.CharField(max_length=100)
    webhook_sealed = models.BinaryField(default=b"")
    webhook_hash = models.CharField(max_length=40, db_index=True)
    webhook_masked = models.CharField(max_length=200)  # scheme://host/path, without the token
    secret_sealed = models.BinaryField(blank=True, default=b"")  # DingTalk "加签" secret (SEC…)
    secret_hash = models.CharField(max_length=40, blank=True)
    active = models.BooleanField(default=True)
    # Which events go to the group: event-name prefixes ("directive", "loop.opened:push" …); empty = every
    # event. See ``events.matches``.
    events = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Lease held by the worker sending to this robot: one worker per robot, so the rate limit holds.
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["unit_id", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def set_webhook(self, url: str) -> None:
        self.webhook_sealed = crypto.seal(url)
        self.webhook_hash = crypto.lookup_hash("robot_webhook", url)
        parts = urlsplit(url)
        self.webhook_masked = f"{parts.scheme}://{parts.netloc}{parts.path}"[:200]

    def set_secret(self, secret: str) -> None:
        self.secret_sealed = crypto.seal(secret)
        self.secret_hash = crypto.lookup_hash("robot_secret", secret)

    def wants(self, event: str) -> bool:
        from .events import matches

        return matches(self.events, event)

    def webhook_url(self) -> str:
        return crypto.unseal(self.webhook_sealed)

    def secret(self) -> str:
        return crypto.unseal(self.secret_sealed)


class RobotRequest(models.Model):
    """One HTTP request to a robot (a single message or a digest): what the 20-a-minute limit counts."""

    robot = models.ForeignKey(Robot, on_delete=models.CASCADE, related_name="requests")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    messages = models.PositiveIntegerField(default=1)
    ok = models.BooleanField(default=True)

    class Meta:
        indexes = [models.Index(fields=["robot", "at"])]

    def __str__(self) -> str:
        return f"robot {self.robot_id} at {self.at:%H:%M:%S}: {self.messages} ({'ok' if self.ok else 'failed'})"


class Message(models.Model):
    SEALED_FIELDS = {"address_sealed": ("phone", "address_hash")}

    channel = models.CharField(max_length=10, choices=Channel.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    robot = models.ForeignKey(Robot, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    # Email address; for SMS the masked phone (the phone itself is sealed below); for robots the robot id.
    address = models.CharField(max_length=254, blank=True)
    address_sealed = models.BinaryField(blank=True, default=b"")
    address_hash = models.CharField(max_length=40, blank=True, db_index=True)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The worker's poll (state IN (pending, failed) AND next_attempt_at <= now) reads only due rows
            # however large the history grows. Not a partial index: SQLite ignores those for bound parameters.
            models.Index(fields=["state", "next_attempt_at"], name="notify_message_due"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.idempotency_key} ({self.state})"

    def phone(self) -> str:
        """The SMS recipient's phone, for the gateway only (never shown; ``address`` is the masked form)."""
        return crypto.unseal(self.address_sealed)

    @property
    def is_due(self) -> bool:
        return self.state in DUE_STATES and self.next_attempt_at <= timezone.now()


class InboxItem(models.Model):
    """A delivered in-app message in one user's inbox."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_items")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="inbox_item")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "id"]),
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notify_inbox_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.message.subject}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class Preference(models.Model):
    """One person's channels and quiet hours. No row means the defaults: email and SMS on, no quiet hours.

    The inbox is always on. Quiet hours are local time (``TIME_ZONE``); ``quiet_start > quiet_end`` spans
    midnight (22:00–07:00). During them a non-urgent email or SMS waits until they end; urgent work does not
    wait, and goes by SMS even to a person who switched SMS off."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="notify_preference")
    email = models.BooleanField(default=True)
    sms = models.BooleanField(default=True)
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id}: email={self.email} sms={self.sms} quiet={self.quiet_start}-{self.quiet_end}"

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_start is not None and self.quiet_end is not None and self.quiet_start != self.quiet_end

    def quiet_until(self, at):
        """The end of the quiet hours ``at`` falls in (an aware datetime), or None if ``at`` is not quiet."""
        if not self.has_quiet_hours:
            return None
        return quiet_until(self.quiet_start, self.quiet_end, at)


def quiet_until(start, end, at):
    """For local times ``start``–``end`` (spanning midnight when start > end): when the quiet period that
    contains ``at`` ends, or None. DST-safe for zones that have it (the end is localised on its own date)."""
    import datetime as dt

    tz = timezone.get_default_timezone()
    local = timezone.localtime(at, tz)
    t = local.time()
    if start < end:
        quiet, end_date = start <= t < end, local.date()
    elif t >= start:
        quiet, end_date = True, local.date() + dt.timedelta(days=1)
    else:
        quiet, end_date = t < end, local.date()
    if not quiet:
        return None
    return timezone.make_aware(dt.datetime.combine(end_date, end), tz)
