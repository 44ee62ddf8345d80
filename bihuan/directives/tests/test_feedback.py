"""Feedback that means something: required fields are required, a report can be amended (with its history)
until the issuer closes the directive, and nested reports roll up once (checked against a brute-force
recount over a generated tree)."""

from __future__ import annotations

import random

import pytest
from django.urls import reverse

from bihuan.core.models import AuditEntry
from bihuan.core.roles import Role
from bihuan.directives.actions import (
    DirectiveError,
    do_close_directive,
    do_issue_directive,
    do_report_receipt,
)
from bihuan.directives.export import feedback_rollup, lowest_wins
from bihuan.directives.forms import parse_feedback_form
from bihuan.directives.models import RECEIPT
from bihuan.loops.models import Loop, LoopEvent, LoopState
from bihuan.register.models import Unit, UnitKind
from bihuan.testing import create_staff, create_unit

D = "/api/v1/directives"
FORM = [{"key": "tested", "label": "核酸检测人数", "type": "number", "required": True},
        {"key": "closed", "label": "是否封闭管理", "type": "bool", "required": True},
        {"key": "notes", "label": "情况说明", "type": "text"}]


@pytest.fixture
def directive(district):
    return do_issue_directive(acting_user=district.users["commander"], title="核酸检测", body="今日全员检测",
                              feedback_form=FORM)


def receipt(directive, unit) -> Loop:
    return Loop.objects.get(kind=RECEIPT, subject_id=directive.pk, owner_unit=unit)


# --- required ----------------------------------------------------------------------------------------------

def test_a_report_without_a_required_field_is_refused_and_nothing_is_locked(district, directive):
    d = district
    loop = receipt(directive, d.grid_a)
    with pytest.raises(DirectiveError) as refused:
        do_report_receipt(loop_id=loop.pk, answers={"tested": "12", "closed": ""}, acting_user=d.users["grid_a"])
    assert refused.value.field == "closed"
    with pytest.raises(DirectiveError):
        do_report_receipt(loop_id=loop.pk, answers={"tested": "  ", "closed": "是"}, acting_user=d.users["grid_a"])
    assert receipt(directive, d.grid_a).state == LoopState.ISSUED


def test_an_empty_report_to_a_form_with_only_optional_fields_is_refused(district):
    d = district
    directive = do_issue_directive(acting_user=d.users["commander"], title="情况", body="请说明",
                                   feedback_form=[{"key": "notes", "type": "text"}])
    with pytest.raises(DirectiveError, match="^notes: answer at least one field"):
        do_report_receipt(loop_id=receipt(directive, d.grid_a).pk, answers={}, acting_user=d.users["grid_a"])
    # A directive without a form: reporting is simply saying it is done.
    plain = do_issue_directive(acting_user=d.users["commander"], title="通知", body="知悉即可")
    assert do_report_receipt(loop_id=receipt(plain, d.grid_a).pk, answers={},
                             acting_user=d.users["grid_a"]).state == LoopState.REPORTED


def test_the_form_builder_marks_required_fields():
    fields = parse_feedback_form("tested*|核酸检测人数|number\nnotes|说明|text\nlevel|风险|choice|低,高|必填")
    assert [(f["key"], f["required"]) for f in fields] == [("tested", True), ("notes", False), ("level", True)]


def test_the_report_page_marks_required_fields_and_refuses_an_empty_one(client, district, directive):
    d = district
    loop = receipt(directive, d.grid_a)
    client.force_login(d.users["grid_a"])
    url = reverse("directives:report", args=[loop.pk])
    page = client.get(url).content.decode()
    assert 'name="a_tested" value="" required' in page
    response = client.post(url, {"a_tested": "", "a_closed": "", "a_notes": ""})
    assert response.status_code == 400
    assert 'class="field has-error"' in response.content.decode()
    assert receipt(directive, d.grid_a).state == LoopState.ISSUED


def test_the_api_refuses_a_report_without_a_required_field(as_user, district, directive):
    loop = receipt(directive, district.grid_a)
    r = as_user("grid_a", "POST", f"{D}/receipts/{loop.pk}/report", {"answers": {"tested": 3}})
    assert r.status_code == 400 and r.json()["field"] == "closed"


# --- amend -------------------------------------------------------------------------------------------------

