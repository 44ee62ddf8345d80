"""The notification pages: my notifications, and the robot pages with their access matrix (insider / outsider
at every level; a unit never sees or edits a sibling's robots)."""

from types import SimpleNamespace

import pytest
from django.urls import reverse

from bihuan.core.models import AuditEntry
from bihuan.core.roles import PERMISSIONS
from bihuan.notify.access import MANAGE_ROBOTS
from bihuan.notify.actions import do_create_robot, do_send_robot_test
from bihuan.notify.models import Message, Preference, Robot, State
from bihuan.notify.tasks import deliver
from bihuan.notify.testing import DINGTALK_SECRET
from bihuan.testing import HX, url_names


@pytest.fixture
def ctx(district, endpoints):
    """A WeCom robot of compound A (branch A, below community A) and one of village B."""
    d = district
    robot_a = do_create_robot(unit=d.compound_a, kind="wecom", name="锦悦小区物业群",
                              webhook_url=endpoints.url("/wecom?key=robot-key"), acting_user=None)
    robot_b = do_create_robot(unit=d.village_b, kind="dingtalk", name="东羊村防控群",
                              webhook_url=endpoints.url("/dingtalk?access_token=robot-token"), secret=DINGTALK_SECRET,
                              acting_user=None)
    return SimpleNamespace(d=d, robot_a=robot_a, robot_b=robot_b, endpoints=endpoints)


# route -> (method, url(ctx), data): each tried as every user of the base district.
ROBOT_ROUTES = {
    "notify:robots": ("get", lambda c: reverse("notify:robots") + f"?unit={c.d.compound_a.pk}", None),
    "notify:robot_edit": ("post", lambda c: reverse("notify:robot_edit", args=[c.robot_a.pk]),
                          {"kind": "wecom", "name": "改名", "events": ["directive.issued"]}),
    "notify:robot_active": ("post", lambda c: reverse("notify:robot_active", args=[c.robot_a.pk]), {"active": "0"}),
    "notify:robot_test": ("post", lambda c: reverse("notify:robot_test", args=[c.robot_a.pk]), None),
    "notify:robot_test_state": ("get", lambda c: reverse("notify:robot_test_state", args=[c.robot_a.pk]), None),
}
OPEN_ROUTES = {"notify:inbox", "notify:mark_read", "notify:preferences"}  # every account, its own data only
OK = {"get": 200, "post": 302}


def test_every_notify_page_is_in_an_access_matrix():
    assert {n for n in url_names() if n.startswith("notify:")} == set(ROBOT_ROUTES) | OPEN_ROUTES


def manages_compound_a(c, username) -> bool:
    """Compound A's robots belong to compound A and every unit above it: their staff with the permission."""
    staff = c.d.users[username].staff
    return c.d.compound_a.path.startswith(staff.unit.path)


@pytest.mark.parametrize("route", sorted(ROBOT_ROUTES))
def test_robot_pages_are_for_the_units_admins_of_the_subtree_only(client, ctx, route):
    method, url_of, data = ROBOT_ROUTES[route]
    for username in ctx.d.insiders + ctx.d.outsiders:
        user = ctx.d.users[username]
        client.force_login(user)
        response = getattr(client, method)(url_of(ctx), data or {})
        if MANAGE_ROBOTS not in PERMISSIONS[user.staff.role]:
            expected = 403
        elif not manages_compound_a(ctx, username):
            expected = 404  # outsiders, and the department (its own unit only) and grid A (below compound A)
        else:
            expected = OK[method]
        assert response.status_code == expected, (route, username, response.status_code)
        if response.status_code == 200:
            assert b"robot-key" not in response.content  # the token in the webhook URL is never shown


def test_a_unit_cannot_see_or_edit_a_siblings_robots(client, ctx):
    d = ctx.d
    client.force_login(d.users["township_b"])
    assert client.get(reverse("notify:robots") + f"?unit={d.community_a.pk}").status_code == 404
    assert client.post(reverse("notify:robot_edit", args=[ctx.robot_a.pk]), {"name": "x"}).status_code == 404
    page = client.get(reverse("notify:robots")).content.decode()
    assert "东羊村防控群" in page and "锦悦小区物业群" not in page  # its own subtree's robot only
    client.force_login(d.users["community_a"])
    page = client.get(reverse("notify:robots")).content.decode()
    assert "锦悦小区物业群" in page and "东羊村防控群" not in page


def test_adding_a_robot_seals_its_webhook_and_shows_it_masked(client, ctx):
    d = ctx.d
    client.force_login(d.users["community_a"])
    response = client.post(reverse("notify:robots"), {
        "unit": d.community_a.pk, "kind": "dingtalk", "name": "鼓楼社区防控群",
        "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=secret-token-123",
        "secret": "SECabc", "events": ["directive.issued", "loop.opened:control"]})
    assert response.status_code == 302
    robot = Robot.objects.get(name="鼓楼社区防控群")
    assert (robot.unit, robot.events, robot.secret()) == (d.community_a, ["directive.issued", "loop.opened:control"],
                                                          "SECabc")
    page = client.get(response["Location"]).content.decode()
    assert "https://oapi.dingtalk.com/robot/send?…" in page and "secret-token-123" not in page
    assert "新指令下发、管控：异常打卡、服务请求、核酸检测" in page and "已加签" in page
    entry = AuditEntry.objects.get(action="notify.create_robot", target_id=str(robot.pk))
    assert "secret-token-123" not in str(entry.changes) and "SECabc" not in str(entry.changes)


