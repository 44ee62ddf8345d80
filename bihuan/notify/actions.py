"""Writes of the notify app that a person makes (the worker's writes live in tasks.py)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from bihuan.core import audit

from .conf import check_http_url
from .models import InboxItem, Robot, RobotKind


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


def do_create_robot(*, unit, kind: str, name: str, webhook_url: str, secret: str = "", acting_user) -> Robot:
    """Register a WeCom or DingTalk group robot for a unit. The webhook URL and secret are stored sealed and
    never written to the audit row."""
    kind = RobotKind(kind)
    check_http_url("webhook_url", webhook_url)
    if secret and kind != RobotKind.DINGTALK:
        raise ValueError("only DingTalk robots sign their requests with a secret")
    with transaction.atomic():
        robot = Robot(unit=unit, kind=kind, name=name)
        robot.set_webhook(webhook_url)
        robot.set_secret(secret)
        robot.save()
        audit.record(actor=acting_user, action="notify.create_robot", target=robot, unit=unit,
                     changes={"kind": kind.value, "name": name, "webhook": robot.webhook_masked,
                              "signed": bool(secret)})
    return robot
