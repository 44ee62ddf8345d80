"""/api/v1/directives: the access matrix over every route (insider yes, outsider 404, role without the
permission 403), refusals as 400 naming the field, CAP and Excel exports, and fixed query counts."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook

from bihuan.api import api
from bihuan.core.roles import PERMISSIONS, Perm
from bihuan.directives import rollup
from bihuan.directives.actions import do_issue_directive, do_sign_receipt
from bihuan.directives.models import RECEIPT, Directive, DirectiveStatus, Reach, ReachStatus
from bihuan.loops.models import Loop, LoopState
from bihuan.testing import (
    api_call,
    api_routes,
    assert_list_queries_fixed,
    create_household,
    create_unit,
    route_id,
)

from .helpers import text, valid

BASE = "/api/v1"
D = f"{BASE}/directives"
FORM = [{"key": "tested", "label": "已检测人数", "type": "number"},
        {"key": "done", "label": "是否完成", "type": "bool"}]



def issue_in_a(d, **kw) -> Directive:
    """A directive of township A to its own subtree: branch B never sees it."""
    kw.setdefault("title", "关于加强小区封控管理的通知")
    kw.setdefault("body", "各小区即日起严格落实出入登记。")
    kw.setdefault("feedback_form", FORM)
    return do_issue_directive(acting_user=d.users["township_a"], **kw)


def receipt_of(directive: Directive, unit) -> Loop:
    return Loop.objects.get(kind=RECEIPT, subject_id=directive.pk, owner_unit=unit)


@pytest.fixture
def world(district):
    """Branch A's directive, and one in branch B so that outsiders' lists are not empty."""
    d = district
    d.directive = issue_in_a(d)
    d.loop = receipt_of(d.directive, d.grid_a)
    d.directive_b = do_issue_directive(acting_user=d.users["township_b"], title="屯里镇通知", body="内容")
    return d


# ------------------------------------------------------------------------------------------ the matrix

# Insiders who may change the fixture directive (issued by township A): its own unit and the units above.
MANAGERS = {"commander", "office", "township_a"}


@dataclass(frozen=True)
class Case:
    """How one route is tried. ``url(d, x)`` names branch-A objects every insider sees (``x`` holds the
    directive and grid A's receipt; a fresh one per request when ``fresh``). ``allowed`` lists the only
    insiders that succeed (the others get 403); by default those whose role has ``perm``."""

    perm: str | None
    url: Callable
    body: dict | None = None
    ok: int = 200
    allowed: frozenset[str] | None = None
    fresh: bool = False
    prepare: Callable | None = None
    listing: bool = False
    check: Callable | None = field(default=None, compare=False)


def _sign_first(d, x):
    do_sign_receipt(loop_id=x.loop.pk, acting_user=d.users["grid_a"])


MATRIX: dict[tuple[str, str], Case] = {
    ("POST", "/directives"): Case(Perm.ISSUE_DIRECTIVE, lambda d, x: D, ok=201,
                                  body={"title": "网格通知", "body": "请立即落实", "scope_unit": None}),
    ("GET", "/directives"): Case(Perm.VIEW_REGISTER, lambda d, x: f"{D}?limit=200", listing=True),
    ("GET", "/directives/{id}"): Case(Perm.VIEW_REGISTER, lambda d, x: f"{D}/{x.directive.pk}?unit={d.grid_a.id}"),
    ("GET", "/directives/{id}/units"): Case(Perm.VIEW_REGISTER,
                                            lambda d, x: f"{D}/{x.directive.pk}/units?parent={d.grid_a.id}"),
    ("GET", "/directives/{id}/households"): Case(Perm.VIEW_REGISTER,
                                                 lambda d, x: f"{D}/{x.directive.pk}/households?unit={d.grid_a.id}"),
    ("POST", "/directives/receipts/{loop_id}/sign"): Case(Perm.SIGN_RECEIPT,
                                                          lambda d, x: f"{D}/receipts/{x.loop.pk}/sign"),
    ("POST", "/directives/receipts/{loop_id}/relay"): Case(Perm.SIGN_RECEIPT,
                                                           lambda d, x: f"{D}/receipts/{x.loop.pk}/relay"),
    ("POST", "/directives/receipts/{loop_id}/report"): Case(Perm.SIGN_RECEIPT,
                                                            lambda d, x: f"{D}/receipts/{x.loop.pk}/report",
                                                            body={"answers": {"tested": 3, "done": True}}),
    ("GET", "/directives/receipts/{loop_id}/ack.xml"): Case(Perm.VIEW_REGISTER,
                                                            lambda d, x: f"{D}/receipts/{x.loop.pk}/ack.xml",
                                                            prepare=_sign_first),
    ("POST", "/directives/{id}/marks"): Case(Perm.MARK_REACH, lambda d, x: f"{D}/{x.directive.pk}/marks",
                                             body={"household_ids": ["HOUSEHOLD_A"], "status": "reached",
                                                   "method": "phone"}),
    ("POST", "/directives/{id}/update"): Case(Perm.ISSUE_DIRECTIVE, lambda d, x: f"{D}/{x.directive.pk}/update",
                                              body={"body": "新的要求"}, allowed=frozenset(MANAGERS)),
    ("POST", "/directives/{id}/cancel"): Case(Perm.ISSUE_DIRECTIVE, lambda d, x: f"{D}/{x.directive.pk}/cancel",
                                              body={"reason": "情况变化"}, allowed=frozenset(MANAGERS), fresh=True),
    ("POST", "/directives/{id}/close"): Case(Perm.ISSUE_DIRECTIVE, lambda d, x: f"{D}/{x.directive.pk}/close",
                                             body={"reason": "提前结束"}, allowed=frozenset(MANAGERS), fresh=True),
    ("GET", "/directives/{id}/cap.xml"): Case(Perm.VIEW_REGISTER, lambda d, x: f"{D}/{x.directive.pk}/cap.xml"),
    ("GET", "/directives/{id}/readiness"): Case(Perm.VIEW_REGISTER,
                                                lambda d, x: f"{D}/{x.directive.pk}/readiness"),
    ("GET", "/directives/{id}/readiness.xlsx"): Case(Perm.VIEW_REGISTER,
                                                     lambda d, x: f"{D}/{x.directive.pk}/readiness.xlsx"),
}


def _body(case: Case, d) -> dict | None:
    if case.body is None:
        return None
    body = dict(case.body)
    if "scope_unit" in body:
        body["scope_unit"] = d.grid_a.id
    if body.get("household_ids") == ["HOUSEHOLD_A"]:
        body["household_ids"] = [d.household_a.id]
    return body


def _target(d, case: Case) -> SimpleNamespace:
    if case.fresh:
        directive = issue_in_a(d)
        return SimpleNamespace(directive=directive, loop=receipt_of(directive, d.grid_a))
    return SimpleNamespace(directive=d.directive, loop=d.loop)


def test_every_directives_route_is_in_the_access_matrix():
    assert api_routes("directives") == set(MATRIX), "a route without an access test (or a test for a gone route)"


def test_every_api_route_belongs_to_a_router_with_an_access_matrix():
    """register/tests/test_api.py covers the routes tagged "register", this file those tagged "directives",
    pushes/tests/test_api.py those tagged "pushes", register/tests/test_staff_api.py those tagged "staff";
    a new router adds its tag here together with its own matrix."""
    covered = {"register", "directives", "pushes", "notify", "staff", "inspections", "checkpoints", "forces"}
    for path, operations in api.get_openapi_schema()["paths"].items():
        for method, operation in operations.items():
            assert set(operation.get("tags", [])) & covered, (method, path)


def expected_status(case: Case, name: str, role: str) -> int:
    if case.allowed is not None:
        return case.ok if name in case.allowed else 403
    return case.ok if case.perm is None or case.perm in PERMISSIONS[role] else 403


@pytest.mark.parametrize("route", sorted(MATRIX), ids=route_id)
def test_insiders_reach_branch_a_and_outsiders_get_404(world, as_user, route):
    d, case = world, MATRIX[route]
    method = route[0]
    outcomes = set()
    for name in d.insiders:
        x = _target(d, case)
        if case.prepare:
            case.prepare(d, x)
        role = d.users[name].staff.role
        expected = expected_status(case, name, role)
        response = as_user(name, method, case.url(d, x), _body(case, d))
        assert response.status_code == expected, (name, role, response.content[:300])
        outcomes.add(expected)
        if case.listing:
            assert d.directive.pk in {i["id"] for i in response.json()["items"]}, name
    for name in d.outsiders:
        x = _target(d, case)
        if case.prepare:
            case.prepare(d, x)
        response = as_user(name, method, case.url(d, x), _body(case, d))
        if case.listing:
            assert response.status_code == 200
            seen = {i["id"] for i in response.json()["items"]}
            assert d.directive_b.pk in seen, f"{name} sees nothing at all: the test would prove nothing"
            assert d.directive.pk not in seen, name
            continue
        assert response.status_code == 404, (name, response.content[:300])
        assert set(response.json()) == {"detail"}
    assert case.ok in outcomes


@pytest.mark.parametrize("route", sorted(MATRIX), ids=route_id)
def test_every_route_refuses_a_request_without_credentials(world, client, route):
    case = MATRIX[route]
    response = api_call(client, {}, route[0], case.url(world, _target(world, case)), _body(case, world))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_matrix_includes_roles_that_are_refused(district):
    refused = {(name, key) for key, case in MATRIX.items() for name in district.insiders
               if expected_status(case, name, district.users[name].staff.role) == 403}
    assert ("grid_a", ("POST", "/directives")) in refused
    assert ("department", ("POST", "/directives/{id}/marks")) in refused
    assert ("department", ("POST", "/directives/{id}/cancel")) in refused
    assert ("community_a", ("POST", "/directives/{id}/close")) in refused


def test_a_missing_directive_or_receipt_is_a_404_like_an_outsiders(world, as_user):
    assert as_user("commander", "GET", f"{D}/999999").status_code == 404
    assert as_user("commander", "POST", f"{D}/receipts/999999/sign").status_code == 404
    assert as_user("commander", "GET", f"{D}/receipts/999999/ack.xml").status_code == 404


# ---------------------------------------------------------------------------------------- the flow


def test_issue_sign_relay_report_and_mark_through_the_api(district, as_user):
    d = district
    for i in range(3):
        create_household(d.grid_a, f"锦悦小区7号楼{i}01")
    response = as_user("commander", "POST", D, {
        "title": "全员核酸检测", "body": "今日 18 时前完成。", "urgency": "extra_urgent", "feedback_form": FORM,
        "reach_hours": 12, "is_exercise": True})
    assert response.status_code == 201, response.content
    j = response.json()
    directive_id = j["id"]
    assert j["is_exercise"] and j["urgency"] == "extra_urgent" and j["version"] == 1
    assert j["unit"]["id"] == d.district.id and j["scope_unit"]["id"] == d.district.id
    assert j["counts"]["households"] == 5 and j["counts"]["reached"] == 0
    assert j["fanout"] == {"state": "done", "total": 5, "done": 5, "percent": 100}
    assert j["feedback_form"][0] == {"key": "tested", "label": "已检测人数", "type": "number", "choices": [],
                                     "required": False}
    assert j["my_receipt"] is None  # the commander issued it

    # The grid worker finds their receipt on the directive and signs, relays and reports.
    mine = as_user("grid_a", "GET", f"{D}/{directive_id}").json()
    assert mine["unit"]["id"] == d.grid_a.id and mine["counts"]["households"] == 4
    loop_id = mine["my_receipt"]["id"]
    assert mine["my_receipt"]["state"] == "issued" and mine["my_receipt"]["unit"]["id"] == d.grid_a.id
    r = as_user("grid_a", "POST", f"{D}/receipts/{loop_id}/sign")
    assert r.status_code == 200 and r.json()["state"] == "acknowledged" and r.json()["acknowledged_at"]
    assert as_user("grid_a", "POST", f"{D}/receipts/{loop_id}/relay").json()["state"] == "in_progress"

    homes = as_user("grid_a", "GET", f"{D}/{directive_id}/households").json()
    assert homes["total"] == 4 and {h["status"] for h in homes["items"]} == {"pending"}
    ids = [h["household_id"] for h in homes["items"]]
    r = as_user("grid_a", "POST", f"{D}/{directive_id}/marks",
                {"household_ids": ids[:3], "status": "reached", "method": "visit"})
    assert r.status_code == 200 and r.json() == {"changed": 3}
    r = as_user("grid_a", "POST", f"{D}/{directive_id}/marks",
                {"household_ids": ids[3:], "status": "unreachable", "reason": "长期空置"})
    assert r.json() == {"changed": 1}
    # Households outside one's part are ignored, not an error.
    r = as_user("grid_a", "POST", f"{D}/{directive_id}/marks",
                {"household_ids": [d.household_b.id], "status": "reached", "method": "phone"})
    assert r.json() == {"changed": 0}
    assert Reach.objects.get(directive_id=directive_id, household=d.household_b).status == "pending"

    r = as_user("grid_a", "POST", f"{D}/receipts/{loop_id}/report", {"answers": {"tested": "4", "done": "是"}})
    assert r.status_code == 200 and r.json()["state"] == "reported"
    assert r.json()["answers"] == {"tested": 4, "done": True}

    j = as_user("commander", "GET", f"{D}/{directive_id}?unit={d.grid_a.id}").json()
    assert (j["counts"]["reached"], j["counts"]["unreachable"], j["counts"]["pending"]) == (3, 1, 0)
    assert (j["counts"]["signed"], j["counts"]["reported"], j["counts"]["state"]) == (1, 1, "reported")
    units = as_user("commander", "GET", f"{D}/{directive_id}/units?parent={d.compound_a.id}").json()
    assert [u["id"] for u in units["items"]] == [d.grid_a.id]
    assert units["items"][0]["receipt"]["answers"] == {"tested": 4, "done": True}
    assert units["parent"]["counts"]["households"] == 4
    top = as_user("commander", "GET", f"{D}/{directive_id}").json()
    assert top["counts"]["percent"] == 80.0 and top["counts"]["households"] == 5

    readiness = as_user("commander", "GET", f"{D}/{directive_id}/readiness").json()
    assert readiness["is_exercise"] is True
    grid = next(r for r in readiness["rows"] if r["unit_id"] == d.grid_a.id)
    assert grid["households"] == 4 and grid["reached"] == 3 and grid["seconds_to_sign"] >= 0
    assert grid["seconds_to_50"] is not None and grid["seconds_to_100"] is None


def test_the_detail_counts_are_the_rollup_at_the_asked_unit(world, as_user):
    d = world
    _, totals = rollup.rollup(d.directive, root=d.township_a)
    for unit in (d.township_a, d.community_a, d.compound_a, d.grid_a):
        j = as_user("commander", "GET", f"{D}/{d.directive.pk}?unit={unit.id}").json()
        assert j["counts"] == totals[unit.id].as_dict()
    # A unit above the directive's scope shows the whole directive; one beside it is a 404.
    assert as_user("commander", "GET", f"{D}/{d.directive.pk}?unit={d.district.id}").json()["unit"]["id"] == \
        d.township_a.id
    assert as_user("commander", "GET", f"{D}/{d.directive.pk}?unit={d.township_b.id}").status_code == 404


def test_the_rollup_is_one_statement_and_a_subtree_has_the_figures_of_the_whole(world, django_assert_num_queries):
    from django.db import connection

    d = world
    scope = d.directive.scope_unit
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):  # SQLite: two and a walk
        units, totals = rollup.rollup(d.directive, root=scope)
    _, part = rollup.rollup(d.directive, root=d.community_a)
    assert part and all(part[i].as_dict() == totals[i].as_dict() for i in part)
    assert {u.id for u in units} >= set(part) and [u.path for u in units] == sorted(u.path for u in units)


def test_the_command_office_sees_a_directive_sent_past_it_to_a_township(world, as_user):
    d = world
    direct = do_issue_directive(acting_user=d.users["commander"], title="直达街道", body="内容",
                                scope_unit=d.township_a)
    assert not Loop.objects.filter(kind=RECEIPT, subject_id=direct.pk, owner_unit=d.office).exists()
    items = {i["id"] for i in as_user("office", "GET", D).json()["items"]}
    assert direct.pk in items
    assert direct.pk not in {i["id"] for i in as_user("township_b", "GET", D).json()["items"]}


def test_a_department_may_not_change_the_commanders_directive(world, as_user):
    d = world
    commanders = do_issue_directive(acting_user=d.users["commander"], title="区级指令", body="内容")
    assert as_user("department", "GET", f"{D}/{commanders.pk}").status_code == 200
    for verb, body in (("update", {"body": "x"}), ("cancel", {"reason": "x"}), ("close", {"reason": "x"})):
        response = as_user("department", "POST", f"{D}/{commanders.pk}/{verb}", body)
        assert response.status_code == 403, verb
    assert Directive.objects.get(pk=commanders.pk).status == DirectiveStatus.ISSUED
    own = as_user("department", "POST", D, {"title": "卫健局通知", "body": "内容"}).json()
    assert as_user("department", "POST", f"{D}/{own['id']}/cancel", {"reason": "重复"}).status_code == 200


# ---------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("body", [{"household_flag": "vip"}, {"feedback_form": [{"key": "x", "type": "date"}]}])
def test_what_the_schema_rules_out_is_a_422(world, as_user, body):
    response = as_user("commander", "POST", D, {"title": "t", "body": "b", **body})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][2] == next(iter(body))


@pytest.mark.parametrize(("who", "verb", "body", "field"), [
    ("commander", "", {"title": "t", "body": "b", "feedback_form": [{"key": "x", "type": "text"},
                                                                   {"key": "x", "type": "number"}]},
     "feedback_form[1].key"),
    ("grid_a", "marks", {"household_ids": [0], "status": "reached"}, "method"),
    ("grid_a", "marks", {"household_ids": [0], "status": "unreachable"}, "reason"),
    ("township_a", "close", {}, "reason"),  # households not reached yet: 409, the directive's state
    ("township_a", "update", {}, "title"),
])
def test_refusals_are_400_naming_the_field(world, as_user, who, verb, body, field):
    d = world
    body = {**body, "household_ids": [d.household_a.id]} if "household_ids" in body else body
    url = f"{D}/{d.directive.pk}/{verb}" if verb else D
    response = as_user(who, "POST", url, body)
    assert response.status_code == (409 if verb == "close" else 400), response.content
    assert response.json()["field"] == field and response.json()["detail"].startswith(field)


def test_a_bad_feedback_answer_names_the_field(world, as_user):
    r = as_user("grid_a", "POST", f"{D}/receipts/{world.loop.pk}/report", {"answers": {"tested": "很多"}})
    assert r.status_code == 400 and r.json()["field"] == "tested"
    assert receipt_of(world.directive, world.grid_a).state == LoopState.ISSUED


def test_acting_on_a_cancelled_directive_is_a_409(world, as_user):
    d = world
    assert as_user("township_a", "POST", f"{D}/{d.directive.pk}/cancel", {"reason": "撤回"}).status_code == 200
    r = as_user("township_a", "POST", f"{D}/{d.directive.pk}/cancel", {"reason": "再撤"})
    assert r.status_code == 409 and r.json()["field"] == "directive"
    r = as_user("grid_a", "POST", f"{D}/receipts/{d.loop.pk}/report", {"answers": {"tested": 1}})
    assert r.status_code == 409 and r.json()["field"] == "directive"
    r = as_user("grid_a", "POST", f"{D}/{d.directive.pk}/marks",
                {"household_ids": [d.household_a.id], "status": "reached", "method": "phone"})
    assert r.status_code == 409 and r.json()["field"] == "directive"


@pytest.mark.parametrize("body", [{"title": "t"}, {"title": "t", "body": "b", "urgency": "soon"},
                                  {"title": "t", "body": "b", "colour": "red"},
                                  {"title": "t", "body": "b", "target_kinds": ["castle"]},
                                  {"title": "t", "body": "b", "sign_minutes": 0}])
def test_malformed_requests_are_422(world, as_user, body):
    assert as_user("commander", "POST", D, body).status_code == 422


def test_issuing_to_a_unit_or_target_outside_ones_part_is_a_404(world, as_user):
    d = world
    assert as_user("township_a", "POST", D, {"title": "t", "body": "b", "scope_unit": d.township_b.id}
                   ).status_code == 404
    assert as_user("township_a", "POST", D, {"title": "t", "body": "b", "target_unit_ids": [d.grid_b.id]}
                   ).status_code == 404
    assert not Directive.objects.filter(title="t").exists()


# ---------------------------------------------------------------------------------------- exports


def test_cap_exports_are_valid_xml_of_the_right_type(world, as_user, schema):
    d = world
    r = as_user("grid_a", "GET", f"{D}/{d.directive.pk}/cap.xml")
    assert r.status_code == 200 and r["Content-Type"] == "application/xml; charset=utf-8"
    root = valid(schema, r.content)
    assert text(root, "cap:msgType") == "Alert"
    r = as_user("grid_a", "GET", f"{D}/{d.directive.pk}/cap.xml?type=Update")
    assert r.status_code == 409 and r.json()["field"] == "type"  # not updated (yet)
    assert as_user("grid_a", "GET", f"{D}/{d.directive.pk}/cap.xml?type=Ack").status_code == 422

    r = as_user("grid_a", "GET", f"{D}/receipts/{d.loop.pk}/ack.xml")
    assert r.status_code == 409 and r.json()["field"] == "receipt"  # not signed (yet)
    as_user("grid_a", "POST", f"{D}/receipts/{d.loop.pk}/sign")
    r = as_user("commander", "GET", f"{D}/receipts/{d.loop.pk}/ack.xml")
    ack = valid(schema, r.content)
    assert text(ack, "cap:msgType") == "Ack"
    assert text(ack, "cap:references").split(",")[1] == text(root, "cap:identifier")

    as_user("township_a", "POST", f"{D}/{d.directive.pk}/update", {"urgency": "urgent"})
    update = valid(schema, as_user("grid_a", "GET", f"{D}/{d.directive.pk}/cap.xml").content)
    assert text(update, "cap:msgType") == "Update"
    as_user("township_a", "POST", f"{D}/{d.directive.pk}/cancel", {"reason": "撤回"})
    cancel = valid(schema, as_user("grid_a", "GET", f"{D}/{d.directive.pk}/cap.xml").content)
    assert text(cancel, "cap:msgType") == "Cancel"
    assert len(text(cancel, "cap:references").split(" ")) == 2


def test_the_readiness_report_shows_only_ones_own_part(world, as_user):
    d = world
    commander = as_user("commander", "GET", f"{D}/{d.directive.pk}/readiness").json()["rows"]
    assert {r["unit_id"] for r in commander} >= {d.township_a.id, d.community_a.id, d.grid_a.id}
    grid = as_user("grid_a", "GET", f"{D}/{d.directive.pk}/readiness").json()["rows"]
    assert [r["unit_id"] for r in grid] == [d.grid_a.id]


def test_the_readiness_workbook_downloads(world, as_user):
    r = as_user("community_a", "GET", f"{D}/{world.directive.pk}/readiness.xlsx")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert "attachment" in r["Content-Disposition"]
    ws = load_workbook(io.BytesIO(r.content)).active
    names = [row[1] for row in ws.iter_rows(min_row=5, values_only=True)]
    assert names == [world.community_a.name, world.compound_a.name, world.grid_a.name]


# ---------------------------------------------------------------------------------------- query counts


@pytest.fixture
def crowded(world):
    """Many directives, units and households in branch A."""
    d = world
    for i in range(4):
        compound = create_unit(d.community_a, f"扩展小区{i}", "compound")
        grid = create_unit(compound, f"扩展小区{i}网格", "grid")
        for j in range(6):
            create_household(grid, f"扩展小区{i}-{j}")
    for j in range(25):
        create_household(d.grid_a, f"锦悦小区9号楼{j}室")
    for i in range(6):
        issue_in_a(d, title=f"通知{i}")
    d.directive = issue_in_a(d, title="大通知")
    return d


@pytest.mark.parametrize("url", [
    lambda d: f"{D}?",
    lambda d: f"{D}/{d.directive.pk}/units?parent={d.community_a.id}&",
    lambda d: f"{D}/{d.directive.pk}/households?",
], ids=["directives", "units", "households"])
def test_lists_run_a_fixed_number_of_queries_whatever_the_page_size(crowded, client, url):
    d = crowded
    assert_list_queries_fixed(client, d.users["township_a"], lambda limit: f"{url(d)}limit={limit}", most=10)


def test_households_can_be_filtered_by_status(world, as_user):
    d = world
    as_user("grid_a", "POST", f"{D}/{d.directive.pk}/marks",
            {"household_ids": [d.household_a.id], "status": "reached", "method": "wechat"})
    j = as_user("township_a", "GET", f"{D}/{d.directive.pk}/households?status=reached").json()
    assert [(h["household_id"], h["method"]) for h in j["items"]] == [(d.household_a.id, "wechat")]
    assert as_user("township_a", "GET", f"{D}/{d.directive.pk}/households?status=pending").json()["total"] == 0
    assert Reach.objects.filter(directive=d.directive, status=ReachStatus.REACHED).count() == 1


def test_openapi_document_describes_the_xml_and_excel_responses(client):
    doc = client.get(f"{BASE}/openapi.json").json()
    cap_op = doc["paths"][f"{D}/{{id}}/cap.xml"]["get"]
    assert "application/xml" in cap_op["responses"]["200"]["content"]
    xlsx_op = doc["paths"][f"{D}/{{id}}/readiness.xlsx"]["get"]
    assert any("spreadsheetml" in c for c in xlsx_op["responses"]["200"]["content"])
    for path, ops in doc["paths"].items():
        if path.startswith(D):
            for method, op in ops.items():
                assert op["security"] and "401" in op["responses"], (method, path)


def test_the_list_filters_by_status_and_exercise(world, as_user):
    d = world
    drill = issue_in_a(d, title="演练", is_exercise=True)
    as_user("township_a", "POST", f"{D}/{d.directive.pk}/close", {"reason": "结束"})

    def ids(url):
        return [i["id"] for i in as_user("township_a", "GET", url).json()["items"]]

    assert ids(f"{D}?exercise=true") == [drill.pk]
    assert ids(f"{D}?status=closed") == [d.directive.pk]
    assert ids(f"{D}?status=issued&exercise=false") == []
    assert as_user("township_a", "GET", f"{D}?status=lost").status_code == 422
