"""Writes of the notify app that a person makes (the worker's writes live in tasks.py)."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.env import ConfigError

from . import events as event_names
from .conf import check_http_url
from .events import TEST
from .models import InboxItem, Message, Preference, Robot, RobotKind
from .outbox import enqueue


def do_mark_inbox_read(*, acting_user, item_id: int | None = None) -> int:
    """Mark one of the user's own inbox items read, or all of them (``item_id=None``). Returns rows changed;
    another user's item id changes nothing."""
    with transaction.atomic():
        items = InboxItem.objects.filter(user=acting_user, read_at__isnull=True)
        if item_id is not None:
            items = items.filter(pk=item_id)
        changed = items.update(read_at=timezone.now())
        if changed:
            audit.record(actor=acting_user, action="notify.mark_read", target_type="notify.inboxitem",
                         target_id=item_id if item_id is not None else "all", changes={"items": changed})
    return changed


def do_set_preferences(*, acting_user, email: bool, sms: bool, quiet_start: dt.time | None = None,
                       quiet_end: dt.time | None = None) -> Preference:
    """Set the acting user's own channels and quiet hours (both ends or neither; local time)."""
    if (quiet_start is None) != (quiet_end is None):
        raise Refused("quiet_end" if quiet_end is None else "quiet_start", _("免打扰时段需同时填写开始和结束时间"))
    if quiet_start is not None and quiet_start == quiet_end:
        raise Refused("quiet_end", _("免打扰的开始和结束时间不能相同"))
    with transaction.atomic():
        preference, _created = Preference.objects.update_or_create(
            user=acting_user, defaults={"email": bool(email), "sms": bool(sms), "quiet_start": quiet_start,
                                        "quiet_end": quiet_end})
        audit.record(actor=acting_user, action="notify.set_preferences", target=preference,
                     changes={"email": bool(email), "sms": bool(sms),
                              "quiet": f"{quiet_start:%H:%M}-{quiet_end:%H:%M}" if quiet_start else ""})
    return preference


def preferences_of(user) -> Preference:
    """The user's preferences, or the defaults (unsaved) if they never chose."""
    return Preference.objects.filter(user=user).first() or Preference(user=user)


def _check_robot(kind: str, name: str, webhook_url: str | None, secret: str | None) -> tuple[RobotKind, str]:
    try:
        kind = RobotKind(kind)
    except ValueError:
        raise Refused("kind", _("机器人类型应为企业微信或钉钉")) from None
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise Refused("name", _("请填写机器人名称（100 字以内）"))
    if webhook_url is not None:
        try:
            check_http_url("webhook_url", webhook_url)
        except (ConfigError, ValueError):  # ValueError: urlsplit's "Invalid IPv6 URL"
            raise Refused("webhook_url", _("Webhook 地址应为 http(s) 网址")) from None
    if secret and kind != RobotKind.DINGTALK:
        raise Refused("secret", _("只有钉钉机器人使用加签密钥"))
    return kind, name


def do_create_robot(*, unit, kind: str, name: str, webhook_url: str, secret: str = "", events=None,
                    acting_user) -> Robot:
    """Register a WeCom or DingTalk group robot for a unit. The webhook URL and secret are stored sealed and
    never written to the audit row; ``events`` is the list of event prefixes that go to the group (empty:
    every event)."""
    kind, name = _check_robot(kind, name, (webhook_url or "").strip(), secret)
    events = event_names.clean(events)
    with transaction.atomic():
        robot = Robot(unit=unit, kind=kind, name=name, events=events)
        robot.set_webhook(webhook_url.strip())
        robot.set_secret((secret or "").strip())
        robot.save()
        audit.record(actor=acting_user, action="notify.create_robot", target=robot, unit=unit,
                     changes={"kind": kind.value, "name": name, "webhook": robot.webhook_masked,
                              "signed": bool(secret), "events": events})
    return robot


def do_update_robot(robot: Robot, *, acting_user, name: str | None = None, webhook_url: str | None = None,
                    secret: str | None = None, events=None, active: bool | None = None) -> Robot:
    """Change what is given (None: keep). A blank webhook URL or secret keeps the stored one (they are never
    shown again, so a form cannot send them back); ``secret="-"`` removes the secret."""
    webhook_url = (webhook_url or "").strip() or None
    new_secret = (secret or "").strip() or None
    kind, name = _check_robot(robot.kind, name if name is not None else robot.name, webhook_url,
                              None if new_secret == "-" else new_secret)
    changes: dict = {}
    with transaction.atomic():
        if name != robot.name:
            changes["name"] = [robot.name, name]
            robot.name = name
        if webhook_url is not None:
            robot.set_webhook(webhook_url)
            changes["webhook"] = robot.webhook_masked
        if new_secret is not None:
            robot.set_secret("" if new_secret == "-" else new_secret)
            changes["signed"] = new_secret != "-"
        if events is not None:
            events = event_names.clean(events)
            if events != robot.events:
                changes["events"] = [robot.events, events]
                robot.events = events
        if active is not None and bool(active) != robot.active:
            changes["active"] = bool(active)
            robot.active = bool(active)
        if changes:
            robot.save()
            audit.record(actor=acting_user, action="notify.update_robot", target=robot, unit=robot.unit,
                         changes=changes)
    return robot


def do_send_robot_test(robot: Robot, *, acting_user) -> Message:
    """Enqueue a test message for the robot; the worker delivers it like any other (the robot page shows its
    state). Each press is a new message."""
    if not robot.active:
        raise Refused("active", _("机器人已停用，请先启用"))
    now = timezone.now()
    name = getattr(getattr(acting_user, "staff", None), "name", "") or getattr(acting_user, "username", "")
    with transaction.atomic():
        message = enqueue(robot.kind, key=f"{TEST}:{robot.pk}:{now.timestamp():.6f}", robot=robot,
                          subject=_("测试消息"),
                          body=_("这是来自闭环系统的测试消息（%(unit)s · %(name)s），收到即表示机器人配置正确。")
                          % {"unit": robot.unit.name, "name": name})
        audit.record(actor=acting_user, action="notify.test_robot", target=robot, unit=robot.unit,
                     changes={"message": message.pk})
    return message


def last_tests(robot_ids) -> dict[int, Message]:
    """The latest test message of each robot: one query."""
    latest = (Message.objects.filter(robot_id__in=list(robot_ids), idempotency_key__startswith=f"{TEST}:")
              .values("robot_id").annotate(last=Max("id")).values("last"))
    return {m.robot_id: m for m in Message.objects.filter(pk__in=latest)}
