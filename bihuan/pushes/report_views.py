"""Pages of the push-list report: the dashboard (ECharts, drill-down by unit) and the daily report (日报) as a
page and an Excel download (its export audited by ``core.http.download``). The policy desk lives in
``bihuan.policy.views``. Views parse, authorize through ``register.access`` and read ``report``."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from bihuan.core.dbroute import replica_reads
from bihuan.core.http import date_param, download, int_param
from bihuan.core.roles import Perm
from bihuan.policy.rules import protocol_in_force
from bihuan.register.access import access_unit, staff_required
from bihuan.register.drill import drill_rows
from bihuan.register.models import MAX_LEVEL, LevelName, Unit, UnitKind

from . import report
from .models import Measure, Outcome

SERIES_DAYS = 14
MAX_DAYS = 366


# --- helpers ---------------------------------------------------------------------------------------------



def _unit(request, scope) -> Unit:
    return access_unit(request.user, int_param(request.GET.get("unit") or scope.root.id))


def _period(request) -> tuple[dt.date, dt.date]:
    """``?date=`` (default today), or ``?start=&end=`` (at most a year; swapped if reversed)."""
    today = timezone.localdate()
    start, end = date_param(request.GET.get("start")), date_param(request.GET.get("end"))
    if start or end:
        start, end = start or end, end or start
        if end < start:
            start, end = end, start
        start = max(start, end - dt.timedelta(days=MAX_DAYS - 1))
        return start, end
    day = date_param(request.GET.get("date"), today)
    return day, day


def _breadcrumb(scope, unit: Unit) -> list[Unit]:
    return [u for u in unit.ancestors() if u.path.startswith(scope.root.path)]


def _labels(choices) -> dict[str, str]:
    return {value: str(label) for value, label in choices.choices}


# --- dashboard -------------------------------------------------------------------------------------------

@staff_required(Perm.VIEW_REGISTER)
@replica_reads
def dashboard(request, scope):
    """KPIs of a unit for a day, charts (by outcome, by measure, by day over 14 days) and its children with
    drill-down."""
    unit = _unit(request, scope)
    day = date_param(request.GET.get("date"), timezone.localdate())
    units, own, totals = report.collect(unit, day, day)
    counts = totals[unit.id]
    rows, apart = drill_rows(unit, units, totals, behind=report.behind, own=lambda u: own[u.id],
                             keep=lambda u, c: not (u.kind == UnitKind.DEPARTMENT and c.is_zero))
    children = rows + apart
    series = report.by_day(unit, day - dt.timedelta(days=SERIES_DAYS - 1), day)
    outcome_labels, measure_labels = _labels(Outcome), _labels(Measure)
    charts = {
        "outcomes": [{"name": outcome_labels[k], "value": v} for k, v in counts.outcomes.items() if v],
        "measures": {"labels": [measure_labels[k] for k in counts.measures],
                     "values": list(counts.measures.values())},
        "days": {"labels": [f"{s['day']:%m-%d}" for s in series], "pushed": [s["pushed"] for s in series],
                 "verified": [s["verified"] for s in series], "transferred": [s["transferred"] for s in series]},
        "names": {"pushed": _("推送"), "verified": _("已核查"), "transferred": _("转出"),
                  "measures": _("管控措施"), "outcomes": _("核查结果")},
    }
    return render(request, "pushes/dashboard.html", {
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "day": day, "counts": counts,
        "children": children, "charts": charts, "series": series,
        "prev_day": day - dt.timedelta(days=1), "next_day": day + dt.timedelta(days=1),
        "is_leaf": unit.level == MAX_LEVEL,
    })


# --- the daily report ------------------------------------------------------------------------------------

def _levels(unit: Unit) -> list[tuple[int, str]]:
    names = dict(LevelName.objects.values_list("level", "name_zh"))
    return [(level, names.get(level, str(level))) for level in range(unit.level, MAX_LEVEL + 1)]


def _to_level(request, unit: Unit) -> int:
    try:
        level = int(request.GET.get("to_level") or 0)
    except ValueError:
        level = 0
    return level if unit.level <= level <= MAX_LEVEL else report.default_depth(unit)


@staff_required(Perm.VIEW_REGISTER)
@replica_reads
def daily_report(request, scope):
    """The 日报 as a page: the same rows and columns as the Excel download."""
    unit = _unit(request, scope)
    start, end = _period(request)
    to_level = _to_level(request, unit)
    units, own, totals = report.collect(unit, start, end)
    rows = report.report_rows(units, own, totals, unit.id, to_level)
    groups = report.columns()
    getters = [get for _g, cols in groups for _label, get in cols]
    return render(request, "pushes/report.html", {
        "unit": unit, "breadcrumb": _breadcrumb(scope, unit), "start": start, "end": end,
        "is_range": start != end, "to_level": to_level, "levels": _levels(unit),
        "title": report.report_title(unit, start, end), "as_of": report.as_of(end),
        "groups": [(g, len(cols)) for g, cols in groups], "headers": [label for _g, cols in groups for label, _ in cols],
        "rows": [{"unit": u, "own": is_own, "indent": 0 if is_own else max(0, u.level - unit.level - 1),
                  "values": [get(c) for get in getters]} for u, c, is_own in rows],
        "totals": [get(totals[unit.id]) for get in getters],
        "query": request.GET.urlencode(), "protocol": protocol_in_force(end),
    })


@staff_required(Perm.VIEW_REGISTER)
@replica_reads
def daily_report_xlsx(request, scope):
    unit = _unit(request, scope)
    start, end = _period(request)
    to_level = _to_level(request, unit)
    return download(report.report_workbook(unit, start, end, to_level=to_level),
                     f"push-report-{unit.code}-{start:%Y%m%d}.xlsx", acting_user=request.user,
                     audit_action="push.daily_report.export", target=unit,
                     changes={"start": start.isoformat(), "end": end.isoformat(), "to_level": to_level})
