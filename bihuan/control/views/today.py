"""A community's (or grid's) page of the day, and the dashboard with its Excel export."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from bihuan.core.dbroute import replica_reads
from bihuan.core.http import download
from bihuan.core.roles import Perm
from bihuan.register.access import staff_required

from .. import dashboard, sampling, selectors
from ..export import dashboard_workbook
from ..models import ServiceKind
from ._common import TODAY_LEVEL, breadcrumb, date_param, result_buttons, unit_of


@staff_required(Perm.CARE)
def today(request, scope):
    """A community's (or grid's) work of the day: check-ins due (abnormal / missing / done), the sampling list
    and results, open service requests, open alerts, the care-visit list and the cases ending today. Above the
    community level the page shows the units below with their figures, to pick one."""
    unit = unit_of(request, scope)
    day = timezone.localdate()
    units, own, totals, _types = dashboard.collect(unit, day)
    counts = totals[unit.id]
    context = {"unit": unit, "breadcrumb": breadcrumb(scope, unit), "today": day, "counts": counts,
               "can_manage": scope.can(Perm.MANAGE_CONTROL)}
    if unit.level < TODAY_LEVEL:
        context["children"] = dashboard.children_rows(unit, units, own, totals)
        return render(request, "control/today.html", context)
    checkin_rows, more_checkins = selectors.due_checkin_rows(unit, request.user, day)
    open_services = selectors.open_service_requests(unit)
    context |= {
        "checkin_rows": checkin_rows, "more_checkins": more_checkins,
        "done_rows": [r for r in checkin_rows if r["status"] == "done"],
        "groups": sampling.sampling_list(unit, day), "result_buttons": result_buttons(),
        "services_pending": [r for r in open_services if r.done_at is None],
        "services_unconfirmed": [r for r in open_services if r.done_at is not None],
        "alerts": selectors.open_alerts(unit), "kinds": [(value, str(label)) for value, label in ServiceKind.choices],
        **selectors.care_overview(unit, units, day),
        "ending": selectors.ending_cases(unit, request.user, day), "is_open": True,
    }
    return render(request, "control/today.html", context)


@staff_required(Perm.VIEW_REGISTER)
@replica_reads
def dashboard_page(request, scope):
    unit = unit_of(request, scope)
    day = date_param(request.GET.get("date"), timezone.localdate())
    units, own, totals, types = dashboard.collect(unit, day)
    counts = totals[unit.id]
    children = dashboard.children_rows(unit, units, own, totals)
    charted = [(r.unit, r.counts) for r in children if r.counts.checkins_due or r.counts.open_cases]
    if len(charted) < 2:  # one bar says nothing the KPIs do not
        charted = []
    under = [(t.label, counts.under.get(t.code, 0)) for t in types]
    charts = {
        "under": {"labels": [label for label, _n in under], "values": [n for _label, n in under]},
        "today": {"labels": [_("健康打卡"), _("上门核酸")],
                  "done": [counts.checkins_done - counts.abnormal if counts.checkins_done >= counts.abnormal
                           else counts.checkins_done, counts.tests_done - counts.tests_positive],
                  "alert": [min(counts.abnormal, counts.checkins_done), counts.tests_positive + counts.tests_missed],
                  "waiting": [counts.checkins_missing, counts.tests_waiting]},
        "units": {"labels": [u.name for u, _c in charted], "done": [c.checkins_done for _u, c in charted],
                  "missing": [c.checkins_missing for _u, c in charted]},
        "names": {"under": _("在管人数"), "done": _("已完成"), "alert": _("异常 / 阳性 / 未采"), "waiting": _("未完成"),
                  "checked": _("已打卡"), "missing": _("未打卡")},
    }
    return render(request, "control/dashboard.html", {
        "unit": unit, "breadcrumb": breadcrumb(scope, unit), "day": day, "counts": counts, "under": under,
        "children": children, "charts": charts, "units_chart_height": 60 + 28 * len(charted),
        "prev_day": day - dt.timedelta(days=1), "next_day": day + dt.timedelta(days=1),
    })


@staff_required(Perm.VIEW_REGISTER)
@replica_reads
def export(request, scope):
    unit = unit_of(request, scope)
    day = date_param(request.GET.get("date"), timezone.localdate())
    return download(dashboard_workbook(unit, day), f"control-{unit.code}-{day:%Y%m%d}.xlsx",
                    acting_user=request.user, audit_action="control.dashboard.export", target=unit,
                    changes={"date": day.isoformat()})
