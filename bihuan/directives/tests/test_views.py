"""Every directive page, for an insider and an outsider at every level, and what the pages do."""

from types import SimpleNamespace

import pytest
import qrcode
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from qrcode.image.svg import SvgPathImage

from bihuan.core.models import AuditEntry
from bihuan.core.roles import Perm
from bihuan.directives import links
from bihuan.directives.actions import (
    do_issue_directive,
    do_mark_households,
    do_report_receipt,
    do_sign_receipt,
)
from bihuan.directives.models import RECEIPT, Directive, DirectiveStatus, Reach, ReachMethod, ReachStatus
from bihuan.loops.models import Loop, LoopState
from bihuan.register.models import HouseholdKind
from bihuan.testing import HX, assert_route_access, create_household, create_resident, url_names

FORM = [{"key": "tested", "label": "核酸检测人数", "type": "number"},
        {"key": "closed", "label": "是否封闭管理", "type": "bool"},
        {"key": "level", "label": "风险等级", "type": "choice", "choices": ["低", "中", "高"]},
        {"key": "notes", "label": "情况说明", "type": "text"}]


def issue(user, **kw):
    kw.setdefault("title", "全员核酸检测通知")
    kw.setdefault("body", "请各单位于今日组织全员核酸检测。")
    return do_issue_directive(acting_user=user, **kw)


@pytest.fixture
def ctx(district):
    """The commander's directive (receipts in both branches) and one issued inside branch A."""
    d = district
    return SimpleNamespace(
        d=d,
        directive=issue(d.users["commander"], feedback_form=FORM),
        directive_a=issue(d.users["township_a"], title="街道消杀通知"),
    )


def receipt_of(directive, unit):
    return Loop.objects.get(kind=RECEIPT, subject_id=directive.pk, owner_unit=unit)


# route name -> (method, url, data, permission, expected status when allowed, kind)
# kind: "scoped" (branch-A object: outsiders 404), "unscoped" (no branch-A object), "issuer" (scoped, and only
# the issuing unit or one above it may use it: others 403).
ROUTES = {
    "directives:list": ("get", lambda c: reverse("directives:list"), None, Perm.VIEW_REGISTER, 200, "unscoped"),
    "directives:new": ("get", lambda c: reverse("directives:new"), None, Perm.ISSUE_DIRECTIVE, 200, "unscoped"),
    "directives:detail": ("get", lambda c: reverse("directives:detail", args=[c.directive.pk]) +
                          f"?unit={c.d.grid_a.id}", None, Perm.VIEW_REGISTER, 200, "scoped"),
    "directives:progress": ("get", lambda c: reverse("directives:progress", args=[c.directive_a.pk]), None,
                            Perm.VIEW_REGISTER, 200, "scoped"),
    "directives:export": ("get", lambda c: reverse("directives:export", args=[c.directive.pk]) +
                          f"?unit={c.d.grid_a.id}", None, Perm.VIEW_REGISTER, 200, "scoped"),
    "directives:update": ("post", lambda c: reverse("directives:update", args=[c.directive_a.pk]),
                          {"title": "街道消杀通知（更新）", "body": "改为明早八点。", "urgency": "urgent"},
                          Perm.ISSUE_DIRECTIVE, 302, "issuer"),
    "directives:cancel": ("post", lambda c: reverse("directives:cancel", args=[c.directive_a.pk]),
                          {"reason": "重复下发"}, Perm.ISSUE_DIRECTIVE, 302, "issuer"),
    "directives:close": ("post", lambda c: reverse("directives:close", args=[c.directive_a.pk]),
                         {"reason": "提前结束"}, Perm.ISSUE_DIRECTIVE, 302, "issuer"),
    "directives:mark": ("get", lambda c: reverse("directives:mark", args=[c.directive.pk]) +
                        f"?unit={c.d.grid_a.id}", None, Perm.MARK_REACH, 200, "scoped"),
    "directives:mark_households": ("post", lambda c: reverse("directives:mark_households", args=[c.directive.pk]),
                                   lambda c: {"household": c.d.household_a.id, "status": "reached",
                                              "method": "phone", "unit": c.d.grid_a.id},
                                   Perm.MARK_REACH, 200, "scoped"),
    "directives:qr": ("get", lambda c: reverse("directives:qr", args=[c.directive.pk]) +
                      f"?unit={c.d.grid_a.id}&building=3", None, Perm.MARK_REACH, 200, "scoped"),
    "directives:sign": ("post", lambda c: reverse("directives:sign", args=[receipt_of(c.directive, c.d.grid_a).pk]),
                        None, Perm.SIGN_RECEIPT, 200, "scoped"),
    "directives:relay": ("post", lambda c: reverse("directives:relay",
                                                   args=[receipt_of(c.directive, c.d.grid_a).pk]),
                         None, Perm.SIGN_RECEIPT, 200, "scoped"),
    "directives:report": ("post", lambda c: reverse("directives:report",
                                                    args=[receipt_of(c.directive, c.d.grid_a).pk]),
                          {"a_tested": "12"}, Perm.SIGN_RECEIPT, 302, "scoped"),
    "directives:readiness": ("get", lambda c: reverse("directives:readiness", args=[c.directive_a.pk]), None,
                             Perm.VIEW_REGISTER, 200, "scoped"),
    "directives:readiness_xlsx": ("get", lambda c: reverse("directives:readiness_xlsx", args=[c.directive_a.pk]),
                                  None, Perm.VIEW_REGISTER, 200, "scoped"),
    "directives:cap": ("get", lambda c: reverse("directives:cap", args=[c.directive_a.pk]) + "?type=Alert", None,
                       Perm.VIEW_REGISTER, 200, "scoped"),
    "directives:ack": ("get", lambda c: reverse("directives:ack", args=[signed(c.directive, c.d.grid_a, c.d).pk]),
                       None, Perm.VIEW_REGISTER, 200, "scoped"),
}


