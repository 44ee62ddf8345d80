"""Reading the audit log (the rows ``bihuan.core.audit.record`` writes): who may see which rows, and the
filters of the audit-log page and its export.

Holders of ``Perm.VIEW_AUDIT`` see the rows of actors in their own subtree (``AuditEntry.actor_unit``); rows
without an actor unit (a resident's link, the worker, a superuser without a unit) only a viewer whose subtree is
the whole district sees.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from bihuan.core.errors import Refused
from bihuan.core.http import parse_date
from bihuan.core.models import AuditEntry
from bihuan.core.roles import Perm

from .access import access_unit, require
from .models import subtree_q


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""  # a username, exactly, or part of a staff member's name
    unit: int | None = None  # actors in this unit's subtree
    action: str = ""  # an action name or its prefix ("notify." …)
    target: str = ""  # "type" or "type:id" (e.g. "register.resident:42")
    date_from: dt.date | None = None
    date_to: dt.date | None = None  # inclusive

    def as_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in self.__dict__.items() if v}


def _date(value: str, field: str) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    day = parse_date(value)
    if day is None:
        raise Refused(field, _("日期格式应为 YYYY-MM-DD"))
    return day


def parse_filters(params) -> AuditFilters:
    """Filters from query parameters. Raises Refused for a malformed one."""
    unit = (params.get("unit") or "").strip()
    if unit and not (unit.isascii() and unit.isdigit() and len(unit) < 19):
        raise Refused("unit", _("单位应为编号"))
    filters = AuditFilters(actor=(params.get("actor") or "").strip()[:100],
                           unit=int(unit) if unit else None,
                           action=(params.get("action") or "").strip()[:64],
                           target=(params.get("target") or "").strip()[:130],
                           date_from=_date(params.get("date_from", ""), "date_from"),
                           date_to=_date(params.get("date_to", ""), "date_to"))
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise Refused("date_to", _("结束日期早于开始日期"))
    return filters


def visible_entries(user) -> QuerySet[AuditEntry]:
    """The audit rows ``user`` may read. Raises PermissionDenied without ``Perm.VIEW_AUDIT``."""

    scope = require(user, Perm.VIEW_AUDIT)
    inside = subtree_q(scope.root.path, field="actor_unit__path")
    if scope.root.level == 1:
        inside |= Q(actor_unit__isnull=True)
    return AuditEntry.objects.filter(inside)


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()), timezone.get_default_timezone())


def search(user, filters: AuditFilters) -> QuerySet[AuditEntry]:
    """The visible rows matching ``filters``, newest first, with actor, staff record and unit joined."""

    rows = visible_entries(user)
    if filters.actor:
        rows = rows.filter(Q(actor__username=filters.actor) | Q(actor__staff__name__contains=filters.actor))
    if filters.unit is not None:
        rows = rows.filter(subtree_q(access_unit(user, filters.unit).path, field="actor_unit__path"))
    if filters.action:
        rows = rows.filter(action__startswith=filters.action)
    if filters.target:
        target_type, _sep, target_id = filters.target.partition(":")
        rows = rows.filter(target_type=target_type.strip().lower())
        if target_id.strip():
            rows = rows.filter(target_id=target_id.strip())
    if filters.date_from:
        rows = rows.filter(created_at__gte=_start_of(filters.date_from))
    if filters.date_to:
        rows = rows.filter(created_at__lt=_start_of(filters.date_to + dt.timedelta(days=1)))
    return rows.select_related("actor", "actor__staff", "actor_unit").order_by("-id")
