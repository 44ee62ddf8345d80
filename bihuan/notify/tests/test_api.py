"""/api/v1/notify: the access matrix over every route, preferences, robots (write-only secrets) and the test
message's delivery state."""

import pytest

from bihuan.core.roles import PERMISSIONS
from bihuan.notify.access import MANAGE_ROBOTS
from bihuan.notify.actions import do_create_robot
from bihuan.notify.models import Preference, Robot
from bihuan.notify.tasks import deliver
from bihuan.testing import api_routes, route_id

N = "/api/v1/notify"


@pytest.fixture
def world(district, endpoints):
    d = district
    d.robot_a = do_create_robot(unit=d.compound_a, kind="wecom", name="锦悦小区物业群",
                                webhook_url=endpoints.url("/wecom?key=robot-key"), acting_user=None)
    d.robot_b = do_create_robot(unit=d.village_b, kind="wecom", name="东羊村群",
                                webhook_url=endpoints.url("/wecom?key=robot-key"), acting_user=None)
    return d


def manages_compound_a(d, name) -> bool:
    return d.compound_a.path.startswith(d.users[name].staff.unit.path)


# (method, path) -> (url(d), body, status when allowed, who: "anyone" | "robot admin of compound A")
MATRIX = {
    ("GET", "/notify/preferences"): (lambda d: f"{N}/preferences", None, 200, "anyone"),
    ("PUT", "/notify/preferences"): (lambda d: f"{N}/preferences",
                                     {"email": True, "sms": False, "quiet_start": "22:00", "quiet_end": "07:00"},
                                     200, "anyone"),
    ("GET", "/notify/robots"): (lambda d: f"{N}/robots?unit={d.compound_a.pk}", None, 200, "admin"),
    ("POST", "/notify/robots"): (lambda d: f"{N}/robots", {"unit_id": "COMPOUND_A", "kind": "wecom", "name": "新群",
                                                           "webhook_url": "https://qyapi.example.cn/s?key=1",
                                                           "events": ["directive"]}, 201, "admin"),
    ("PATCH", "/notify/robots/{id}"): (lambda d: f"{N}/robots/{d.robot_a.pk}", {"events": ["loop.opened:push"]},
                                       200, "admin"),
    ("POST", "/notify/robots/{id}/test"): (lambda d: f"{N}/robots/{d.robot_a.pk}/test", None, 202, "admin"),
}


def test_every_notify_route_is_in_the_access_matrix():
    assert api_routes("notify") == set(MATRIX)


@pytest.mark.parametrize("route", sorted(MATRIX), ids=route_id)
def test_insiders_reach_compound_a_robots_and_outsiders_get_404(world, as_user, route):
    d = world
    url_of, body, ok, who = MATRIX[route]
    if body and body.get("unit_id") == "COMPOUND_A":
        body = {**body, "unit_id": d.compound_a.pk}
    for name in d.insiders + d.outsiders:
        role = d.users[name].staff.role
        if who == "anyone":
            expected = ok
        elif MANAGE_ROBOTS not in PERMISSIONS[role]:
            expected = 403
        else:
            expected = ok if manages_compound_a(d, name) else 404
        response = as_user(name, route[0], url_of(d), body)
        assert response.status_code == expected, (name, response.content[:300])
        assert b"robot-key" not in response.content


def test_preferences_round_trip_and_refusals_name_the_field(world, as_user):
    assert as_user("grid_a", "GET", f"{N}/preferences").json() == {
        "email": True, "sms": True, "quiet_start": None, "quiet_end": None}
    response = as_user("grid_a", "PUT", f"{N}/preferences", {"email": False, "sms": True, "quiet_start": "22:00"})
    assert response.status_code == 400 and response.json()["field"] == "quiet_end"
    response = as_user("grid_a", "PUT", f"{N}/preferences",
                       {"email": False, "sms": True, "quiet_start": "22:00", "quiet_end": "07:00"})
    assert response.json() == {"email": False, "sms": True, "quiet_start": "22:00:00", "quiet_end": "07:00:00"}
    assert Preference.objects.get(user=world.users["grid_a"]).email is False


def test_a_robot_created_through_the_api_is_masked_and_its_filter_checked(world, as_user):
    response = as_user("community_a", "POST", f"{N}/robots", {
        "kind": "dingtalk", "name": "社区群", "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=t0k",
        "secret": "SECs", "events": ["directive", "loop.opened:control"]})
    assert response.status_code == 201, response.content
    j = response.json()
    assert (j["unit_id"], j["webhook_masked"], j["signed"]) == (world.community_a.pk,
                                                               "https://oapi.dingtalk.com/robot/send", True)
    assert "t0k" not in response.content.decode() and "SECs" not in response.content.decode()
    response = as_user("community_a", "POST", f"{N}/robots", {
        "kind": "wecom", "name": "x", "webhook_url": "https://q.example.cn/?key=1", "events": ["Not An Event!"]})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][2] == "events"  # the schema's pattern


def test_the_test_message_state_is_read_back_from_the_robot_list(world, as_user, endpoints):
    response = as_user("community_a", "POST", f"{N}/robots/{world.robot_a.pk}/test")
    assert response.status_code == 202 and response.json()["state"] == "pending"
    deliver("w1")
    robots = as_user("community_a", "GET", f"{N}/robots").json()
    [a] = [r for r in robots if r["id"] == world.robot_a.pk]
    assert a["last_test"]["state"] == "sent" and len(endpoints.to("/wecom")) == 1
    assert {r["id"] for r in robots} == {world.robot_a.pk}  # the sibling branch's robot is not listed


def test_deactivating_through_the_api(world, as_user):
    response = as_user("township_a", "PATCH", f"{N}/robots/{world.robot_a.pk}", {"active": False})
    assert response.status_code == 200 and response.json()["active"] is False
    assert not Robot.objects.get(pk=world.robot_a.pk).active
    assert as_user("township_a", "POST", f"{N}/robots/{world.robot_a.pk}/test").status_code == 400
