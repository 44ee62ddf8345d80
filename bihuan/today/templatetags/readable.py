"""Records in words: a loop event's action and state in the user's language, people by name.

``{% load readable %}`` then ``{{ e.action|event_words }}``, ``{{ e.to_state|state_words }}``, ``{{ user|person }}``.
"""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

from bihuan.loops.models import LoopState

register = template.Library()

EVENT_WORDS = {
    "issued": _("下达"), "reissued": _("重新下达"), "acknowledged": _("签收"), "started": _("开始办理"),
    "reported": _("反馈"), "closed": _("销号"), "returned": _("退回"), "cancelled": _("撤销"),
    "reopened": _("重新打开"), "reassigned": _("改由他人办理"), "assigned": _("指派"),
    "dispatched": _("人工分派"), "transferred": _("转办"), "transfer_returned": _("转办被退回"),
    "reminded": _("催办"), "escalated": _("督办（报上级）"), "handed_back": _("交回本单位"),
    "amended": _("更正反馈"), "note": _("备注"),
}


@register.filter
def event_words(action: str) -> str:
    return str(EVENT_WORDS.get(action, action))


@register.filter
def state_words(state: str) -> str:
    try:
        return str(LoopState(state).label)
    except ValueError:
        return state


@register.filter
def person(user) -> str:
    """A person's name (their staff record), never the login name when a name is known."""
    if user is None:
        return ""
    staff = getattr(user, "staff", None)
    name = getattr(staff, "name", "") if staff is not None else ""
    return name or user.get_full_name() or user.get_username()
