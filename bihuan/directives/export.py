"""Feedback of a directive: rolled up per field (numbers summed by the rule below, counts of choices and yes/no,
lists of text) for the detail page, and the Excel export of every unit's answers with the rollup.

The rule for numbers — **the lowest reporting unit on each path wins**. A unit's reported figure stands for
its whole subtree; where units below it report the same field, their figures replace the part of its
subtree they cover, and the unit's own figure counts only for the rest: what is left of it after the
figures below it are taken off, never less than zero. So a unit's figure is its own report or the sum of the
figures of the units below it, whichever is larger, and a grid's 10 reported again by its community and its
township is 10 at the district, not 30. Yes/no and choice fields count the units that gave each answer (one
answer per unit); text answers are listed.

Computed from one read of the reported receipts of the subtree (path order) and one walk over them.
"""

from __future__ import annotations

from collections import defaultdict

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from bihuan.core import excel
from bihuan.loops.models import Loop, LoopState
from bihuan.register.models import Unit, subtree_q

from .models import RECEIPT, Directive

TEXT_LIMIT = 50  # text answers listed on the page (the export has them all)
STATE_LABELS = dict(LoopState.choices)


def _answers(directive: Directive, unit: Unit):
    return (Loop.objects.filter(subtree_q(unit.path), kind=RECEIPT, subject_id=directive.pk)
            .order_by("path"))


def lowest_wins(figures: list[tuple[str, float]]) -> tuple[float, dict[str, float]]:
    """The rolled-up total of ``figures`` (``(path, value)`` of the reporting units, in path order) and each
    reporting unit's figure after the rule: its own value or the sum of the figures of the nearest reporting
    units below it, whichever is larger. One walk: a stack of open ancestors finds each report's nearest
    reporting ancestor; in reverse path order every unit is finished before its ancestors."""
    below: dict[int, list[int]] = defaultdict(list)
    tops: list[int] = []
    stack: list[int] = []
    for i, (path, _value) in enumerate(figures):
        while stack and not path.startswith(figures[stack[-1]][0]):
            stack.pop()
        (below[stack[-1]] if stack else tops).append(i)
        stack.append(i)
    figure = [0.0] * len(figures)
    for i in range(len(figures) - 1, -1, -1):
        own = figures[i][1]
        figure[i] = max(own, sum(figure[j] for j in below[i])) if i in below else own
    return sum(figure[i] for i in tops), {figures[i][0]: figure[i] for i in range(len(figures))}


def _number(total: float):
    return int(total) if total == int(total) else round(total, 4)


def feedback_rollup(directive: Directive, unit: Unit, text_limit: int | None = TEXT_LIMIT) -> dict:
    """The answers of the units in ``unit``'s subtree, rolled up per field of the directive's form. A number
    field carries ``sum`` (the rule of this module), ``own`` (``unit``'s own report, shown beside the sum,
    never added to it) and ``below`` (the figure of the units below ``unit``)."""
    answers = list(_answers(directive, unit).filter(reported_at__isnull=False)
                   .values_list("owner_unit__name", "path", "data"))
    fields = []
    for f in directive.feedback_form:
        key, kind = f["key"], f["type"]
        values = [(name, path, (data or {}).get("answers", {}).get(key)) for name, path, data in answers]
        values = [(name, path, v) for name, path, v in values if v not in (None, "")]
        item = {"field": f, "answered": len(values)}
        if kind == "number":
            total = lowest_wins([(path, float(v)) for _name, path, v in values])[0]
            own = next((float(v) for _name, path, v in values if path == unit.path), None)
            item["sum"] = _number(total)
            item["own"] = None if own is None else _number(own)
            below = lowest_wins([(path, float(v)) for _name, path, v in values if path != unit.path])[0]
            item["below"] = _number(below)
        elif kind == "bool":
            item["counts"] = [(_("是"), sum(1 for *_rest, v in values if v is True)),
                              (_("否"), sum(1 for *_rest, v in values if v is False))]
        elif kind == "choice":
            item["counts"] = [(c, sum(1 for *_rest, v in values if v == c)) for c in f["choices"]]
        else:
            values = [(name, v) for name, _path, v in values]
            shown = values if text_limit is None else values[:text_limit]
            item["texts"] = shown
            item["more"] = len(values) - len(shown)
        fields.append(item)
    return {"reports": len(answers), "fields": fields}


def _local(value):
    return timezone.localtime(value).replace(tzinfo=None) if value else None


RULE = gettext_lazy("数字按“每条路径上最低一级的反馈为准”汇总：上级单位的自报数只计入下级未反馈的部分"
        "（自报数减去下级合计，不小于零），不与下级重复相加。")  # said on the page and in the export


def feedback_workbook(directive: Directive, unit: Unit) -> tuple[bytes, int]:
    """Two sheets: 各单位反馈 (one row per unit in scope, its state and answers) and 汇总 (the rollup, with its
    rule). Returns the workbook and the number of unit rows; the caller's download writes the audit row."""
    form = directive.feedback_form
    wb = excel.workbook(write_only=True)
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
    summary.append([_("汇总规则"), str(RULE)])
    summary.append([])
    summary.append([_("代码"), _("名称"), _("类型"), _("已回答"), _("汇总"), _("本单位自报"), _("下级合计")])
    for item in rollup["fields"]:
        f = item["field"]
        head = [f["key"], f["label"], f["type"], item["answered"]]
        if "sum" in item:
            summary.append(head + [item["sum"], item["own"], item["below"]])
        elif "counts" in item:
            summary.append(head + ["；".join(f"{label}: {n}" for label, n in item["counts"])])
            for label, n in item["counts"]:
                summary.append(["", "", "", "", str(label), n])
        else:
            summary.append(head + [""])
            for name, text in item["texts"]:
                summary.append(["", "", "", "", name, text])
    return excel.to_bytes(wb), rows
