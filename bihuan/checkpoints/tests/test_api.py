"""The checkpoints API: every route in an access matrix (insiders reach branch A, outsiders get 404, a role
without the permission 403), registrations posted idempotently, refusals as 400 naming the field."""

import datetime as dt

import pytest

from bihuan.checkpoints.actions import do_register, do_start_campaign, do_submit_self_report
from bihuan.core.roles import PERMISSIONS, Perm
from bihuan.testing import api_routes, make_id_number, route_id

from .conftest import person, today

A = "/api/v1"


@pytest.fixture
def world(ctx):
    d = ctx
    d.registration, _ = do_register(d.checkpoint, token="w", vehicle_type="car", plate="晋L12345",
                                    people=[person()], acting_user=d.users["community_a"])
    d.report = do_submit_self_report({"name": "孙立", "id_number": make_id_number(dt.date(1979, 9, 9)),
                                      "phone": "13900008888", "origin": "太原市", "transport": "car",
                                      "arrival_date": today().isoformat(), "destination": "锦悦小区3号楼2单元401"})
    d.campaign = do_start_campaign(title="排查", since=today(), acting_user=d.users["commander"])
    return d


# (method, path) -> (url of the case, body, permission, status when allowed, scoped to branch A)
MATRIX = {
    ("GET", "/checkpoints"): (lambda d: "/checkpoints", None, Perm.REGISTER_CHECKPOINT, 200, False),
    ("POST", "/checkpoints/{checkpoint_id}/registrations"): (
        lambda d: f"/checkpoints/{d.checkpoint.pk}/registrations",
        {"token": "api-1", "vehicle_type": "car", "plate": "京AD12345",
         "people": [{"name": "甲", "phone": "13900001111", "origin": "太原市", "test_hours": 24}]},
        Perm.REGISTER_CHECKPOINT, 201, True),
    ("GET", "/checkpoints/{checkpoint_id}/registrations"): (
        lambda d: f"/checkpoints/{d.checkpoint.pk}/registrations", None, Perm.REGISTER_CHECKPOINT, 200, True),
    ("GET", "/self-reports"): (lambda d: "/self-reports", None, Perm.VERIFY_PUSH, 200, False),
    ("GET", "/campaigns/{campaign_id}/answers"): (lambda d: f"/campaigns/{d.campaign.pk}/answers", None,
                                                  Perm.MARK_REACH, 200, False),
    ("PUT", "/campaigns/{campaign_id}/households/{household_id}/answer"): (
        lambda d: f"/campaigns/{d.campaign.pk}/households/{d.household_a.pk}/answer", {"present": 2},
        Perm.MARK_REACH, 200, True),
}


def test_every_checkpoints_route_is_in_the_matrix():
    assert api_routes("checkpoints") == set(MATRIX)


@pytest.mark.parametrize("route", sorted(MATRIX), ids=route_id)
def test_insiders_reach_branch_a_and_outsiders_get_404(world, as_user, route):
    d = world
    url, body, perm, ok, scoped = MATRIX[route]
    for name in d.insiders + d.outsiders:
        role = d.users[name].staff.role
        if isinstance(body, dict) and "token" in body:
            body = {**body, "token": f"api-{name}"}
        response = as_user(name, route[0], A + url(d), body)
        from bihuan.register.access import scope_of

        root = scope_of(d.users[name]).root.path
        inside = (d.checkpoint.path if "checkpoint_id" in route[1] else d.household_a.path).startswith(root)
        if scoped and not inside:
            expected = 404  # an outsider, or a unit below the checkpoint's
        else:
            expected = ok if perm in PERMISSIONS[role] else 403
        assert response.status_code == expected, (name, response.content[:200])


def test_a_registration_is_posted_once_whatever_the_retries_and_nothing_clear_comes_back(world, as_user):
    d = world
    id_number = make_id_number(dt.date(1985, 5, 5))
    body = {"token": "gate-7", "vehicle_type": "new_energy", "plate": "晋LD12345",
            "people": [{"name": "司机", "id_number": id_number, "origin": "上海市浦东新区", "test_hours": 24},
                       {"name": "乘客", "phone": "13900002222", "health_code": "red"}]}
    first = as_user("community_a", "POST", f"{A}/checkpoints/{d.checkpoint.pk}/registrations", body)
    again = as_user("community_a", "POST", f"{A}/checkpoints/{d.checkpoint.pk}/registrations", body)
    assert first.status_code == 201 and again.status_code == 200 and first.json()["id"] == again.json()["id"]
    j = first.json()
    assert j["persons"] == 2 and j["abnormal"] == 1 and "高风险区" in j["travellers"][0]["reasons"]
    assert id_number not in first.content.decode() and "13900002222" not in first.content.decode()