def test_a_unit_amends_its_report_on_the_page_and_the_history_keeps_the_first(client, district, directive):
    d = district
    loop = receipt(directive, d.grid_a)
    client.force_login(d.users["grid_a"])
    url = reverse("directives:report", args=[loop.pk])
    assert client.post(url, {"a_tested": "10", "a_closed": "是", "note": "初报"}).status_code == 302
    page = client.get(url).content.decode()
    assert 'data-testid="report-submit">修改反馈' in page and 'value="10"' in page
    assert client.post(url, {"a_tested": "12", "a_closed": "是", "note": "更正"}).status_code == 302
    page = client.get(url).content.decode()
    assert 'value="12"' in page and 'data-testid="report-history"' in page
    assert "核酸检测人数：<b>10</b>" in page and "初报" in page and "修改过 1 次" in page
    loop.refresh_from_db()
    assert loop.data["answers"] == {"tested": 12, "closed": True}
    assert [h["answers"] for h in loop.data["history"]] == [{"tested": 10, "closed": True}]
    assert list(LoopEvent.objects.filter(loop=loop).values_list("action", flat=True)) == [
        "issued", "reported", "amended"]
    assert AuditEntry.objects.filter(action="directive.amend_report", actor=d.users["grid_a"]).count() == 1
    # Every rollup reads the amended figure.
    assert feedback_rollup(directive, d.grid_a)["fields"][0]["sum"] == 12


def test_the_same_report_twice_is_no_amendment(district, directive):
    d = district
    loop = receipt(directive, d.grid_a)
    for _ in range(2):
        do_report_receipt(loop_id=loop.pk, answers={"tested": 5, "closed": "否"}, acting_user=d.users["grid_a"])
    assert not LoopEvent.objects.filter(loop=loop, action="amended").exists()
    assert "history" not in Loop.objects.get(pk=loop.pk).data


def test_a_unit_amends_through_the_api_until_the_directive_is_closed(as_user, district, directive):
    d = district
    loop = receipt(directive, d.grid_a)
    url = f"{D}/receipts/{loop.pk}/report"
    assert as_user("grid_a", "POST", url, {"answers": {"tested": 4, "closed": True}}).status_code == 200
    r = as_user("grid_a", "POST", url, {"answers": {"tested": 6, "closed": True}, "note": "补报两人"})
    assert r.status_code == 200
    j = r.json()
    assert j["state"] == "reported" and j["answers"] == {"tested": 6, "closed": True} and j["note"] == "补报两人"
    assert [h["answers"] for h in j["history"]] == [{"tested": 4, "closed": True}]
    do_close_directive(directive=directive, acting_user=d.users["commander"], reason="结束")
    r = as_user("grid_a", "POST", url, {"answers": {"tested": 9, "closed": True}})
    assert r.status_code == 409 and r.json()["field"] == "directive"  # closed
    assert Loop.objects.get(pk=loop.pk).data["answers"]["tested"] == 6


