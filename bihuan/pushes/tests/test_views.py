"""Every pushed-list page, for an insider and an outsider at every level, and what the pages do."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bihuan.core.models import AuditEntry
from bihuan.core.roles import Perm
from bihuan.loops.models import Loop, LoopState
from bihuan.pushes.actions import do_accept_transfer, do_return_transfer, do_transfer
from bihuan.pushes.models import Outcome, PushedPerson, Transfer, TransferState, Verification
from bihuan.testing import HX, assert_route_access, url_names

from .helpers import assert_one_owner, loop_of, make_batch, push, routed


@pytest.fixture
def ctx(district):
    """Branch A: a person at grid A, two people transferred from village B to grid A (to accept, to return);
    the office's queue: one unmatched person."""
    d = district
    [person, queued, b1, b2] = routed(d, {"name": "王建国", "resident": d.resident_a, "phone": "13812345678"},
                                      {"name": "无址人", "address": "某某路88号"},
                                      {"name": "东羊甲", "address": "屯里镇东羊村"},
                                      {"name": "东羊乙", "address": "屯里镇东羊村"})
    t_accept = do_transfer(b1, d.grid_a, "住锦悦小区", acting_user=d.users["village_b"])
    t_return = do_transfer(b2, d.grid_a, "住锦悦小区", acting_user=d.users["village_b"])
    return SimpleNamespace(d=d, person=person, queued=queued, b1=b1, b2=b2, t_accept=t_accept, t_return=t_return)


# route name -> (method, url, data, permission, expected status when allowed, kind)
# kind: "scoped" (a branch-A object: outsiders get 404), "unscoped" (no branch-A object in the URL).
ROUTES = {
    "pushes:list": ("get", lambda c: reverse("pushes:list") + f"?unit={c.d.grid_a.id}", None, Perm.VERIFY_PUSH,
                    200, "scoped"),
    "pushes:person": ("get", lambda c: reverse("pushes:person", args=[c.person.id]), None, Perm.VERIFY_PUSH, 200,
                      "scoped"),
    "pushes:save": ("post", lambda c: reverse("pushes:save", args=[c.person.id]),
                    {"section": "trip", "origin": "上海市浦东新区", "arrival_date": "2022-06-20"},
                    Perm.VERIFY_PUSH, 200, "scoped"),
    "pushes:call": ("post", lambda c: reverse("pushes:call", args=[c.person.id]), {"result": "no_answer"},
                    Perm.VERIFY_PUSH, 200, "scoped"),
    "pushes:reveal": ("post", lambda c: reverse("pushes:reveal", args=[c.person.id]), {"reason": "核查"},
                      Perm.REVEAL_PERSONAL, 200, "scoped"),
    "pushes:fix_id": ("post", lambda c: reverse("pushes:fix_id", args=[c.person.id]), {"id_number": "bad"},
                      Perm.VERIFY_PUSH, 302, "scoped"),
    "pushes:transfer": ("post", lambda c: reverse("pushes:transfer", args=[c.person.id]),
                        lambda c: {"to_unit": c.d.village_b.id, "reason": "住东羊村"}, Perm.VERIFY_PUSH, 302,
                        "scoped"),
    "pushes:dispatch": ("post", lambda c: reverse("pushes:dispatch", args=[c.queued.id]),
                        lambda c: {"unit": c.d.community_a.id}, Perm.DISPATCH_PUSH, 302, "scoped"),
    "pushes:transfers": ("get", lambda c: reverse("pushes:transfers"), None, Perm.VERIFY_PUSH, 200, "unscoped"),
    "pushes:accept": ("post", lambda c: reverse("pushes:accept", args=[c.t_accept.id]), None, Perm.VERIFY_PUSH,
                      302, "scoped"),
    "pushes:return": ("post", lambda c: reverse("pushes:return", args=[c.t_return.id]), {"reason": "不在本网格"},
                      Perm.VERIFY_PUSH, 302, "scoped"),
    "pushes:dispatch_queue": ("get", lambda c: reverse("pushes:dispatch_queue"), None, Perm.DISPATCH_PUSH, 200,
                              "unscoped"),
    "pushes:ping_pong": ("get", lambda c: reverse("pushes:ping_pong"), None, Perm.VERIFY_PUSH, 200, "unscoped"),
    "pushes:handoff": ("get", lambda c: reverse("pushes:handoff") + f"?unit={c.d.grid_a.id}", None,
                       Perm.VERIFY_PUSH, 200, "scoped"),
}


