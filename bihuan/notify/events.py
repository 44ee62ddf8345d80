"""Names of the events that notify people, and the filter a group robot keeps.

An event is a dotted name, optionally with a ``:``-separated detail: ``directive.issued``,
``directive.updated``, ``directive.cancelled``, ``loop.opened:push.verification`` (the loop engine, whenever a
loop of that kind opens). A robot's filter is a list of prefixes; an event passes if the list is empty (every
event) or one prefix equals the event or is followed in it by ``.`` or ``:`` (``directive`` passes
``directive.issued``; ``loop.opened:control`` passes ``loop.opened:control.alert``, not ``loop.opened:controlx``).

``CHOICES`` is what the robot page offers; the API accepts any well-formed prefix.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext_lazy as _

from bihuan.core.errors import Refused

# Sent by the robot page's "send test message" button; passes every filter.
TEST = "robot.test"

CHOICES = [
    ("directive.issued", _("新指令下发")),
    ("directive.updated", _("指令更新")),
    ("directive.cancelled", _("指令撤销")),
    ("loop.opened:directive", _("指令签收待办")),
    ("loop.opened:push", _("大数据推送核查、转办")),
    ("loop.opened:control", _("管控：异常打卡、服务请求、核酸检测")),
    ("loop.opened:inspections", _("督查整改")),
    ("inspections", _("督查：重复问题、整改退回、督导通报")),
    ("loop.opened", _("所有新待办（任何闭环）")),
    ("account.locked", _("账号因多次登录失败被锁定")),
]
LABELS = dict(CHOICES)

PREFIX = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(:[a-z][a-z0-9_]*(\.[a-z0-9_]+)*)?$")
MAX_PREFIXES = 30


def matches(prefixes: list[str] | None, event: str) -> bool:
    if not prefixes or event == TEST:
        return True
    for prefix in prefixes:
        if event == prefix or (event.startswith(prefix) and event[len(prefix)] in ".:"):
            return True
    return False


def clean(prefixes) -> list[str]:
    """A filter as stored: distinct, well-formed prefixes in a stable order. Raises Refused."""
    if prefixes is None:
        return []
    if isinstance(prefixes, str) or not isinstance(prefixes, list | tuple):
        raise Refused("events", _("应为事件名称列表"))
    out: list[str] = []
    for prefix in prefixes:
        if not isinstance(prefix, str) or not PREFIX.match(prefix.strip()):
            raise Refused("events", _("事件名称不正确：%(name)s") % {"name": str(prefix)[:60]})
        if prefix.strip() not in out:
            out.append(prefix.strip())
    if len(out) > MAX_PREFIXES:
        raise Refused("events", _("事件最多 %(n)d 项") % {"n": MAX_PREFIXES})
    return out


def describe(prefixes: list[str]) -> list[str]:
    """Labels of a filter for display (unknown prefixes shown as they are); empty = every event."""
    return [str(LABELS.get(p, p)) for p in prefixes]