def test_a_robot_form_with_a_bad_webhook_is_refused_beside_the_field(client, ctx):
    client.force_login(ctx.d.users["community_a"])
    response = client.post(reverse("notify:robots"), {"kind": "wecom", "name": "群", "webhook_url": "ftp://x"})
    assert response.status_code == 400 and 'data-testid="error-webhook_url"' in response.content.decode()
    response = client.post(reverse("notify:robots"), {"kind": "wecom", "name": "群", "secret": "SECx",
                                                      "webhook_url": "https://qyapi.weixin.qq.com/x?key=1"})
    assert response.status_code == 400 and 'data-testid="error-secret"' in response.content.decode()
    assert not Robot.objects.filter(name="群").exists()


def test_editing_keeps_the_webhook_when_left_blank_and_deactivating_stops_it(client, ctx):
    client.force_login(ctx.d.users["community_a"])
    url = reverse("notify:robot_edit", args=[ctx.robot_a.pk])
    assert client.post(url, {"kind": "wecom", "name": "物业群（新）", "events": ["directive.issued"]}).status_code == 302
    ctx.robot_a.refresh_from_db()
    assert ctx.robot_a.name == "物业群（新）" and ctx.robot_a.webhook_url().endswith("key=robot-key")
    client.post(reverse("notify:robot_active", args=[ctx.robot_a.pk]), {"active": "0"})
    ctx.robot_a.refresh_from_db()
    assert not ctx.robot_a.active
    response = client.post(reverse("notify:robot_test", args=[ctx.robot_a.pk]), **HX)
    assert response.status_code == 400  # a switched-off robot cannot be tested
    assert AuditEntry.objects.filter(action="notify.update_robot", target_id=str(ctx.robot_a.pk)).count() == 2


def test_the_test_button_enqueues_a_message_the_worker_delivers_and_the_page_shows_its_state(client, ctx):
    client.force_login(ctx.d.users["property_a"])
    response = client.post(reverse("notify:robot_test", args=[ctx.robot_a.pk]), **HX)
    assert response.status_code == 200 and 'data-state="pending"' in response.content.decode()
    assert 'hx-trigger="every 2s"' in response.content.decode()  # the fragment polls while pending
    assert not ctx.endpoints.to("/wecom")  # the worker sends it, not the request
    assert deliver("w1") == 1
    [request] = ctx.endpoints.to("/wecom")
    assert "测试消息" in request["json"]["markdown"]["content"]
    assert "锦悦小区" in request["json"]["markdown"]["content"]
    state = client.get(reverse("notify:robot_test_state", args=[ctx.robot_a.pk])).content.decode()
    assert 'data-state="sent"' in state and "every 2s" not in state
    page = client.get(reverse("notify:robots") + f"?unit={ctx.d.compound_a.pk}").content.decode()
    assert 'data-state="sent"' in page


def test_a_failing_robot_test_shows_the_error(client, ctx):
    ctx.endpoints.fail_next("/wecom", (200, {"errcode": 93000, "errmsg": "invalid webhook url"}))
    do_send_robot_test(ctx.robot_a, acting_user=ctx.d.users["community_a"])
    deliver("w1")
    assert Message.objects.get().state == State.FAILED
    client.force_login(ctx.d.users["community_a"])
    state = client.get(reverse("notify:robot_test_state", args=[ctx.robot_a.pk])).content.decode()
    assert 'data-state="failed"' in state and "93000" in state


def test_the_robot_page_runs_a_fixed_number_of_queries(client, ctx, django_assert_max_num_queries):
    d = ctx.d
    for n in range(12):
        robot = do_create_robot(unit=d.compound_a, kind="wecom", name=f"群{n}",
                                webhook_url="https://qyapi.example.cn/send?key=k", acting_user=None)
        do_send_robot_test(robot, acting_user=None)
    client.force_login(d.users["community_a"])
    client.get(reverse("notify:robots"))
    with django_assert_max_num_queries(12):
        response = client.get(reverse("notify:robots"))
    assert response.content.decode().count('data-testid="robot-') >= 13


# ---- my notifications ----------------------------------------------------------------------------------

def test_my_notifications_page_saves_channels_and_quiet_hours(client, district, notify_env):
    user = district.users["grid_a"]
    client.force_login(user)
    page = client.get(reverse("notify:preferences")).content.decode()
    assert "我的通知设置" in page and user.staff.phone_masked in page
    response = client.post(reverse("notify:preferences"), {"email": "on", "quiet_start": "22:00",
                                                           "quiet_end": "07:00"})
    assert response.status_code == 302
    p = Preference.objects.get(user=user)
    assert (p.email, p.sms, f"{p.quiet_start:%H:%M}", f"{p.quiet_end:%H:%M}") == (True, False, "22:00", "07:00")
    page = client.get(reverse("notify:preferences")).content.decode()
    assert 'value="22:00"' in page and "通知设置已保存" in page
    assert AuditEntry.objects.filter(action="notify.set_preferences", actor=user).exists()


def test_quiet_hours_need_both_ends(client, district):
    client.force_login(district.users["grid_a"])
    response = client.post(reverse("notify:preferences"), {"quiet_start": "22:00"})
    assert response.status_code == 400 and 'data-testid="error-quiet_end"' in response.content.decode()
    assert not Preference.objects.exists()


def test_every_account_reaches_its_own_settings_page(client, district):
    for username in district.insiders + district.outsiders:
        client.force_login(district.users[username])
        assert client.get(reverse("notify:preferences")).status_code == 200
    client.logout()
    assert client.get(reverse("notify:preferences")).status_code == 302
