"""Feedback of a directive: rolled up per field (sums of numbers, counts of choices and yes/no, lists of text)
for the detail page, and the Excel export of every unit's answers with the rollup (openpyxl, write-only)."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook

from bihuan.core import audit, excel
from bihuan.loops.models import Loop, LoopState
from bihuan.register.models import Unit, subtree_q

from .models import RECEIPT, Directive

TEXT_LIMIT = 50  # text answers listed on the page (the export has them all)
STATE_LABELS = dict(LoopState.choices)


def _answers(directive: Directive, unit: Unit):
    return (Loop.objects.filter(subtree_q(unit.path), kind=RECEIPT, subject_id=directive.pk)
            .order_by("path"))


def feedback_rollup(directive: Directive, unit: Unit, text_limit: int | None = TEXT_LIMIT) -> dict:
    """The answers of the units in ``unit``'s subtree, rolled up per field of the directive's form."""
    answers = list(_answers(directive, unit).filter(reported_at__isnull=False)
                   .values_list("owner_unit__name", "data"))
    fields = []
    for f in directive.feedback_form:
        key, kind = f["key"], f["type"]
        values = [(name, (data or {}).get("answers", {}).get(key)) for name, data in answers]
        values = [(name, v) for name, v in values if v not in (None, "")]
        item = {"field": f, "answered": len(values)}
        if kind == "number":
            total = sum(float(v) for _, v in values)
            item["sum"] = int(total) if total == int(total) else round(total, 4)
        elif kind == "bool":
            item["counts"] = [(_("是"), sum(1 for _, v in values if v is True)),
                              (_("否"), sum(1 for _, v in values if v is False))]
        elif kind == "choice":
            item["counts"] = [(c, sum(1 for _, v in values if v == c)) for c in f["choices"]]
        else:
            shown = values if text_limit is None else values[:text_limit]
            item["texts"] = shown
            item["more"] = len(values) - len(shown)
        fields.append(item)
    return {"reports": len(answers), "fields": fields}


def _local(value):
    return timezone.localtime(value).replace(tzinfo=None) if value else None


def feedback_workbook(directive: Directive, unit: Unit, *, acting_user) -> bytes:
    """Two sheets: 各单位反馈 (one row per unit in scope, its state and answers) and 汇总 (the rollup)."""
    form = directive.feedback_form
    wb = Workbook(write_only=True)
    per_unit = wb.create_sheet(_("各单位反馈"))
    per_unit.append([_("单位"), _("单位编码"), _("层级"), _("状态"), _("签收时间"), _("反馈时间")]
                    + [f["label"] for f in form])
    rows = 0
    for name, code, level, state, signed_at, reported_at, data in _answers(directive, unit).values_list(
            "owner_unit__name", "owner_unit__code", "level", "state", "acknowledged_at", "reported_at",
            "data").iterator(chunk_size=2000):
        answers = (data or {}).get("answers", {})
        cells = []
        for f in form:
            v = answers.get(f["key"])
            cells.append((_("是") if v else _("否")) if f["type"] == "bool" and v is not None else v)
        per_unit.append([name, code, level, str(STATE_LABELS.get(state, state)), _local(signed_at),
                         _local(reported_at)] + cells)
        rows += 1

    summary = wb.create_sheet(_("汇总"))
    rollup = feedback_rollup(directive, unit, text_limit=None)
    summary.append([_("指令"), directive.title])
    summary.append([_("范围"), unit.name])
    summary.append([_("已反馈单位数"), rollup["reports"]])
    summary.append([])
    summary.append([_("代码"), _("名称"), _("类型"), _("已回答"), _("汇总")])
    for item in rollup["fields"]:
        f = item["field"]
        head = [f["key"], f["label"], f["type"], item["answered"]]
        if "sum" in item:
            summary.append(head + [item["sum"]])
        elif "counts" in item:
            summary.append(head + ["；".join(f"{label}: {n}" for label, n in item["counts"])])
            for label, n in item["counts"]:
                summary.append(["", "", "", "", str(label), n])
        else:
            summary.append(head + [""])
            for name, text in item["texts"]:
                summary.append(["", "", "", "", name, text])
    data = excel.to_bytes(wb)
    audit.record(actor=acting_user, action="directive.export_feedback", target=directive,
                 changes={"unit": unit.pk, "rows": rows})
    return data