def test_after_closing_the_report_page_is_read_only(client, district, directive):
    d = district
    loop = receipt(directive, d.grid_a)
    do_report_receipt(loop_id=loop.pk, answers={"tested": 4, "closed": "是"}, acting_user=d.users["grid_a"])
    do_close_directive(directive=directive, acting_user=d.users["commander"], reason="结束")
    client.force_login(d.users["grid_a"])
    url = reverse("directives:report", args=[loop.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="report-submit"' not in page and 'data-testid="report-locked"' in page
    assert client.post(url, {"a_tested": "9", "a_closed": "是"}).status_code == 400
    assert Loop.objects.get(pk=loop.pk).data["answers"]["tested"] == 4


def test_an_outsider_cannot_see_or_amend_a_report(client, as_user, district, directive):
    d = district
    loop = receipt(directive, d.grid_a)
    do_report_receipt(loop_id=loop.pk, answers={"tested": 4, "closed": "是"}, acting_user=d.users["grid_a"])
    client.force_login(d.users["rep_b"])
    url = reverse("directives:report", args=[loop.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"a_tested": "9", "a_closed": "是"}).status_code == 404
    assert as_user("township_b", "POST", f"{D}/receipts/{loop.pk}/report",
                   {"answers": {"tested": 9, "closed": True}}).status_code == 404
    assert Loop.objects.get(pk=loop.pk).data["answers"]["tested"] == 4


# --- the rollup rule against a recount ---------------------------------------------------------------------

def recount(units: dict[int, Unit], children: dict[int, list[int]], reports: dict[int, float], at: int) -> float:
    """Brute force, from the rule's words: every reporting unit contributes what of its own figure is not
    covered by the reporting units below it (its figure minus theirs, never below zero); the figure of a unit
    (reporting or not) is the sum of the contributions of the reporting units of its subtree."""

    def subtree(u: int) -> list[int]:
        return [u] + [x for c in children.get(u, []) for x in subtree(c)]

    def nearest_reporting_below(u: int) -> list[int]:
        out = []
        for c in children.get(u, []):
            out += [c] if c in reports else nearest_reporting_below(c)
        return out

    def figure(u: int) -> float:
        return sum(contribution(r) for r in subtree(u) if r in reports)

    def contribution(r: int) -> float:
        return max(0.0, reports[r] - sum(figure(s) for s in nearest_reporting_below(r)))

    return figure(at)


def test_nested_reports_roll_up_as_an_independent_recount_says(district):
    d = district
    rng = random.Random(20220401)
    # A generated tree under both townships: communities, compounds and grids, 2–3 children each.
    parents = [d.township_a, d.township_b]
    kinds = [UnitKind.COMMUNITY, UnitKind.COMPOUND, UnitKind.GRID]
    for level_kind in kinds:
        nxt = []
        for p in parents:
            for i in range(rng.randint(2, 3)):
                nxt.append(create_unit(p, f"{p.name}-{i + 1}", level_kind))
        parents = nxt
    # And one chain with a single grid, for the case of the issue: a grid's 10 reported again by the units above.
    lone = create_unit(d.township_b, "专项社区", UnitKind.COMMUNITY)
    chain = [create_unit(create_unit(lone, "专项小区", UnitKind.COMPOUND), "专项网格", UnitKind.GRID)]
    chain += [Unit.objects.get(pk=chain[0].parent_id), lone]
    staff = create_staff(d.district, "counter", Role.DISTRICT_COMMANDER).user
    directive = do_issue_directive(acting_user=staff, title="人数", body="上报人数",
                                   feedback_form=[{"key": "n", "type": "number", "required": True}])
    loops = {lp.owner_unit_id: lp for lp in Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk)}
    reports: dict[int, float] = {}
    for unit_id, lp in sorted(loops.items()):
        if rng.random() < 0.55:
            value = rng.choice([0, 1, 2.5, 3, 7, 10, 20, 40, 100])
            do_report_receipt(loop_id=lp.pk, answers={"n": value}, acting_user=staff)
            reports[unit_id] = float(value)
    for u in chain:
        do_report_receipt(loop_id=loops[u.pk].pk, answers={"n": 10}, acting_user=staff)
        reports[u.pk] = 10.0
    assert len(reports) > 10 and any(a != b and units_nested(a, b) for a in reports for b in reports)

    units = {u.pk: u for u in Unit.objects.all()}
    children: dict[int, list[int]] = {}
    for u in units.values():
        if u.parent_id:
            children.setdefault(u.parent_id, []).append(u.pk)
    for unit in units.values():
        if unit.pk not in loops and unit.pk != d.district.pk:
            continue
        got = feedback_rollup(directive, unit)["fields"][0]
        assert got["sum"] == pytest.approx(recount(units, children, reports, unit.pk)), unit.name
        assert got["own"] == (reports.get(unit.pk) if unit.pk in reports else None)
    # The case of the issue: 10 at the grid, reported again by its compound and community, is 10, not 30.
    assert feedback_rollup(directive, lone)["fields"][0]["sum"] == recount(units, children, reports, lone.pk) == 10


def units_nested(a: int, b: int) -> bool:
    ua, ub = Unit.objects.get(pk=a), Unit.objects.get(pk=b)
    return ub.path.startswith(ua.path)


@pytest.mark.parametrize("figures, total", [
    ([], 0),
    ([("0001", 10.0), ("00010001", 10.0), ("000100010001", 10.0)], 10),  # the same figure at three levels
    ([("0001", 100.0), ("00010001", 10.0)], 100),  # the township covers more than its one reporting community
    ([("0001", 5.0), ("00010001", 10.0), ("00010002", 7.0)], 17),  # the communities' own figures win
    ([("00010001", 3.0), ("00010002", 4.0), ("0002", 1.0)], 8),  # disjoint reports simply add up
])
def test_the_rule_in_small_cases(figures, total):
    assert lowest_wins(figures)[0] == total
