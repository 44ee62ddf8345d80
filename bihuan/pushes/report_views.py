"""Pages of the push-list report and policy: the dashboard (ECharts, drill-down by unit), the daily report
(日报) as a page and an Excel download, and the command office's policy desk (protocol versions, risk-area
lists, Excel import, a place classifier). Views parse, authorize through ``register.access`` and call
``report`` / ``policy`` / ``policy_io``; nothing else writes."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core import audit
from bihuan.core.roles import Perm
from bihuan.register.access import access_unit, staff_required
from bihuan.register.models import MAX_LEVEL, LevelName, Unit, UnitKind

from . import policy, policy_io, report
from .models import Measure, Outcome, Protocol, RiskArea, RiskLevel

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SERIES_DAYS = 14
MAX_DAYS = 366
AREA_PAGE = 100
MAX_IMPORT_BYTES = 10 * 1024 * 1024


# --- helpers ---------------------------------------------------------------------------------------------

def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("not a number") from None


def _date(value: str | None, default: dt.date | None = None) -> dt.date | None:
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return default


def _unit(request, scope) -> Unit:
    return access_unit(request.user, _int(request.GET.get("unit") or scope.root.id))


def _period(request) -> tuple[dt.date, dt.date]:
    """``?date=`` (default today), or ``?start=&end=`` (at most a year; swapped if reversed)."""
    today = timezone.localdate()
    start, end = _date(request.GET.get("start")), _date(request.GET.get("end"))
    if start or end:
        start, end = start or end, end or start
        if end < start:
            start, end = end, start
        start = max(start, end - dt.timedelta(days=MAX_DAYS - 1))
        return start, end
    day = _date(request.GET.get("date"), today)
    return day, day


def _breadcrumb(scope, unit: Unit) -> list[Unit]:
    return [u for u in unit.ancestors() if u.path.startswith(scope.root.path)]


def _labels(choices) -> dict[str, str]:
    return {value: str(label) for value, label in choices.choices}


# --- dashboard -------------------------------------------------------------------------------------------

@staff_required(Perm.VIEW_REGISTER)
def dashboard(request, scope):
    """KPIs of a unit for a day, charts (by outcome, by measure, by day over 14 days) and its children with
    drill-down."""
    unit = _unit(request, scope)
    day = _date(request.GET.get("date"), timezone.localdate())
    units, _own, totals = report.collect(unit, day, day)
    counts = totals[unit.id]
    children = [(u, totals[u.id]) for u in units if u.parent_id == unit.id
                and not (u.kind == UnitKind.DEPARTMENT and totals[u.id].is_zero)]
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
        "query": request.GET.urlencode(),
    })


@staff_required(Perm.VIEW_REGISTER)
def daily_report_xlsx(request, scope):
    unit = _unit(request, scope)
    start, end = _period(request)
    to_level = _to_level(request, unit)
    data = report.report_workbook(unit, start, end, to_level=to_level)
    audit.record(actor=request.user, action="push.daily_report.export", target=unit,
                 changes={"start": start.isoformat(), "end": end.isoformat(), "to_level": to_level})
    response = HttpResponse(data, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="push-report-{unit.code}-{start:%Y%m%d}.xlsx"'
    return response


# --- the policy desk -------------------------------------------------------------------------------------

RULE_LEVELS = list(RiskLevel.values)  # high, medium, low: one row each in the protocol form
RULE_FIELDS = ("measure", "within_days", "days", "tests", "then_measure", "then_days", "then_tests")


def _rule_rows(rules: list[dict] | None = None, data=None) -> list[dict]:
    """The protocol form's rows: from ``data`` (a POST) or prefilled from ``rules``."""
    by_risk = {r["risk"]: r for r in rules or []}
    level_labels = _labels(RiskLevel)
    rows = []
    for level in RULE_LEVELS:
        if data is not None:
            values = {f: (data.get(f"{level}_{f}") or "").strip() for f in RULE_FIELDS}
        else:
            r = by_risk.get(level) or {}
            then = (r.get("then") or [{}])[0] if r.get("then") else {}
            values = {"measure": r.get("measure", ""), "within_days": str(r.get("within_days", "")),
                      "days": str(r.get("days", "") or ""), "tests": ",".join(str(t) for t in r.get("tests", [])),
                      "then_measure": then.get("measure", ""), "then_days": str(then.get("days", "") or ""),
                      "then_tests": ",".join(str(t) for t in then.get("tests", []))}
        rows.append({"level": level, "label": level_labels[level], "values": values, "error": ""})
    return rows