def test_a_bad_plate_is_a_400_naming_the_field(world, as_user):
    d = world
    r = as_user("community_a", "POST", f"{A}/checkpoints/{d.checkpoint.pk}/registrations",
                {"token": "x", "vehicle_type": "car", "plate": "晋L123", "people": [{"name": "甲", "phone": "13900001111"}]})
    assert r.status_code == 400 and r.json()["field"] == "plate"


def test_the_registration_endpoints_one_statement_token_check_refuses_as_the_general_one(world, client):
    from bihuan.core.actions import do_revoke_api_token
    from bihuan.core.models import ApiToken
    from bihuan.testing import api_call, bearer

    d = world
    url = f"{A}/checkpoints/{d.checkpoint.pk}/registrations"
    body = {"token": "t-auth", "vehicle_type": "car", "plate": "京AD12345",
            "people": [{"name": "甲", "phone": "13900001111", "origin": "太原市", "test_hours": 24}]}
    assert api_call(client, {"HTTP_AUTHORIZATION": "Bearer bh_nonsense"}, "POST", url, body).status_code == 401
    auth = bearer(d.users["community_a"])
    do_revoke_api_token(token=ApiToken.objects.get(user=d.users["community_a"]), acting_user=d.users["community_a"])
    assert api_call(client, auth, "POST", url, body).status_code == 401
    auth = bearer(d.users["grid_a"])  # below the checkpoint's unit: not found
    assert api_call(client, auth, "POST", url, body).status_code == 404
    user = d.users["office"]
    auth = bearer(user)
    user.is_active = False
    user.save()
    assert api_call(client, auth, "POST", url, body).status_code == 401
    # the commander (whole district) registers; the audit row names the actor and their unit
    response = api_call(client, bearer(d.users["commander"]), "POST", url, body)
    assert response.status_code == 201, response.content
    from bihuan.core.models import AuditEntry

    entry = AuditEntry.objects.get(action="checkpoint.register", target_id=str(response.json()["id"]))
    assert entry.actor_id == d.users["commander"].pk and entry.actor_unit_id == d.users["commander"].staff.unit_id
    assert entry.changes["persons"] == 1 and entry.changes["self_reports"] == 0


def test_a_department_user_takes_the_general_scope(world, as_user):
    d = world
    r = as_user("department", "POST", f"{A}/checkpoints/{d.checkpoint.pk}/registrations",
                {"token": "t-dept", "vehicle_type": "", "people": [{"name": "乙", "phone": "13900003333",
                                                                   "test_hours": 24}]})
    from bihuan.core.roles import Role

    # the department serves the whole district (its scope is the district's): what its role allows
    assert r.status_code == (201 if Perm.REGISTER_CHECKPOINT in PERMISSIONS[Role.DEPARTMENT] else 403), r.content


def test_the_registration_endpoint_keeps_the_tokens_limits_read_only_expired_and_narrowed(world, client):
    """The one-statement check honours what a token may do, as the general one does (core.api_auth)."""
    import datetime as dt

    from django.utils import timezone

    from bihuan.core.actions import do_create_api_token
    from bihuan.core.models import ApiToken
    from bihuan.testing import api_call

    d = world
    user = d.users["commander"]
    url = f"{A}/checkpoints/{d.checkpoint.pk}/registrations"
    body = {"token": "t-limits", "vehicle_type": "", "people": [{"name": "乙", "phone": "13900002222"}]}

    def auth(**kw):
        return {"HTTP_AUTHORIZATION": f"Bearer {do_create_api_token(user=user, name='t', acting_user=user, **kw)[1]}"}

    assert api_call(client, auth(), "POST", url, body).status_code == 403  # read-only
    narrowed = auth(write=True, subtree_unit_id=d.village_b.pk)  # another branch of the district
    assert api_call(client, narrowed, "POST", url, body).status_code == 404
    expired = auth(write=True)
    ApiToken.objects.filter(pk=ApiToken.objects.latest("id").pk).update(expires_at=timezone.now() - dt.timedelta(1))
    assert api_call(client, expired, "POST", url, body).status_code == 401
    assert api_call(client, auth(write=True), "POST", url, body).status_code == 201
