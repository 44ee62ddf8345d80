"""Every field-force page for an insider and an outsider at every level, and what the public pages do."""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from bihuan.core.roles import Perm
from bihuan.forces import links
from bihuan.forces.actions import (
    do_answer_swap,
    do_assign_shift,
    do_create_place,
    do_create_post,
    do_create_task,
    do_create_team,
    do_publish_notice,
    do_request_swap,
)
from bihuan.forces.models import Helper, HelperStatus
from bihuan.testing import assert_route_access, url_names

from .helpers import active_helper


@pytest.fixture
def ctx(district):
    d = district
    helper = active_helper(d.community_a, "周卫国", kind="veteran")
    post = do_create_post(d.compound_a, name="锦悦小区大门", kind="gate", acting_user=None)
    now = timezone.now()
    shift = do_assign_shift(post, helper=helper, starts_at=now + dt.timedelta(hours=30),
                            ends_at=now + dt.timedelta(hours=34), acting_user=None)
    place = do_create_place(d.compound_a, name="锦悦小区垃圾收集点", kind="garbage", acting_user=None)
    notice = do_publish_notice(d.community_a, title="鼓楼社区核酸检测通知", body="明早八点在广场采样。", acting_user=None)
    other = active_helper(d.community_a, "吴建军")
    swap = do_answer_swap(do_request_swap(shift, to_helper=other, helper=helper), helper=other, accept=True)
    team = do_create_team(d.community_a, name="橄榄绿志愿服务队", leader=helper, members=[other], acting_user=None)
    task = do_create_task(d.community_a, kind="disinfection", title="锦悦小区垃圾点消杀", helper=helper,
                          due_at=now + dt.timedelta(hours=5), places=[place.pk], households=[d.household_a.pk],
                          acting_user=None)
    return SimpleNamespace(d=d, helper=helper, post=post, shift=shift, place=place, notice=notice, swap=swap,
                           team=team, task=task)


# route name -> (method, url, data, permission, status when allowed, kind); kind "community" / "compound": an
# object of that unit, which the units below it do not see either.
ROUTES = {
    "forces:home": ("get", lambda c: reverse("forces:home") + f"?unit={c.d.community_a.id}", None, Perm.VIEW_REGISTER,
                    200, "community"),
    "forces:helpers": ("get", lambda c: reverse("forces:helpers") + f"?unit={c.d.community_a.id}", None,
                       Perm.VIEW_REGISTER, 200, "community"),
    "forces:decide": ("post", lambda c: reverse("forces:decide", args=[c.helper.pk]), {"approve": "1"},
                      Perm.MANAGE_STAFF, 302, "community"),
    "forces:helper_status": ("post", lambda c: reverse("forces:helper_status", args=[c.helper.pk]),
                             {"status": "active"}, Perm.MANAGE_STAFF, 302, "community"),
    "forces:helper_reveal": ("post", lambda c: reverse("forces:helper_reveal", args=[c.helper.pk]),
                             {"reason": "call"}, Perm.REVEAL_PERSONAL, 200, "community"),
    "forces:certificate": ("get", lambda c: reverse("forces:certificate", args=[c.helper.pk]), None,
                           Perm.VIEW_REGISTER, 200, "community"),
    "forces:poster": ("get", lambda c: reverse("forces:poster", args=[c.d.community_a.pk]), None, Perm.VIEW_REGISTER,
                      200, "community"),
    "forces:group_code": ("post", lambda c: reverse("forces:group_code", args=[c.d.compound_a.pk]), None,
                          Perm.MANAGE_STAFF, 302, "compound"),
    "forces:roster": ("get", lambda c: reverse("forces:roster", args=[c.post.pk]), None, Perm.VIEW_REGISTER, 200,
                      "compound"),
    "forces:roster_upload": ("post", lambda c: reverse("forces:roster_upload") + f"?unit={c.d.community_a.id}", None,
                             Perm.MANAGE_STAFF, 400, "community"),
    "forces:tap": ("post", lambda c: reverse("forces:tap", args=[c.shift.pk]), {"on": "1"}, Perm.CARE, 302, "compound"),
    "forces:places": ("get", lambda c: reverse("forces:places") + f"?unit={c.d.compound_a.id}", None,
                      Perm.VIEW_REGISTER, 200, "compound"),
    "forces:log": ("post", lambda c: reverse("forces:log", args=[c.place.pk]),
                   {"agent": "含氯消毒液", "concentration": "500mg/L"}, Perm.CARE, 302, "compound"),
    "forces:disinfection_export": ("get", lambda c: reverse("forces:disinfection_export") + f"?unit={c.d.compound_a.id}",
                                   None, Perm.VIEW_REGISTER, 200, "compound"),
    "forces:teams": ("get", lambda c: reverse("forces:teams") + f"?unit={c.d.community_a.id}", None,
                     Perm.VIEW_REGISTER, 200, "community"),
    "forces:team": ("get", lambda c: reverse("forces:team", args=[c.team.pk]), None, Perm.VIEW_REGISTER, 200,
                    "community"),
    "forces:posts": ("get", lambda c: reverse("forces:posts") + f"?unit={c.d.community_a.id}", None,
                     Perm.VIEW_REGISTER, 200, "community"),
    "forces:post_edit": ("post", lambda c: reverse("forces:post_edit", args=[c.post.pk]), {
        "name": "锦悦小区大门", "kind": "gate", "start_hour": "6", "end_hour": "22", "required": "2", "active": "1"},
        Perm.MANAGE_STAFF, 302, "compound"),
    "forces:copy_week": ("post", lambda c: reverse("forces:copy_week") + f"?unit={c.d.community_a.id}",
                         {"week": "this"}, Perm.MANAGE_STAFF, 302, "community"),
    "forces:swap_decide": ("post", lambda c: reverse("forces:swap_decide", args=[c.swap.pk]), {"approve": "0"},
                           Perm.MANAGE_STAFF, 302, "compound"),
    "forces:tasks": ("get", lambda c: reverse("forces:tasks") + f"?unit={c.d.community_a.id}", None,
                     Perm.VIEW_REGISTER, 200, "community"),
    "forces:task": ("get", lambda c: reverse("forces:task", args=[c.task.pk]), None, Perm.VIEW_REGISTER, 200,
                    "community"),
    "forces:hours": ("get", lambda c: reverse("forces:hours") + f"?unit={c.d.community_a.id}&by=team", None,
                     Perm.VIEW_REGISTER, 200, "community"),
    "forces:place_edit": ("post", lambda c: reverse("forces:place_edit", args=[c.place.pk]), {
        "name": "锦悦小区垃圾收集点", "kind": "garbage", "every_hours": "12", "active": "1"}, Perm.MANAGE_STAFF, 302,
        "compound"),
    "forces:notices": ("get", lambda c: reverse("forces:notices") + f"?unit={c.d.community_a.id}", None,
                       Perm.VIEW_REGISTER, 200, "community"),
    "forces:notice_sheets": ("get", lambda c: reverse("forces:notice_sheets", args=[c.notice.pk])
                             + f"?unit={c.d.community_a.id}", None, Perm.VIEW_REGISTER, 200, "community"),
}
PUBLIC = {"forces_join", "forces_helper", "forces_helper_certificate", "forces_notice"}
OWN = {"forces:mine"}  # a helper's login: redirects to their own page (tested below)