def _other_matrices() -> set[str]:
    """Route names covered by the ROUTES dict of any other test module of this package (the report and policy
    pages keep their own matrix)."""
    import bihuan.pushes.tests as pkg

    names: set[str] = set()
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("test_") and info.name != "test_views":
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            names |= set(getattr(module, "ROUTES", {}))
    return names


def test_every_pushes_page_is_in_an_access_matrix():
    names = {n for n in url_names() if n.startswith("pushes:")}
    missing = names - set(ROUTES) - _other_matrices()
    assert not missing, f"add these pages to a ROUTES access matrix: {sorted(missing)}"
    assert set(ROUTES) <= names


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_insiders_see_branch_a_and_outsiders_get_404(client, ctx, route):
    assert_route_access(client, ctx, route, ROUTES[route], secrets=("王建国", ctx.d.household_a.address))


def test_anonymous_users_are_sent_to_login(client, ctx):
    response = client.get(reverse("pushes:person", args=[ctx.person.id]))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- the list ----------------------------------------------------------------------------------------------

def test_the_list_counts_and_puts_overdue_people_first_highlighted(client, ctx):
    d = ctx.d
    past = timezone.now() - timedelta(hours=1)
    Loop.objects.filter(pk=loop_of(ctx.person).pk).update(due_at=past)
    client.force_login(d.users["office"])
    page = client.get(reverse("pushes:list")).content.decode()
    assert 'data-testid="overdue"' in page
    assert page.index("王建国") < page.index("东羊甲")
    response = client.get(reverse("pushes:list"), {"status": "overdue"})
    assert response.context["counts"] == {"total": 4, "overdue": 1, "done": 0, "transferring": 2, "open": 4}
    assert [p.name for p in response.context["page"]] == ["王建国"]
    transferring = client.get(reverse("pushes:list"), {"status": "transferring"}).context["page"]
    assert {p.name for p in transferring} == {"东羊甲", "东羊乙"}
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert client.get(reverse("pushes:list"), {"date": yesterday}).context["counts"]["total"] == 0


def test_the_list_runs_a_fixed_number_of_queries(client, ctx):
    d = ctx.d
    client.force_login(d.users["community_a"])
    url = reverse("pushes:list") + f"?unit={d.community_a.id}"
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    routed(d, *[{"address": "鼓楼社区锦悦小区", "name": f"测试{i}"} for i in range(30)])
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.status_code == 200 and len(response.context["page"]) == 31
    assert len(many) == len(few)


# --- a person ----------------------------------------------------------------------------------------------

def test_sections_save_by_htmx_and_errors_name_the_field(client, ctx):
    d = ctx.d
    client.force_login(d.users["grid_a"])
    url = reverse("pushes:save", args=[ctx.person.id])
    response = client.post(url, {"section": "trip", "origin": "上海市浦东新区", "arrival_date": "2022-06-20",
                                 "visited_place": ["上海市浦东新区", ""], "visited_from": ["2022-06-10", ""],
                                 "visited_to": ["2022-06-19", ""]}, **HX)
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="saved"' in page and 'id="status"' in page
    ver = Verification.objects.get(person=ctx.person)
    assert ver.origin == "上海市浦东新区" and ver.visited[0]["to"] == "2022-06-19"
    response = client.post(url, {"section": "outcome", "outcome": "left", "left__left_to": "北京"}, **HX)
    page = response.content.decode()
    assert 'data-testid="error-left_date"' in page and "left_date" in page
    assert 'value="北京"' in page  # what was typed stays
    assert Verification.objects.get(person=ctx.person).outcome == Outcome.VERIFYING
    response = client.post(url, {"section": "outcome", "outcome": "left", "left__left_to": "北京",
                                 "left__left_date": "2022-06-21"}, **HX)
    assert 'data-testid="saved"' in response.content.decode()
    assert loop_of(ctx.person).state == LoopState.REPORTED


