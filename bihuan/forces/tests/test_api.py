"""The forces API: every route, an insider of branch A and an outsider; masked personal data; refusals as 400."""

import datetime as dt

import pytest
from django.utils import timezone

from bihuan.forces.actions import (
    do_answer_swap,
    do_assign_shift,
    do_create_place,
    do_create_post,
    do_create_task,
    do_create_team,
    do_report_in,
    do_request_swap,
)
from bihuan.testing import api_routes, route_id

from .helpers import active_helper

B = "/api/v1/forces"


@pytest.fixture
def world(district):
    d = district
    d.helper = active_helper(d.community_a, "周卫国", phone="13912345670")
    d.pending, _ = do_report_in(d.community_a, name="孙晓燕", phone="13912345671", kind="youth")
    d.post = do_create_post(d.community_a, name="鼓楼社区核酸采样点", kind="sampling", acting_user=None)
    d.place = do_create_place(d.compound_a, name="垃圾收集点", kind="garbage", acting_user=None)
    d.other = active_helper(d.community_a, "吴建军", phone="13912345672")
    d.team = do_create_team(d.community_a, name="橄榄绿志愿服务队", leader=d.helper, acting_user=None)
    d.task = do_create_task(d.community_a, kind="publicity", title="鼓楼社区宣传", helper=d.helper,
                            due_at=timezone.now() + dt.timedelta(hours=3), acting_user=None)
    later = start + dt.timedelta(days=1)
    d.shift = do_assign_shift(d.post, helper=d.helper, starts_at=later, ends_at=later + dt.timedelta(hours=4),
                              acting_user=None)
    d.shift2 = do_assign_shift(d.post, helper=d.helper, starts_at=later + dt.timedelta(hours=5),
                               ends_at=later + dt.timedelta(hours=8), acting_user=None)
    d.swap = do_answer_swap(do_request_swap(d.shift, to_helper=d.other, helper=d.helper), helper=d.other,
                            accept=True)
    return d


