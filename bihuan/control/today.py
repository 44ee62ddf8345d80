"""The situation board's control figures: abnormal or missed check-ins and tests still open, service requests
waiting more than a day."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils.translation import gettext as _

from bihuan.core.today import Area, Figure, provider, table
from bihuan.loops.models import OPEN_STATES, Loop

from .models import ALERT, MISSED_CHECKIN, SERVICE, TEST_MISSED, TEST_POSITIVE

SERVICE_LATE = timedelta(hours=24)


@provider
def control_figures(area: Area) -> list[Figure]:
    loops = f"{table(Loop)} l"
    states = ", ".join(["%s"] * len(OPEN_STATES))
    alerts, arows = area.count(loops, "l.path", f"l.kind IN (%s, %s, %s) AND l.state IN ({states})",
                               [ALERT, TEST_POSITIVE, TEST_MISSED, *OPEN_STATES])
    missed, mrows = area.count(loops, "l.path", f"l.kind = %s AND l.state IN ({states})",
                               [MISSED_CHECKIN, *OPEN_STATES])
    late, lrows = area.count(loops, "l.path", f"l.kind = %s AND l.state IN ({states}) AND l.created_at < %s",
                             [SERVICE, *OPEN_STATES, area.now - SERVICE_LATE])
    dashboard = reverse("control:dashboard") + f"?unit={area.unit_id}"
    return [
        Figure("control.alerts", _("未处置的异常告警（体温、阳性、漏检）"), alerts, dashboard, arows,
               hint=_("电话或上门核实，处置后销号"), order=30),
        Figure("control.missed", _("未按时打卡的管控人员"), missed, dashboard, mrows,
               hint=_("电话或上门询问，代为打卡"), order=31),
        Figure("control.services_late", _("超过24小时未办结的服务请求"), late, dashboard, lrows,
               hint=_("指派志愿者或包保人员办理"), order=35),
    ]