def test_the_person_page_shows_the_form_the_outcomes_and_the_recommendation(client, ctx, monkeypatch):
    from bihuan.policy import rules as policy

    monkeypatch.setattr(policy, "recommend", lambda person, ver=None: ("home_isolation", "第九版：中风险区"))
    client.force_login(ctx.d.users["grid_a"])
    page = client.get(reverse("pushes:person", args=[ctx.person.id])).content.decode()
    for testid in ("calls", "sec-trip", "sec-address", "sec-health", "sec-outcome", "transfer", "history",
                   "og-new_control", "og-elsewhere_in_district", "call-no_answer", "reveal"):
        assert f'data-testid="{testid}"' in page, testid
    assert "第九版：中风险区" in page and "138****5678" in page and "13812345678" not in page
    client.post(reverse("pushes:call", args=[ctx.person.id]), {"result": "powered_off"}, **HX)
    page = client.get(reverse("pushes:person", args=[ctx.person.id])).content.decode()
    assert "关机 / 停机" in page


def test_reveal_is_audited(client, ctx):
    client.force_login(ctx.d.users["grid_a"])
    response = client.post(reverse("pushes:reveal", args=[ctx.person.id]), {"reason": "核查电话"})
    assert "tel:13812345678" in response.content.decode()
    assert AuditEntry.objects.get(action="push.person.reveal").target_id == str(ctx.person.id)


# --- transfers and dispatch ----------------------------------------------------------------------------------

def test_a_transfer_through_the_pages_is_signed_by_the_receiver(client, ctx):
    d = ctx.d
    client.force_login(d.users["community_a"])
    response = client.post(reverse("pushes:transfer", args=[ctx.person.id]),
                           {"to_unit": d.village_b.id, "reason": "实际住在东羊村"})
    assert response.status_code == 302
    t = Transfer.objects.get(person=ctx.person)
    client.force_login(d.users["village_b"])
    page = client.get(reverse("pushes:transfers")).content.decode()
    assert f'data-testid="accept-{t.id}"' in page and "实际住在东羊村" in page
    page = client.get(reverse("pushes:person", args=[ctx.person.id])).content.decode()
    assert 'data-testid="incoming"' in page and 'data-testid="save"' not in page  # read-only until signed
    response = client.post(reverse("pushes:accept", args=[t.id]))
    assert response.status_code == 302 and response["Location"] == reverse("pushes:person", args=[ctx.person.id])
    assert Transfer.objects.get(pk=t.pk).state == TransferState.ACCEPTED
    assert 'data-testid="save"' in client.get(response["Location"]).content.decode()
    assert_one_owner(ctx.person)


def test_return_through_the_page_needs_a_reason(client, ctx):
    d = ctx.d
    client.force_login(d.users["grid_a"])
    client.post(reverse("pushes:return", args=[ctx.t_return.id]), {"reason": ""})
    assert Transfer.objects.get(pk=ctx.t_return.pk).state == TransferState.PENDING
    response = client.post(reverse("pushes:return", args=[ctx.t_return.id]), {"reason": "不在本网格"}, **HX)
    assert response.status_code == 200 and "不在本网格" in response.content.decode()
    assert Transfer.objects.get(pk=ctx.t_return.pk).state == TransferState.RETURNED


def test_the_office_dispatches_from_its_queue(client, ctx):
    d = ctx.d
    client.force_login(d.users["office"])
    page = client.get(reverse("pushes:dispatch_queue")).content.decode()
    assert f'data-testid="queued-{ctx.queued.id}"' in page and "未匹配到单位" in page
    assert 'data-testid="dispatch"' in client.get(reverse("pushes:person", args=[ctx.queued.id])).content.decode()
    response = client.post(reverse("pushes:dispatch", args=[ctx.queued.id]), {"unit": d.community_a.id})
    assert response.status_code == 302
    assert PushedPerson.objects.get(pk=ctx.queued.pk).unit == d.community_a
    assert f'data-testid="queued-{ctx.queued.id}"' not in client.get(reverse("pushes:dispatch_queue")).content.decode()


def test_the_ping_pong_list_belongs_to_the_common_parent(client, ctx):
    d = ctx.d
    do_accept_transfer(ctx.t_accept, acting_user=d.users["grid_a"])
    back = do_transfer(ctx.b1, d.village_b, "不是本网格的", acting_user=d.users["grid_a"])
    assert back.ping_pong
    client.force_login(d.users["office"])
    page = client.get(reverse("pushes:ping_pong")).content.decode()
    assert f'data-testid="ping-pong-{back.id}"' in page and "东羊村 → 锦悦小区第1网格 → 东羊村" in page
    client.force_login(d.users["township_a"])
    assert f'data-testid="ping-pong-{back.id}"' not in client.get(reverse("pushes:ping_pong")).content.decode()