start = (timezone.now() + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
# (method, path, body, status for a permitted insider, permitted insiders or None = all with VIEW)
MATRIX = {
    ("GET", "/forces/helpers"): lambda d: ("GET", f"{B}/helpers?unit={d.community_a.pk}", None, 200),
    ("GET", "/forces/helpers/{helper_id}"): lambda d: ("GET", f"{B}/helpers/{d.helper.pk}", None, 200),
    ("POST", "/forces/helpers/{helper_id}/decide"): lambda d: ("POST", f"{B}/helpers/{d.pending.pk}/decide",
                                                               {"approve": True}, 200),
    ("POST", "/forces/helpers/{helper_id}/reveal"): lambda d: ("POST", f"{B}/helpers/{d.helper.pk}/reveal",
                                                               {"reason": "call"}, 200),
    ("GET", "/forces/teams"): lambda d: ("GET", f"{B}/teams?unit={d.community_a.pk}", None, 200),
    ("GET", "/forces/posts"): lambda d: ("GET", f"{B}/posts?unit={d.community_a.pk}", None, 200),
    ("GET", "/forces/posts/{post_id}/shifts"): lambda d: ("GET", f"{B}/posts/{d.post.pk}/shifts", None, 200),
    ("POST", "/forces/posts/{post_id}/shifts"): lambda d: ("POST", f"{B}/posts/{d.post.pk}/shifts", {
        "helper_id": d.helper.pk, "starts_at": start.isoformat(), "ends_at": (start + dt.timedelta(hours=4)).isoformat()},
        201),
    ("GET", "/forces/tasks"): lambda d: ("GET", f"{B}/tasks?unit={d.community_a.pk}", None, 200),
    ("GET", "/forces/places"): lambda d: ("GET", f"{B}/places?unit={d.compound_a.pk}", None, 200),
    ("GET", "/forces/logs"): lambda d: ("GET", f"{B}/logs?unit={d.compound_a.pk}", None, 200),
    ("GET", "/forces/rollup"): lambda d: ("GET", f"{B}/rollup?unit={d.community_a.pk}", None, 200),
    ("GET", "/forces/teams/{team_id}"): lambda d: ("GET", f"{B}/teams/{d.team.pk}", None, 200),
    ("POST", "/forces/teams"): lambda d: ("POST", f"{B}/teams", {
        "unit": d.community_a.pk, "name": "鼓楼社区消杀队", "leader_id": d.helper.pk, "member_ids": [d.other.pk]}, 201),
    ("PATCH", "/forces/teams/{team_id}"): lambda d: ("PATCH", f"{B}/teams/{d.team.pk}", {
        "member_ids": [d.helper.pk, d.other.pk]}, 200),
    ("POST", "/forces/posts"): lambda d: ("POST", f"{B}/posts", {
        "unit": d.community_a.pk, "name": "鼓楼社区北门", "kind": "gate", "start_hour": 6, "end_hour": 22}, 201),
    ("PATCH", "/forces/posts/{post_id}"): lambda d: ("PATCH", f"{B}/posts/{d.post.pk}", {"required": 2}, 200),
    ("POST", "/forces/places"): lambda d: ("POST", f"{B}/places", {
        "unit": d.community_a.pk, "name": "社区公厕", "kind": "toilet", "every_hours": 12}, 201),
    ("PATCH", "/forces/places/{place_id}"): lambda d: ("PATCH", f"{B}/places/{d.place.pk}", {"every_hours": 12}, 200),
    ("POST", "/forces/tasks"): lambda d: ("POST", f"{B}/tasks", {
        "unit": d.community_a.pk, "kind": "visit", "title": "走访独居老人", "helper_id": d.helper.pk,
        "due_at": (timezone.now() + dt.timedelta(days=1)).isoformat(), "household_ids": [d.household_a.pk]}, 201),
    ("GET", "/forces/tasks/{task_id}"): lambda d: ("GET", f"{B}/tasks/{d.task.pk}", None, 200),
    ("POST", "/forces/tasks/{task_id}/close"): lambda d: ("POST", f"{B}/tasks/{d.task.pk}/close", {}, 409),  # not reported yet
    ("GET", "/forces/swaps"): lambda d: ("GET", f"{B}/swaps?unit={d.community_a.pk}", None, 200),
    ("POST", "/forces/shifts/{shift_id}/swaps"): lambda d: ("POST", f"{B}/shifts/{d.shift2.pk}/swaps", {
        "to_helper_id": d.other.pk}, 201),
    ("POST", "/forces/swaps/{swap_id}/decide"): lambda d: ("POST", f"{B}/swaps/{d.swap.pk}/decide",
                                                           {"approve": True}, 200),
    ("GET", "/forces/hours"): lambda d: ("GET", f"{B}/hours?unit={d.community_a.pk}&by=team", None, 200),
}
# Community-level objects: the community and the units above it see them (and may act with manage_staff).
SEES = ["commander", "office", "department", "township_a", "community_a"]
MANAGERS = {"commander", "office", "township_a", "community_a"}


def test_the_matrix_covers_every_forces_route():
    assert set(MATRIX) == api_routes("forces")


@pytest.mark.parametrize("route", sorted(MATRIX), ids=route_id)
def test_insiders_reach_branch_a_and_outsiders_get_404(world, as_user, route):
    d = world
    method, url, body, ok = MATRIX[route](d)
    writes = method in ("POST", "PATCH")
    compound_level = "places" in url or "logs" in url
    for name in d.outsiders:
        response = as_user(name, method, url, body)
        assert response.status_code in (403, 404), (name, response.status_code)
        assert "周卫国" not in response.content.decode()
    done = False
    for name in SEES + (["property_a"] if compound_level else []):
        if writes and (name not in MANAGERS or done):
            continue
        response = as_user(name, method, url, body)
        assert response.status_code == ok, (name, response.status_code, response.content[:200])
        done = writes
    assert as_user("grid_a", "GET", f"{B}/helpers/{d.helper.pk}").status_code == 404


def test_helpers_are_masked_and_a_conflicting_shift_is_refused_with_409(world, as_user):
    d = world
    body = as_user("community_a", "GET", f"{B}/helpers/{d.helper.pk}").json()
    assert body["phone_masked"] == "139****5670" and "13912345670" not in str(body)
    shift = {"helper_id": d.helper.pk, "starts_at": start.isoformat(),
             "ends_at": (start + dt.timedelta(hours=4)).isoformat()}
    assert as_user("community_a", "POST", f"{B}/posts/{d.post.pk}/shifts", shift).status_code == 201
    again = as_user("community_a", "POST", f"{B}/posts/{d.post.pk}/shifts", shift)
    assert again.status_code == 409 and "同一时段" in again.json()["detail"]