def signed(directive, unit, d):
    """The unit's receipt, signed (by the grid worker of branch A) if it was not yet."""
    loop = receipt_of(directive, unit)
    if loop.acknowledged_at is None:
        loop = do_sign_receipt(loop_id=loop.pk, acting_user=d.users["grid_a"])
    return loop
PUBLIC = {"confirm"}  # the resident's link: no login (tested below)


def test_every_directive_page_is_in_the_access_matrix():
    names = {n for n in url_names() if n.startswith("directives:") or n in PUBLIC}
    assert names == set(ROUTES) | PUBLIC, "add new pages to ROUTES"


def _can_manage(username, c):
    """Staff of the issuing unit (township A) or a unit above it, with the permission."""
    unit = c.d.users[username].staff.unit
    return c.directive_a.issuer_unit.path.startswith(unit.path)


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_insiders_see_branch_a_and_outsiders_get_404(client, ctx, route):
    d = ctx.d

    def refused(username):
        return 403 if ROUTES[route][5] == "issuer" and not _can_manage(username, ctx) else None

    assert_route_access(client, ctx, route, ROUTES[route], secrets=(d.household_a.address, d.grid_a.name),
                        refused=refused)


def test_anonymous_users_are_sent_to_login(client, ctx):
    response = client.get(reverse("directives:detail", args=[ctx.directive.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- list ------------------------------------------------------------------------------------------------

def test_list_puts_directives_waiting_for_the_users_signature_first(client, ctx):
    d = ctx.d
    client.force_login(d.users["grid_a"])
    client.post(reverse("directives:sign", args=[receipt_of(ctx.directive_a, d.grid_a).pk]), **HX)
    page = client.get(reverse("directives:list")).content.decode()
    # The commander's directive (older, still waiting) comes before township A's (newer, signed).
    assert page.index(ctx.directive.title) < page.index(ctx.directive_a.title)
    assert 'data-testid="sign"' in page and "入户标记" in page


def test_sign_relay_and_report_from_the_list(client, ctx):
    d = ctx.d
    client.force_login(d.users["community_a"])
    loop = receipt_of(ctx.directive, d.community_a)
    response = client.post(reverse("directives:sign", args=[loop.pk]), **HX)
    assert response.status_code == 200 and "已签收" in response.content.decode()
    response = client.post(reverse("directives:relay", args=[loop.pk]), **HX)
    assert "办理中" in response.content.decode()
    page = client.get(reverse("directives:report", args=[loop.pk])).content.decode()
    assert "核酸检测人数" in page and "风险等级" in page
    response = client.post(reverse("directives:report", args=[loop.pk]),
                           {"a_tested": "abc"})
    assert response.status_code == 400 and "tested: must be a number" in response.content.decode()
    response = client.post(reverse("directives:report", args=[loop.pk]),
                           {"a_tested": "30", "a_closed": "是", "a_level": "中", "a_notes": "已完成"})
    assert response.status_code == 302
    loop.refresh_from_db()
    assert loop.state == LoopState.REPORTED
    assert loop.data["answers"] == {"tested": 30, "closed": True, "level": "中", "notes": "已完成"}


# --- issue form ------------------------------------------------------------------------------------------

def test_issue_form_creates_a_directive_with_targets_and_a_feedback_form(client, district):
    d = district
    client.force_login(d.users["commander"])
    page = client.get(reverse("directives:new")).content.decode()
    assert d.community_a.name in page  # named units come from the issuer's subtree
    response = client.post(reverse("directives:new"), {
        "title": "独居老人走访", "body": "请逐户走访独居老人。", "urgency": "extra_urgent",
        "target_kinds": ["village"], "target_unit_ids": [str(d.community_a.id)], "household_flag": "elderly_alone",
        "sign_minutes": "15", "reach_hours": "6", "reminder_minutes": "20", "reminder_limit": "2",
        "is_exercise": "on",
        "feedback_form": "visited|已走访人数|number\nneeds|需要帮助|bool\nlevel|情况|choice|好,一般,差",
    })
    directive = Directive.objects.get(title="独居老人走访")
    assert response.status_code == 302 and response["Location"] == reverse("directives:detail",
                                                                           args=[directive.pk])
    assert directive.urgency == "extra_urgent" and directive.is_exercise
    assert directive.target_kinds == ["village"] and directive.target_unit_ids == [d.community_a.id]
    assert (directive.sign_minutes, directive.reach_hours, directive.reminder_minutes,
            directive.reminder_limit) == (15, 6, 20, 2)
    assert [f["type"] for f in directive.feedback_form] == ["number", "bool", "choice"]
    assert directive.feedback_form[2]["choices"] == ["好", "一般", "差"]
    # Only household B has an elderly person living alone.
    assert list(Reach.objects.filter(directive=directive).values_list("household_id", flat=True)) == [
        d.household_b.id]


@pytest.mark.parametrize("form_text, message", [
    ("tested|人数|numbr", "numbr"),
    ("tested|人数|number\ntested|重复|number", "feedback_form[1].key"),
    ("level|等级|choice", "feedback_form[0].choices"),
])
def test_issue_form_errors_name_the_field(client, district, form_text, message):
    client.force_login(district.users["commander"])
    response = client.post(reverse("directives:new"), {
        "title": "通知", "body": "正文", "urgency": "normal", "sign_minutes": "30", "reach_hours": "24",
        "reminder_minutes": "30", "reminder_limit": "3", "feedback_form": form_text})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'data-testid="error-feedback_form"' in page and message in page
    assert not Directive.objects.exists()


def test_issue_form_requires_title_and_text(client, district):
    client.force_login(district.users["township_a"])
    response = client.post(reverse("directives:new"), {"title": "", "body": "", "urgency": "normal",
                                                       "sign_minutes": "30", "reach_hours": "24",
                                                       "reminder_minutes": "30", "reminder_limit": "3"})
    page = response.content.decode()
    assert response.status_code == 400 and 'data-testid="error-title"' in page and 'data-testid="error-body"' in page


# --- detail / rollup -------------------------------------------------------------------------------------

def test_detail_drills_down_from_the_district_to_a_household(client, ctx):
    d = ctx.d
    do_mark_households(directive=ctx.directive, household_ids=[d.household_a.id], status=ReachStatus.REACHED,
                       method=ReachMethod.PHONE, acting_user=d.users["grid_a"])
    client.force_login(d.users["commander"])
    url = reverse("directives:detail", args=[ctx.directive.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="kpi-reached">1 / 2<' in page
    assert d.office.name in page and d.department.name not in page  # departments get no receipt
    assert d.household_b.address in page  # in the blind-spot list
    page = client.get(url, {"unit": d.compound_a.id}).content.decode()
    assert f'data-testid="child-reached-{d.grid_a.id}">1 / 1<' in page
    page = client.get(url, {"unit": d.grid_a.id}).content.decode()
    assert d.household_a.address in page and "已触达" in page and "电话" in page
    assert reverse("register:household", args=[d.household_a.id]) in page


def test_detail_highlights_overdue_units_and_lists_those_not_signed(client, ctx):
    d = ctx.d
    Loop.objects.filter(kind=RECEIPT, subject_id=ctx.directive.pk).update(ack_due_at="2000-01-01T00:00:00Z")
    client.force_login(d.users["commander"])
    page = client.get(reverse("directives:detail", args=[ctx.directive.pk]),
                      {"unit": d.office.id}).content.decode()
    assert f'class="overdue" data-testid="child-{d.township_a.id}"' in page
    assert "未签收单位 9 个" in page  # the office, 2 townships, a community, a village, a compound, a group, 2 grids


def test_coverage_chart_data_is_cumulative(client, ctx):
    d = ctx.d
    do_mark_households(directive=ctx.directive, household_ids=[d.household_a.id], status=ReachStatus.REACHED,
                       method=ReachMethod.VISIT, acting_user=d.users["grid_a"])
    client.force_login(d.users["commander"])
    response = client.get(reverse("directives:detail", args=[ctx.directive.pk]))
    import json
    import re

    series = json.loads(re.search(r'id="coverage-data"[^>]*>(.*?)</script>', response.content.decode()).group(1))
    assert series[0][1] == 0.0 and series[-1][1] == 50.0
    assert [p[0] for p in series] == sorted(p[0] for p in series)


def test_feedback_rolls_up_on_the_detail_page_counting_nested_reports_once(client, ctx):
    d = ctx.d
    for user, unit, answers in [("grid_a", d.grid_a, {"tested": 12, "closed": "是", "level": "中", "notes": "正常"}),
                                ("community_a", d.community_a, {"tested": "30", "closed": "否", "level": "中"}),
                                ("rep_b", d.grid_b, {"tested": "5.5", "level": "高"})]:
        do_report_receipt(loop_id=receipt_of(ctx.directive, unit).pk, answers=answers, acting_user=d.users[user])
    client.force_login(d.users["commander"])
    page = client.get(reverse("directives:detail", args=[ctx.directive.pk])).content.decode()
    # The community's 30 covers its grid's 12 (the lowest report wins for the grid's part; the community's
    # figure counts for the rest): 30 + 5.5, not 12 + 30 + 5.5.
    assert '<b data-testid="fb-sum-tested">35.5</b>' in page
    assert "中 <b>2</b>" in page and "高 <b>1</b>" in page and "正常" in page
    assert "不与下级重复相加" in page  # the rule is said on the page
    # Township A sees only its own part.
    client.force_login(d.users["township_a"])
    page = client.get(reverse("directives:detail", args=[ctx.directive.pk])).content.decode()
    assert '<b data-testid="fb-sum-tested">30</b>' in page and 'data-testid="fb-own-tested"' not in page
    # The community's own report is shown beside the rollup, not added to it.
    client.force_login(d.users["community_a"])
    page = client.get(reverse("directives:detail", args=[ctx.directive.pk])).content.decode()
    assert '<b data-testid="fb-sum-tested">30</b>' in page
    assert "本单位自报 30，下级合计 12" in page


def test_fanout_progress_polls_until_done_then_reloads(client, ctx):
    d = ctx.d
    Directive.objects.filter(pk=ctx.directive.pk).update(fanout_state="running", fanout_done=1, fanout_total=2)
    client.force_login(d.users["commander"])
    page = client.get(reverse("directives:detail", args=[ctx.directive.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in page and "1 / 2 户" in page
    response = client.get(reverse("directives:progress", args=[ctx.directive.pk]), **HX)
    assert 'hx-trigger="every 2s"' in response.content.decode() and "HX-Refresh" not in response
    Directive.objects.filter(pk=ctx.directive.pk).update(fanout_state="done", fanout_done=2)
    response = client.get(reverse("directives:progress", args=[ctx.directive.pk]), **HX)
    assert response["HX-Refresh"] == "true" and "every 2s" not in response.content.decode()


def _grow_grid(d, n=30):
    for i in range(n):
        h = create_household(d.grid_a, f"锦悦小区{4 + i % 3}号楼1单元{100 + i}", building=str(4 + i % 3),
                             entrance="1", room=str(100 + i))
        create_resident(h, f"测试{i}")


def test_detail_page_runs_a_fixed_number_of_queries(client, district):
    d = district
    client.force_login(d.users["commander"])
    first = issue(d.users["commander"], feedback_form=FORM)
    do_mark_households(directive=first, household_ids=[d.household_a.id], status=ReachStatus.REACHED,
                       method=ReachMethod.PHONE, acting_user=d.users["grid_a"])
    counts = {}
    for unit in (None, d.community_a, d.grid_a):
        with CaptureQueriesContext(connection) as q:
            assert client.get(reverse("directives:detail", args=[first.pk]),
                              {"unit": unit.id} if unit else {}).status_code == 200
        counts[unit] = len(q)
    _grow_grid(d)
    second = issue(d.users["commander"], feedback_form=FORM)
    hh = list(Reach.objects.filter(directive=second, unit=d.grid_a).values_list("household_id", flat=True))
    do_mark_households(directive=second, household_ids=hh[:10], status=ReachStatus.REACHED,
                       method=ReachMethod.WECHAT, acting_user=d.users["grid_a"])
    do_report_receipt(loop_id=receipt_of(second, d.grid_a).pk, answers={"tested": 3}, acting_user=d.users["grid_a"])
    for unit in (None, d.community_a, d.grid_a):
        with CaptureQueriesContext(connection) as q:
            response = client.get(reverse("directives:detail", args=[second.pk]), {"unit": unit.id} if unit else {})
        assert response.status_code == 200
        assert len(q) == counts[unit], f"unit {unit}: {len(q)} queries, was {counts[unit]}"


# --- marking ---------------------------------------------------------------------------------------------

def test_mark_page_runs_a_fixed_number_of_queries(client, district):
    d = district
    client.force_login(d.users["grid_a"])
    first = issue(d.users["commander"])
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("directives:mark", args=[first.pk])).status_code == 200
    _grow_grid(d)
    second = issue(d.users["commander"])
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("directives:mark", args=[second.pk]))
    assert page.status_code == 200 and "6 号楼" in page.content.decode()
    assert len(many) == len(few)


def test_mark_page_groups_households_by_building_in_natural_order(client, district):
    d = district
    for b in ("10", "2"):
        create_household(d.grid_a, f"锦悦小区{b}号楼1单元101", building=b, entrance="1", room="101")
    directive = issue(d.users["commander"])
    client.force_login(d.users["grid_a"])
    page = client.get(reverse("directives:mark", args=[directive.pk])).content.decode()
    assert page.index('id="grp-b-2"') < page.index('id="grp-b-3"') < page.index('id="grp-b-10"')


def test_a_higher_unit_picks_a_grid_first(client, ctx):
    client.force_login(ctx.d.users["community_a"])
    page = client.get(reverse("directives:mark", args=[ctx.directive.pk])).content.decode()
    assert 'data-testid="grids"' in page and ctx.d.grid_a.name in page and ctx.d.household_a.address not in page


def test_one_tap_bulk_building_and_undo(client, district):
    d = district
    extra = [create_household(d.grid_a, f"锦悦小区3号楼1单元{r}", building="3", entrance="1", room=str(r))
             for r in (101, 102, 201)]
    directive = issue(d.users["commander"])
    client.force_login(d.users["grid_a"])
    url = reverse("directives:mark_households", args=[directive.pk])
    # One tap on one household swaps just that row (and the summary, out of band).
    response = client.post(url, {"household": extra[0].id, "status": "reached", "method": "phone"}, **HX)
    page = response.content.decode()
    assert page.startswith(f'<li class="mrow status-reached" id="hh-{extra[0].id}"')
    assert 'hx-swap-oob="true"' in page and 'data-testid="sum-reached">1<' in page
    # Unreachable needs a reason.
    response = client.post(url, {"household": extra[1].id, "status": "unreachable", "reason": " "}, **HX)
    assert 'data-testid="row-error"' in response.content.decode()
    client.post(url, {"household": extra[1].id, "status": "unreachable", "reason": "长期在外地"}, **HX)
    # The whole building: only the pending ones change; each row then offers an undo.
    ids = [d.household_a.id] + [h.id for h in extra]
    response = client.post(url, {"household": ids, "status": "reached", "method": "wechat", "group": "b-3",
                                 "label": "3", "building": "3"}, **HX)
    page = response.content.decode()
    assert page.startswith('<section class="mgroup" id="grp-b-3"') and page.count('data-testid="undo"') == 4
    statuses = dict(Reach.objects.filter(directive=directive).values_list("household_id", "method"))
    assert statuses[extra[0].id] == "phone" and statuses[extra[2].id] == "wechat"
    assert Reach.objects.get(directive=directive, household=extra[1]).status == ReachStatus.UNREACHABLE
    # Undo one household.
    response = client.post(url, {"household": extra[2].id, "status": "pending"}, **HX)
    assert 'data-testid="tap-phone"' in response.content.decode()
    assert Reach.objects.get(directive=directive, household=extra[2]).status == ReachStatus.PENDING
    assert AuditEntry.objects.filter(action="directive.mark").count() == 4  # the refused one wrote nothing


def test_marking_a_household_outside_ones_part_is_a_404(client, ctx):
    client.force_login(ctx.d.users["grid_a"])
    response = client.post(reverse("directives:mark_households", args=[ctx.directive.pk]),
                           {"household": [ctx.d.household_a.id, ctx.d.household_b.id], "status": "reached",
                            "method": "phone"}, **HX)
    assert response.status_code == 404
    assert not Reach.objects.filter(status=ReachStatus.REACHED).exists()


def test_closed_directives_cannot_be_marked(client, ctx):
    d = ctx.d
    client.force_login(d.users["commander"])
    client.post(reverse("directives:close", args=[ctx.directive.pk]), {"reason": "演练结束"})
    ctx.directive.refresh_from_db()
    assert ctx.directive.status == DirectiveStatus.CLOSED
    client.force_login(d.users["grid_a"])
    page = client.get(reverse("directives:mark", args=[ctx.directive.pk])).content.decode()
    assert 'data-testid="tap-phone"' not in page


# --- issuer actions --------------------------------------------------------------------------------------

def test_issuer_updates_cancels_and_closes(client, ctx):
    d = ctx.d
    client.force_login(d.users["township_a"])
    url = reverse("directives:detail", args=[ctx.directive_a.pk])
    assert 'data-testid="issuer-actions"' in client.get(url).content.decode()
    client.post(reverse("directives:update", args=[ctx.directive_a.pk]),
                {"title": "街道消杀通知（第二版）", "body": "改为明早。", "urgency": "urgent"})
    ctx.directive_a.refresh_from_db()
    assert ctx.directive_a.version == 2 and ctx.directive_a.urgency == "urgent"
    # Early close-out needs a reason.
    response = client.post(reverse("directives:close", args=[ctx.directive_a.pk]), {"reason": ""}, follow=True)
    assert "reason" in response.content.decode()
    ctx.directive_a.refresh_from_db()
    assert ctx.directive_a.status == DirectiveStatus.ISSUED
    client.post(reverse("directives:cancel", args=[ctx.directive_a.pk]), {"reason": "重复下发"})
    ctx.directive_a.refresh_from_db()
    assert ctx.directive_a.status == DirectiveStatus.CANCELLED and ctx.directive_a.close_reason == "重复下发"
    assert 'data-testid="issuer-actions"' not in client.get(url).content.decode()


def test_units_below_the_issuer_see_no_issuer_actions(client, ctx):
    client.force_login(ctx.d.users["community_a"])
    page = client.get(reverse("directives:detail", args=[ctx.directive_a.pk])).content.decode()
    assert 'data-testid="issuer-actions"' not in page


# --- residents -------------------------------------------------------------------------------------------

def test_resident_confirms_without_login_and_repeats_are_harmless(client, ctx):
    d = ctx.d
    reach = Reach.objects.get(directive=ctx.directive, household=d.household_a)
    url = links.confirm_path(reach.pk)
    page = client.get(url).content.decode()
    assert ctx.directive.title in page and d.household_a.address in page and 'data-testid="confirm-button"' in page
    assert "<script" not in page and 'data-testid="nav-directives"' not in page  # a light page for any phone
    for i in range(3):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(url)
        body = response.content.decode()
        assert response.status_code == 200 and 'data-testid="confirmed"' in body
        assert ("谢谢您的配合" in body) == (i == 0) and ("无需再点" in body) == (i > 0)  # this tap, or an earlier one
        if connection.vendor == "postgresql":  # change, audit row and page in one statement
            # (besides the public pages' two rate counters, per address and per link: core.ratelimit)
            assert len(queries) == 1 + 2, [q["sql"] for q in queries]
    reach.refresh_from_db()
    assert reach.status == ReachStatus.REACHED and reach.method == ReachMethod.SELF and reach.marked_by is None
    entry = AuditEntry.objects.get(action="directive.self_confirm")
    assert (entry.actor, entry.target_type, entry.target_id, entry.changes) == (None, "directives.reach", str(reach.pk), {})


def test_a_link_to_a_cancelled_directive_says_so_and_changes_nothing(client, ctx):
    reach = Reach.objects.get(directive=ctx.directive, household=ctx.d.household_a)
    Directive.objects.filter(pk=ctx.directive.pk).update(status=DirectiveStatus.CANCELLED)
    for method in (client.get, client.post):
        page = method(links.confirm_path(reach.pk)).content.decode()
        assert 'data-testid="closed"' in page and 'data-testid="confirm-button"' not in page
    reach.refresh_from_db()
    assert reach.status == ReachStatus.PENDING
    assert not AuditEntry.objects.filter(action="directive.self_confirm").exists()


@pytest.mark.parametrize("token", ["1-AAAAAAAAAAAAAAAAAAAA", "abc", "1-", "999999-xyz"])
def test_a_forged_link_is_a_404(client, ctx, token):
    assert client.get(reverse("confirm", args=[token])).status_code == 404
    assert client.post(reverse("confirm", args=[token])).status_code == 404


def test_a_genuine_link_to_a_missing_household_record_is_a_404(client, ctx):
    assert client.get(links.confirm_path(10**9)).status_code == 404


def test_a_link_to_a_cancelled_directive_confirms_nothing(client, ctx):
    d = ctx.d
    reach = Reach.objects.get(directive=ctx.directive_a, household=d.household_a)
    client.force_login(d.users["township_a"])
    client.post(reverse("directives:cancel", args=[ctx.directive_a.pk]), {"reason": "撤回"})
    client.logout()
    page = client.post(links.confirm_path(reach.pk)).content.decode()
    assert 'data-testid="closed"' in page
    reach.refresh_from_db()
    assert reach.status == ReachStatus.PENDING


def test_qr_sheet_has_one_card_per_household_with_the_absolute_link(client, district, settings):
    settings.PUBLIC_URL = "https://bihuan.example.cn"  # not the host the printing browser happens to use
    d = district
    rural = create_household(d.grid_b, "东羊村一组13号", kind=HouseholdKind.RURAL, house_number="13")
    directive = issue(d.users["commander"])
    client.force_login(d.users["grid_a"])
    page = client.get(reverse("directives:qr", args=[directive.pk]), {"building": "3"}).content.decode()
    reach = Reach.objects.get(directive=directive, household=d.household_a)
    assert page.count('data-testid="qr-card"') == 1 and page.count("<svg") == 1
    assert d.household_a.address in page
    # The code carries the absolute confirmation link.
    url = f"https://bihuan.example.cn/r/{links.token_for(reach.pk)}/"
    assert qrcode.make(url, image_factory=SvgPathImage, border=1).to_string(encoding="unicode") in page
    assert f'data-testid="qr-link">{url}<' in page  # and the link to copy
    client.force_login(d.users["rep_b"])
    page = client.get(reverse("directives:qr", args=[directive.pk])).content.decode()
    assert page.count('data-testid="qr-card"') == 2 and rural.address in page
    assert d.household_a.address not in page


def test_a_unit_above_the_directives_scope_shows_the_whole_directive_and_one_beside_it_is_a_404(client, ctx):
    d = ctx.d
    client.force_login(d.users["commander"])
    url = reverse("directives:detail", args=[ctx.directive_a.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="unit-name">解放路街道' in page and 'data-testid="kpi-reached">0 / 1<' in page
    assert client.get(url, {"unit": d.district.id}).status_code == 200
    assert client.get(url, {"unit": d.township_b.id}).status_code == 404
    assert client.get(url, {"unit": "x"}).status_code == 404
