"""The command office's policy desk: protocol editions (the one in force on a day marked, a new edition
prefilled from it), the risk areas in force, adding and lifting areas, importing a published list from
Excel, a place classifier, and the recent changes (every change is an audited action). Views parse,
authorize through ``register.access`` and call ``policy.actions`` / ``policy.io``; nothing else writes."""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core.http import date_param, download
from bihuan.core.models import AuditEntry
from bihuan.core.roles import Perm
from bihuan.register.access import staff_required

from . import actions, io, rules
from .models import Measure, Protocol, RiskArea, RiskLevel
from .places import normalize_place
from .validation import PolicyError

AREA_PAGE = 100
MAX_IMPORT_BYTES = 10 * 1024 * 1024
CHANGES_SHOWN = 20




def _labels(choices) -> dict[str, str]:
    return {value: str(label) for value, label in choices.choices}


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
    on = date_param(request.GET.get("date"), timezone.localdate())
    level = request.GET.get("level", "")
    q = (request.GET.get("q") or "").strip()
    areas = rules.areas_in_force(on).order_by("-level", "name", "id")
    if request.GET.get("all"):
        areas = RiskArea.objects.order_by("-effective_from", "name", "id")
    if level in RiskLevel.values:
        areas = areas.filter(level=level)
    if q:
        areas = areas.filter(Q(name__contains=normalize_place(q)) | Q(area_code__startswith=q))
    page = Paginator(areas, AREA_PAGE).get_page(request.GET.get("page"))
    in_force = rules.protocol_in_force(on)
    protocols = list(Protocol.objects.order_by("-effective_from", "-id"))
    with translation.override(None):
        described = [(p, [rules.rule_summary(r) for r in p.rules or []]) for p in protocols]
    context = {
        "on": on, "level": level, "q": q, "all": bool(request.GET.get("all")), "page": page,
        "levels": RiskLevel.choices, "measures": Measure.choices, "protocols": described, "in_force": in_force,
        "can_edit": scope.can(Perm.EDIT_POLICY), "rule_rows": _rule_rows(in_force.rules if in_force else None),
        "protocol_form": {"name": "", "effective_from": "", "note": ""}, "area_form": {}, "today": timezone.localdate(),
        "query": request.GET.urlencode(), "changes": _recent_changes() if scope.can(Perm.EDIT_POLICY) else [],
    }
    return context | extra


def _recent_changes() -> list[AuditEntry]:
    """The latest policy changes (every one an audited action): who changed what, when."""
    # By target type (indexed), older rows written when the tables belonged to pushes included.
    types = ["policy.riskarea", "policy.protocol", "pushes.riskarea", "pushes.protocol"]
    return list(AuditEntry.objects.filter(target_type__in=types, action__startswith="policy.")
                .select_related("actor__staff").order_by("-id")[:CHANGES_SHOWN])


@staff_required(Perm.VIEW_REGISTER)
def policy_page(request, scope):
    """Protocol versions (the one in force on ``?date=`` marked) and the risk areas in force on that day."""
    return render(request, "policy/policy.html", _policy_context(request, scope))


def _back(request) -> str:
    query = request.POST.get("query", "")
    return reverse("pushes:policy") + (f"?{query}" if query and "\n" not in query else "")


@require_POST
@staff_required(Perm.EDIT_POLICY)
def policy_area_add(request, scope):
    values = {k: (request.POST.get(k) or "").strip() for k in ("level", "name", "area_code", "effective_from",
                                                               "effective_to", "list_name")}
    try:
        area = actions.do_add_risk_area(
            level=values["level"], name=values["name"], area_code=values["area_code"],
            effective_from=values["effective_from"], effective_to=values["effective_to"] or None,
            list_name=values["list_name"], acting_user=request.user)
    except PolicyError as exc:
        context = _policy_context(request, scope, area_form=values, area_error=exc.message,
                                  area_error_field=exc.field)
        return render(request, "policy/policy.html", context, status=400)
    messages.success(request, _("已添加风险区：%(name)s（%(level)s）") % {"name": area.name,
                                                                   "level": area.get_level_display()})
    return redirect(_back(request))


@require_POST
@staff_required(Perm.EDIT_POLICY)
def policy_area_end(request, area_id: int, scope):
    try:
        area = actions.do_end_risk_area(area_id=area_id, effective_to=request.POST.get("effective_to"),
                                       acting_user=request.user)
    except PolicyError as exc:
        messages.error(request, exc.message)
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
        protocol = actions.do_add_protocol(name=form["name"], effective_from=form["effective_from"], rules=rules,
                                          note=form["note"], acting_user=request.user)
    except PolicyError as exc:
        field, reason = exc.field, exc.message
        error = reason
        if field.startswith("rules["):
            index = int(field[6:field.index("]")])
            for row in rows:
                if row["level"] == levels[index]:
                    row["error"] = f"{field.split('.', 1)[1] if '.' in field else field}: {reason}"
            error = _("规则有误，见下表")
        context = _policy_context(request, scope, protocol_form=form, rule_rows=rows, protocol_error=error,
                                  protocol_error_field=field)
        return render(request, "policy/policy.html", context, status=400)
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
    result = io.import_risk_areas(upload.read(), upload.name, acting_user=request.user,
                                         list_name=request.POST.get("list_name", ""))
    if not result.ok:
        context = _policy_context(request, scope, import_result=result)
        return render(request, "policy/policy.html", context, status=400)
    messages.success(request, _("已导入 %(file)s：新增 %(created)s 个风险区，%(unchanged)s 个已存在") % {
        "file": result.file_name, "created": result.created, "unchanged": result.unchanged})
    return redirect(_back(request))


@staff_required(Perm.VIEW_REGISTER)
def policy_template(request, scope):
    return download(io.template_bytes(), "risk-areas-template.xlsx")  # no personal data: nothing to audit


@staff_required(Perm.VIEW_REGISTER)
def policy_classify(request, scope):
    """A place and a date → its risk level, the matched area and what the protocol in force would recommend."""
    place = (request.GET.get("place") or "").strip()[:200]
    on = date_param(request.GET.get("date"), timezone.localdate())
    level, area = rules.risk_of(place, on) if place else (None, None)
    measure, basis = "", ""
    if place:
        traveller = SimpleNamespace(origin=place, via="", arrival_date=on, first_pushed_at=None)
        measure, basis = rules.recommend(traveller)
    return render(request, "policy/classify.html", {
        "place": place, "on": on, "level": level, "area": area, "measure": measure, "basis": basis,
        "level_label": _labels(RiskLevel).get(level or "", ""), "measure_label": _labels(Measure).get(measure, ""),
    })