def _rules_from(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Rules from the form rows (a row without a measure is no rule), and the level of each rule."""
    rules, levels = [], []
    for row in rows:
        v = row["values"]
        if not v["measure"]:
            continue
        rule = {"risk": row["level"], "within_days": v["within_days"] or None, "measure": v["measure"],
                "days": v["days"] or 0, "tests": v["tests"]}
        if v["then_measure"]:
            rule["then"] = [{"measure": v["then_measure"], "days": v["then_days"] or 0, "tests": v["then_tests"]}]
        rules.append(rule)
        levels.append(row["level"])
    return rules, levels


def _policy_context(request, scope, **extra) -> dict:
    on = _date(request.GET.get("date"), timezone.localdate())
    level = request.GET.get("level", "")
    q = (request.GET.get("q") or "").strip()
    areas = policy.areas_in_force(on).order_by("-level", "name", "id")
    if request.GET.get("all"):
        areas = RiskArea.objects.order_by("-effective_from", "name", "id")
    if level in RiskLevel.values:
        areas = areas.filter(level=level)
    if q:
        areas = areas.filter(Q(name__contains=policy.normalize_place(q)) | Q(area_code__startswith=q))
    page = Paginator(areas, AREA_PAGE).get_page(request.GET.get("page"))
    in_force = policy.protocol_in_force(on)
    protocols = list(Protocol.objects.order_by("-effective_from", "-id"))
    with translation.override(None):
        described = [(p, [policy.rule_summary(r) for r in p.rules or []]) for p in protocols]
    context = {
        "on": on, "level": level, "q": q, "all": bool(request.GET.get("all")), "page": page,
        "levels": RiskLevel.choices, "measures": Measure.choices, "protocols": described, "in_force": in_force,
        "can_edit": scope.can(Perm.EDIT_POLICY), "rule_rows": _rule_rows(in_force.rules if in_force else None),
        "protocol_form": {"name": "", "effective_from": "", "note": ""}, "area_form": {}, "today": timezone.localdate(),
        "query": request.GET.urlencode(),
    }
    return context | extra


@staff_required(Perm.VIEW_REGISTER)
def policy_page(request, scope):
    """Protocol versions (the one in force on ``?date=`` marked) and the risk areas in force on that day."""
    return render(request, "pushes/policy.html", _policy_context(request, scope))


def _back(request) -> str:
    query = request.POST.get("query", "")
    return reverse("pushes:policy") + (f"?{query}" if query and "\n" not in query else "")


@require_POST
@staff_required(Perm.EDIT_POLICY)
def policy_area_add(request, scope):
    values = {k: (request.POST.get(k) or "").strip() for k in ("level", "name", "area_code", "effective_from",
                                                               "effective_to", "list_name")}
    try:
        area = policy.do_add_risk_area(
            level=values["level"], name=values["name"], area_code=values["area_code"],
            effective_from=values["effective_from"], effective_to=values["effective_to"] or None,
            list_name=values["list_name"], acting_user=request.user)
    except policy.PolicyError as exc:
        field, _sep, reason = str(exc).partition(": ")
        context = _policy_context(request, scope, area_form=values, area_error=reason, area_error_field=field)
        return render(request, "pushes/policy.html", context, status=400)
    messages.success(request, _("已添加风险区：%(name)s（%(level)s）") % {"name": area.name,
                                                                   "level": area.get_level_display()})
    return redirect(_back(request))


@require_POST
@staff_required(Perm.EDIT_POLICY)
def policy_area_end(request, area_id: int, scope):
    try:
        area = policy.do_end_risk_area(area_id=area_id, effective_to=request.POST.get("effective_to"),
                                       acting_user=request.user)
    except policy.PolicyError as exc:
        messages.error(request, str(exc).partition(": ")[2] or str(exc))
        return redirect(_back(request))
    messages.success(request, _("%(name)s 自 %(day)s 起不再是风险区") % {"name": area.name,
                                                                "day": f"{area.effective_to:%Y-%m-%d}"})
    return redirect(_back(request))


@require_POST
@staff_required(Perm.EDIT_POLICY)
def policy_protocol_add(request, scope):
    form = {k: (request.POST.get(k) or "").strip() for k in ("name", "effective_from", "note")}
    rows = _rule_rows(data=request.POST)
    rules, levels = _rules_from(rows)
    try:
        protocol = policy.do_add_protocol(name=form["name"], effective_from=form["effective_from"], rules=rules,
                                          note=form["note"], acting_user=request.user)
    except policy.PolicyError as exc:
        field, _sep, reason = str(exc).partition(": ")
        error = reason
        if field.startswith("rules["):
            index = int(field[6:field.index("]")])
            for row in rows:
                if row["level"] == levels[index]:
                    row["error"] = f"{field.split('.', 1)[1] if '.' in field else field}: {reason}"
            error = _("规则有误，见下表")
        context = _policy_context(request, scope, protocol_form=form, rule_rows=rows, protocol_error=error,
                                  protocol_error_field=field)
        return render(request, "pushes/policy.html", context, status=400)
    messages.success(request, _("已添加防控方案：%(name)s，%(day)s 起执行") % {
        "name": protocol.name, "day": f"{protocol.effective_from:%Y-%m-%d}"})
    return redirect(_back(request))


@require_POST
@staff_required(Perm.EDIT_POLICY)
def policy_import(request, scope):
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("请选择要导入的风险区名单文件"))
        return redirect(_back(request))
    if upload.size and upload.size > MAX_IMPORT_BYTES:
        messages.error(request, _("文件太大"))
        return redirect(_back(request))
    result = policy_io.import_risk_areas(upload.read(), upload.name, acting_user=request.user,
                                         list_name=request.POST.get("list_name", ""))
    if not result.ok:
        context = _policy_context(request, scope, import_result=result)
        return render(request, "pushes/policy.html", context, status=400)
    messages.success(request, _("已导入 %(file)s：新增 %(created)s 个风险区，%(unchanged)s 个已存在") % {
        "file": result.file_name, "created": result.created, "unchanged": result.unchanged})
    return redirect(_back(request))


@staff_required(Perm.VIEW_REGISTER)
def policy_template(request, scope):
    response = HttpResponse(policy_io.template_bytes(), content_type=XLSX)
    response["Content-Disposition"] = 'attachment; filename="risk-areas-template.xlsx"'
    return response


@staff_required(Perm.VIEW_REGISTER)
def policy_classify(request, scope):
    """A place and a date → its risk level, the matched area and what the protocol in force would recommend."""
    place = (request.GET.get("place") or "").strip()[:200]
    on = _date(request.GET.get("date"), timezone.localdate())
    level, area = policy.risk_of(place, on) if place else (None, None)
    measure, basis = "", ""
    if place:
        from types import SimpleNamespace

        traveller = SimpleNamespace(origin=place, via="", arrival_date=on, first_pushed_at=None)
        measure, basis = policy.recommend(traveller)
    return render(request, "pushes/policy_classify.html", {
        "place": place, "on": on, "level": level, "area": area, "measure": measure, "basis": basis,
        "level_label": _labels(RiskLevel).get(level or "", ""), "measure_label": _labels(Measure).get(measure, ""),
    })
