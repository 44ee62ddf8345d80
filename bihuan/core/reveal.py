"""Revealing full personal values on purpose: a reason is required (one of a short list, or free text), and each
user may reveal at most ``settings.REVEAL_LIMIT`` records within ``REVEAL_WINDOW_MINUTES`` (counted from the audit
rows the reveals themselves write: no extra table, one indexed query).

Every reveal action (register residents, staff phones, pushed people, helpers) calls ``check`` before it reads
the sealed value and writes its audit row with ``action`` ending in ``.reveal`` and the reason.
"""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .errors import Refused

# The short list a page offers (code → label); any other non-empty text is taken as the reason itself.
REASONS = {
    "verify": gettext_lazy("核实身份"),
    "call": gettext_lazy("电话联系本人"),
    "transfer": gettext_lazy("转运、隔离或管控安排"),
    "care": gettext_lazy("生活保障或就医服务"),
    "correct": gettext_lazy("更正登记信息"),
}
REVEAL_ACTIONS = ("resident.reveal", "staff.reveal", "push.person.reveal", "forces.helper.reveal")


class Throttled(Refused):
    """Too many reveals in the window (the API answers 429)."""

    status = 429


def reason_of(choice: str = "", text: str = "") -> str:
    """The reason to audit: free text if given (trimmed, at most 200 characters), else the label of a listed
    code. Refused when both are empty."""
    text = (text or "").strip()[:200]
    choice = (choice or "").strip()
    if text:
        return text
    if choice in REASONS:
        return f"{choice}: {REASONS[choice]}"
    if choice:  # a reason written into the code field (the API's single "reason" string)
        return choice[:200]
    raise Refused("reason", _("请选择或填写查看完整信息的原因"))


def check(user, *, now: dt.datetime | None = None) -> None:
    """Refuse with a clear message when ``user`` has reached the reveal limit of the window."""
    from .models import AuditEntry

    limit = settings.REVEAL_LIMIT
    minutes = settings.REVEAL_WINDOW_MINUTES
    now = now or timezone.now()
    since = now - dt.timedelta(minutes=minutes)
    recent = list(AuditEntry.objects.filter(actor_id=user.pk, action__in=REVEAL_ACTIONS, created_at__gte=since)
                  .order_by("-created_at").values_list("created_at", flat=True)[:limit])
    if len(recent) >= limit:
        wait = max(1, math.ceil((recent[-1] + dt.timedelta(minutes=minutes) - now).total_seconds() / 60))
        raise Throttled("", _("%(minutes)s 分钟内最多查看 %(limit)s 次完整信息，请 %(wait)s 分钟后再试")
                        % {"limit": limit, "minutes": minutes, "wait": wait})


def full_export(request, *, can_reveal: bool) -> str | None:
    """Whether a download carries full values: only a POST with ``full=1``, ``confirm=1`` and a reason (short
    list ``reason`` or free text ``reason_text``) by a role that may reveal. Returns the reason to audit, or
    None for the default, masked file. Raises PermissionDenied / Refused for a full request that may not be."""
    from django.core.exceptions import PermissionDenied

    if request.method != "POST" or request.POST.get("full") != "1":
        return None
    if not can_reveal:
        raise PermissionDenied("your role may not export full personal data")
    reason = reason_of(request.POST.get("reason", ""), request.POST.get("reason_text", ""))
    if request.POST.get("confirm") != "1":
        raise Refused("confirm", _("请确认导出完整的证件号和手机号"))
    return reason
