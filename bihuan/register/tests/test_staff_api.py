"""/api/v1/staff: the access matrix over every route, refusals in the one 400 shape, a fixed number of queries."""

from __future__ import annotations

import pytest

from bihuan.core.roles import PERMISSIONS, Perm, Role
from bihuan.register.models import Staff
from bihuan.testing import api_routes, assert_list_queries_fixed, create_staff, route_id

BASE = "/api/v1/staff"


def _extra(d):
    staff = Staff.objects.filter(user__username="grid_a2").first()
    return staff or create_staff(d.grid_a, "grid_a2", Role.BUILDING_LEADER)


_n = iter(range(10**6))

# route -> (permission, url of a branch-A object, body (a function of d, new per request), status when allowed)
MATRIX = {
    ("GET", ""): (Perm.VIEW_REGISTER, lambda d: f"{BASE}?unit={d.grid_a.id}", None, 200),
    ("GET", "/{id}"): (Perm.VIEW_REGISTER, lambda d: f"{BASE}/{_extra(d).id}", None, 200),
    ("POST", ""): (Perm.MANAGE_STAFF, lambda d: BASE, lambda d: {
        "unit_id": d.grid_a.id, "username": f"api{next(_n)}", "name": "新网格员", "role": "grid_worker"}, 201),
    ("PATCH", "/{id}"): (Perm.MANAGE_STAFF, lambda d: f"{BASE}/{_extra(d).id}", lambda d: {"name": "改名"}, 200),
    ("POST", "/{id}/deactivate"): (Perm.MANAGE_STAFF, lambda d: f"{BASE}/{_extra(d).id}/deactivate",
                                   lambda d: {"reason": "matrix"}, 200),
}


def test_every_staff_route_is_in_the_access_matrix():
    assert {(m, p.removeprefix("/staff")) for m, p in api_routes("staff")} == set(MATRIX)


@pytest.mark.parametrize("route", sorted(MATRIX), ids=route_id)
def test_insiders_reach_branch_a_staff_and_outsiders_get_404(district, as_user, route):
    perm, url_of, body_of, ok = MATRIX[route]
    for name in district.insiders + district.outsiders:
        role = district.users[name].staff.role
        response = as_user(name, route[0], url_of(district), body_of(district) if body_of else None)
        if name in district.outsiders:
            expected = 404  # the unit or person is looked up first: an outsider learns nothing
        else:
            expected = ok if perm in PERMISSIONS[role] else 403
        assert response.status_code == expected, (name, response.content)


def test_an_outsiders_staff_list_never_shows_branch_a_people(district, as_user):
    j = as_user("township_b", "GET", f"{BASE}?limit=200").json()
    names = {s["username"] for s in j["items"]}
    assert names and not names & {"township_a", "community_a", "property_a", "grid_a"}
    assert all("****" in s["phone_masked"] for s in j["items"])


def test_creating_returns_the_first_password_once_and_refusals_have_one_shape(district, as_user):
    response = as_user("community_a", "POST", BASE, {"unit_id": district.grid_a.id, "username": "apiuser",
                                                     "name": "接口新人", "role": "grid_worker",
                                                     "household_ids": [district.household_a.id]})
    assert response.status_code == 201, response.content
    j = response.json()
    assert j["first_password"] and j["must_change_password"] and j["households"] == 1
    again = as_user("community_a", "GET", f"{BASE}/{j['id']}").json()
    assert "first_password" not in again
    refused = as_user("property_a", "POST", BASE, {"unit_id": district.grid_a.id, "username": "x2",
                                                   "name": "越权", "role": "community_staff"})
    assert refused.status_code == 409 and refused.json()["field"] == "role"  # no post for it at a grid
    moved = as_user("community_a", "PATCH", f"{BASE}/{j['id']}", {"unit_id": district.compound_a.id,
                                                                   "role": "property_manager"})
    assert moved.status_code == 200 and moved.json()["unit"]["id"] == district.compound_a.id


def test_a_sibling_admin_cannot_patch_branch_a_staff(district, as_user):
    grid_a = district.users["grid_a"].staff
    response = as_user("township_b", "PATCH", f"{BASE}/{grid_a.id}", {"name": "改名"})
    assert response.status_code == 404
    assert Staff.objects.get(pk=grid_a.pk).name == "grid_a"


def test_the_staff_list_runs_a_fixed_number_of_queries(client, district):
    assert_list_queries_fixed(client, district.users["commander"], lambda limit: f"{BASE}?limit={limit}", most=8)
