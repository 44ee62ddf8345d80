"""The feedback export: every unit's answers and the rollup, in a workbook openpyxl reads back."""

import io

from django.urls import reverse
from openpyxl import load_workbook

from bihuan.core.models import AuditEntry
from bihuan.directives.actions import do_issue_directive, do_report_receipt
from bihuan.directives.models import RECEIPT
from bihuan.loops.models import Loop

FORM = [{"key": "tested", "label": "核酸检测人数", "type": "number"},
        {"key": "closed", "label": "是否封闭管理", "type": "bool"},
        {"key": "level", "label": "风险等级", "type": "choice", "choices": ["低", "中", "高"]},
        {"key": "notes", "label": "情况说明", "type": "text"}]


def _report(directive, unit, user, answers):
    loop = Loop.objects.get(kind=RECEIPT, subject_id=directive.pk, owner_unit=unit)
    do_report_receipt(loop_id=loop.pk, answers=answers, acting_user=user)


def _workbook(client, directive, **params):
    response = client.get(reverse("directives:export", args=[directive.pk]), params)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    return load_workbook(io.BytesIO(response.content))


def test_feedback_export_lists_every_unit_and_sums_right(client, district):
    d = district
    directive = do_issue_directive(title="核酸检测", body="今日全员检测", acting_user=d.users["commander"],
                                   feedback_form=FORM)
    _report(directive, d.grid_a, d.users["grid_a"], {"tested": "12", "closed": "是", "level": "中", "notes": "正常"})
    _report(directive, d.community_a, d.users["community_a"], {"tested": "30.5", "closed": "否", "level": "中"})
    _report(directive, d.grid_b, d.users["rep_b"], {"tested": "7", "level": "高", "notes": "一户外出"})
    client.force_login(d.users["commander"])
    wb = _workbook(client, directive)
    assert wb.sheetnames == ["各单位反馈", "汇总"]

    rows = list(wb["各单位反馈"].iter_rows(values_only=True))
    assert rows[0] == ("单位", "单位编码", "层级", "状态", "签收时间", "反馈时间",
                       "核酸检测人数", "是否封闭管理", "风险等级", "情况说明")
    by_unit = {r[0]: r for r in rows[1:]}
    assert len(by_unit) == Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk).count() == 9
    assert by_unit[d.grid_a.name][6:] == (12, "是", "中", "正常")
    assert by_unit[d.community_a.name][6:] == (30.5, "否", "中", None)
    assert by_unit[d.township_a.name][3] == "待签收" and by_unit[d.township_a.name][6] is None
    assert by_unit[d.grid_a.name][3] == "已反馈" and by_unit[d.grid_a.name][5] is not None
    assert sum(r[6] or 0 for r in rows[1:]) == 49.5

    summary = {r[0]: r for r in wb["汇总"].iter_rows(values_only=True) if r and r[0]}
    assert summary["已反馈单位数"][1] == 3
    # Nested reports count once: the community's 30.5 covers its grid's 12 (no double count: not 49.5).
    assert summary["tested"][3:7] == (3, 37.5, None, 37.5)
    assert "不与下级重复相加" in summary["汇总规则"][1]
    assert summary["closed"][4] == "是: 1；否: 1"
    assert summary["level"][4] == "低: 0；中: 2；高: 1"
    texts = [r[4:6] for r in wb["汇总"].iter_rows(values_only=True) if r and r[0] is None and r[5] in ("正常", "一户外出")]
    assert sorted(texts) == sorted([(d.grid_a.name, "正常"), (d.grid_b.name, "一户外出")])
    assert AuditEntry.objects.filter(action="directive.export_feedback", actor=d.users["commander"]).count() == 1


def test_feedback_export_of_a_unit_holds_only_its_subtree(client, district):
    d = district
    directive = do_issue_directive(title="核酸检测", body="今日全员检测", acting_user=d.users["commander"],
                                   feedback_form=FORM)
    _report(directive, d.grid_a, d.users["grid_a"], {"tested": 12})
    _report(directive, d.grid_b, d.users["rep_b"], {"tested": 7})
    client.force_login(d.users["township_a"])
    wb = _workbook(client, directive)
    names = [r[0] for r in wb["各单位反馈"].iter_rows(min_row=2, values_only=True)]
    assert d.grid_a.name in names and d.grid_b.name not in names and d.township_a.name in names
    summary = {r[0]: r for r in wb["汇总"].iter_rows(values_only=True) if r and r[0]}
    assert summary["tested"][4] == 12
    client.force_login(d.users["township_b"])
    assert client.get(reverse("directives:export", args=[directive.pk]),
                      {"unit": d.grid_a.id}).status_code == 404