def test_the_handoff_export_downloads(client, ctx):
    client.force_login(ctx.d.users["community_a"])
    response = client.get(reverse("pushes:handoff"), {"unit": ctx.d.community_a.id})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert AuditEntry.objects.filter(action="push.handoff.export").exists()


def test_people_pushed_by_an_import_elsewhere_show_under_their_unit(client, ctx):
    d = ctx.d
    batch = make_batch(d.township_a, d.users["township_a"])
    p = push(batch, "赵六", address="鼓楼社区")
    from bihuan.pushes.routing import route_people

    route_people([p.pk], acting_user=d.users["township_a"])
    client.force_login(d.users["community_a"])
    assert "赵六" in client.get(reverse("pushes:list")).content.decode()


def test_the_transfer_lists_run_a_fixed_number_of_queries(client, ctx):
    """Each transfer's status is read from its loop, selected with it: more transfers, no more queries."""
    d = ctx.d
    client.force_login(d.users["grid_a"])
    client.get(reverse("pushes:transfers"))  # warm the session and the caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(url):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    few = count(reverse("pushes:transfers"))
    more = routed(d, *[{"name": f"东羊{i}", "address": "屯里镇东羊村"} for i in range(4)])
    for i, p in enumerate(more):
        t = do_transfer(p, d.grid_a, "住锦悦小区", acting_user=d.users["village_b"])
        do_accept_transfer(t, acting_user=d.users["grid_a"])
        for _ in range(i):  # a longer history for each: sent, returned, …
            do_return_transfer(do_transfer(p, d.village_b, "住东羊村", acting_user=d.users["grid_a"]), "不在本村",
                               acting_user=d.users["village_b"])
        do_transfer(p, d.village_b, "又回东羊村", acting_user=d.users["grid_a"])
    assert count(reverse("pushes:transfers")) == few
    # A person with two transfers and one with eight: the same queries (each transfer's status comes with it).
    assert count(reverse("pushes:person", args=[more[0].id])) == count(reverse("pushes:person", args=[more[3].id]))


def test_the_verification_page_names_the_protocol_edition_it_recommends_from(client, ctx):
    from bihuan.policy.tests.helpers import load_default_protocols

    load_default_protocols()
    client.force_login(ctx.d.users["grid_a"])
    page = client.get(reverse("pushes:person", args=[ctx.person.id])).content.decode()
    assert 'data-testid="protocol-in-force"' in page and "第九版" in page


def test_one_form_one_save_keeps_the_health_data_typed_with_the_outcome(client, district):
    """The walkthrough's data loss: health typed, then 无需管控 chosen — one save keeps both."""
    from bihuan.pushes.models import Outcome, Verification

    person = routed(district, {"name": "一次保存", "address": "锦悦小区3号楼2单元401"})[0]
    client.force_login(district.users["grid_a"])
    response = client.post(reverse("pushes:save", args=[person.pk]), {
        "section": "all", "health_status": "symptoms", "symptoms": ["fever", "cough"], "vaccine_doses": "3",
        "origin": "上海市浦东新区", "outcome": Outcome.NO_CONTROL_NEEDED,
        "no_control_needed__basis": "低风险地区，48小时核酸阴性"},
        HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'data-testid="saved"' in response.content.decode()
    ver = Verification.objects.get(person=person)
    assert ver.outcome == Outcome.NO_CONTROL_NEEDED
    assert ver.health_status == "symptoms" and ver.symptoms == ["fever", "cough"] and ver.vaccine_doses == 3
    assert ver.origin == "上海市浦东新区"


def test_a_refused_save_keeps_everything_typed_on_the_page(client, district):
    from bihuan.pushes.models import Verification

    person = routed(district, {"name": "缺少依据", "address": "锦悦小区3号楼2单元401"})[0]
    client.force_login(district.users["grid_a"])
    page = client.post(reverse("pushes:save", args=[person.pk]), {
        "section": "all", "health_status": "symptoms", "vaccine_doses": "2", "outcome": "no_control_needed",
        "no_control_needed__basis": ""}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="error"' in page
    assert 'value="symptoms" selected' in page  # what was typed is still there
    assert Verification.objects.get(person=person).health_status == ""  # and nothing half-saved