def test_every_forces_page_is_in_the_access_matrix():
    names = {n for n in url_names() if n.startswith("forces:") or n in PUBLIC}
    assert names == set(ROUTES) | PUBLIC | OWN, "add new pages to ROUTES"


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_insiders_see_branch_a_and_outsiders_get_404(client, ctx, route):
    d = ctx.d

    def refused(username):  # a community's (compound's) object: the units below it get 404 as well
        level = {"community": d.community_a.level, "compound": d.compound_a.level}.get(ROUTES[route][5], 99)
        return 404 if d.users[username].staff.unit.level > level else None

    assert_route_access(client, ctx, route, ROUTES[route], secrets=(ctx.helper.name, ctx.d.compound_a.name),
                        refused=refused)


def test_a_volunteer_reports_in_by_the_poster_and_reporting_again_merges(client, ctx):
    d = ctx.d
    url = reverse("forces_join", args=[links.join_token(d.community_a.pk)])
    assert client.get(url).status_code == 200
    response = client.post(url, {"name": "孙晓燕", "phone": "139 1234 0001", "kind": "youth"})
    assert response.status_code == 302 and "new=1" in response["Location"]
    helper = Helper.objects.get(name="孙晓燕")
    assert helper.status == HelperStatus.PENDING and helper.phone_masked == "139****0001"
    page = client.get(response["Location"]).content.decode()
    assert "报到已提交" in page and "等待社区审核" in page
    again = client.post(url, {"name": "孙晓燕", "phone": "13912340001", "kind": "youth", "skills": "驾驶"})
    assert "merged=1" in again["Location"] and Helper.objects.filter(name="孙晓燕").count() == 1
    # A bad phone or ID number: a clear error, nothing written.
    bad = client.post(url, {"name": "王五", "phone": "12345", "kind": "volunteer"}).content.decode()
    assert "手机号格式不正确" in bad
    bad = client.post(url, {"name": "王五", "phone": "13912340002", "id_number": "141002198001011234",
                            "kind": "volunteer"}).content.decode()
    assert "身份证号不正确" in bad and not Helper.objects.filter(name="王五").exists()
    # A forged poster link opens nothing.
    assert client.get(reverse("forces_join", args=[f"{d.community_a.pk}-forged"])).status_code == 404


def test_a_notice_counts_readings_per_building_without_storing_the_reader(client, ctx):
    url = links.notice_path(ctx.notice.pk, ctx.d.compound_a.pk, "3")
    for _ in range(2):
        page = client.get(url).content.decode()
    assert "核酸检测通知" in page and "<script" not in page
    assert ctx.notice.views.get().count == 2


def test_a_community_pauses_and_resumes_a_helper_and_a_paused_helper_gets_no_shift(client, ctx):
    d = ctx.d
    client.force_login(d.users["community_a"])
    page = client.get(reverse("forces:helpers") + f"?unit={d.community_a.id}").content.decode()
    assert f'data-testid="pause-{ctx.helper.pk}"' in page
    client.post(reverse("forces:helper_status", args=[ctx.helper.pk]), {"status": "paused"})
    ctx.helper.refresh_from_db()
    assert ctx.helper.status == HelperStatus.PAUSED
    start = timezone.now() + dt.timedelta(days=3)
    with pytest.raises(Exception, match="不在岗"):
        do_assign_shift(ctx.post, helper=ctx.helper, starts_at=start, ends_at=start + dt.timedelta(hours=2),
                        acting_user=None)
    client.post(reverse("forces:helper_status", args=[ctx.helper.pk]), {"status": "active"})
    ctx.helper.refresh_from_db()
    assert ctx.helper.status == HelperStatus.ACTIVE
