"""API tokens say what they may do: read only unless made for writing, within one unit's subtree if so made (for
writes as for reads: a narrowed token acts as its subtree's top, never as the account's unit outside it), until
they expire; the user sees them on /me/tokens/ with the last time each was used, and revokes them there. A token
is never accepted in a query string."""

import datetime as dt
import json

from django.utils import timezone

from bihuan.core.actions import do_create_api_token
from bihuan.core.models import ApiToken, AuditEntry
from bihuan.directives.actions import do_issue_directive
from bihuan.directives.models import RECEIPT, Directive, Reach, ReachStatus
from bihuan.loops.models import Loop
from bihuan.pushes.tests.test_api import upload_file

API = "/api/v1"


def _token(user, **kw):
    return do_create_api_token(user=user, name="script", acting_user=user, **kw)


def _auth(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_a_new_token_is_read_only_and_expires(client, district):
    token, key = _token(district.users["township_a"])
    assert not token.can_write and token.expires_at > timezone.now() + dt.timedelta(days=80)
    assert client.get(f"{API}/me", **_auth(key)).status_code == 200
    response = client.post(f"{API}/directives", "{}", content_type="application/json", **_auth(key))
    assert response.status_code == 403
    _, writer = _token(district.users["township_a"], write=True)
    response = client.post(f"{API}/directives", "{}", content_type="application/json", **_auth(writer))
    assert response.status_code not in (401, 403)  # refused for its content (422), not for the token


def test_an_expired_token_is_a_401(client, district):
    token, key = _token(district.users["township_a"])
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client.get(f"{API}/me", **_auth(key)).status_code == 401


def test_a_token_for_a_subtree_sees_only_that_subtree(client, district):
    d = district
    _, whole_key = _token(d.users["commander"])
    _, narrow_key = _token(d.users["commander"], subtree_unit_id=d.township_a.pk)
    everything = {h["id"] for h in client.get(f"{API}/households", **_auth(whole_key)).json()["items"]}
    narrow = {h["id"] for h in client.get(f"{API}/households", **_auth(narrow_key)).json()["items"]}
    assert everything == {d.household_a.pk, d.household_b.pk}
    assert narrow == {d.household_a.pk}
    assert client.get(f"{API}/households/{d.household_b.pk}", **_auth(narrow_key)).status_code == 404


def test_a_token_for_a_unit_outside_the_users_part_is_refused(client, district):
    d = district
    _, key = _token(d.users["township_a"], subtree_unit_id=d.township_b.pk)
    assert client.get(f"{API}/households", **_auth(key)).status_code == 403


def test_a_token_in_the_query_string_is_never_accepted(client, district):
    _, key = _token(district.users["township_a"])
    for name in ("token", "access_token", "api_key", "key"):
        assert client.get(f"{API}/me", {name: key}).status_code == 401
        assert client.get(f"{API}/me", {name: key}, **_auth(key)).status_code == 401


def test_the_tokens_page_creates_shows_last_use_and_revokes(client, district):
    d = district
    user = d.users["community_a"]
    client.force_login(user)
    response = client.post("/me/tokens/", {"name": "日报脚本", "unit": d.compound_a.pk, "days": "30"})
    assert response.status_code == 200
    key = response.context["key"]
    token = ApiToken.objects.get(user=user, name="日报脚本")
    assert token.subtree_unit_id == d.compound_a.pk and not token.can_write
    assert key.encode() in response.content and "从未使用" in client.get("/me/tokens/").content.decode()
    assert client.get(f"{API}/me", **_auth(key)).status_code == 200
    page = client.get("/me/tokens/").content.decode()
    assert timezone.localtime(ApiToken.objects.get(pk=token.pk).last_used_at).strftime("%Y-%m-%d %H:%M") in page
    assert key not in page  # shown once only
    assert client.post(f"/me/tokens/{token.pk}/revoke/").status_code == 302
    assert client.get(f"{API}/me", **_auth(key)).status_code == 401
    assert AuditEntry.objects.filter(action="api_token.revoke").exists()


def test_the_tokens_page_refuses_a_unit_outside_and_another_users_token(client, district):
    d = district
    client.force_login(d.users["community_a"])
    assert client.post("/me/tokens/", {"name": "x", "unit": d.village_b.pk}).status_code == 404
    other, _ = _token(d.users["township_b"])
    assert client.post(f"/me/tokens/{other.pk}/revoke/").status_code == 404
    assert not ApiToken.objects.get(pk=other.pk).revoked


# --- writes through a narrowed token stay in its subtree (register.access.scope_of, the one place) ---------------

def _narrow_writer(d, username="commander", unit=None):
    _, key = _token(d.users[username], write=True, subtree_unit_id=(unit or d.township_a).pk)
    return _auth(key)


def _post(client, url, body, auth):
    return client.post(f"{API}{url}", json.dumps(body), content_type="application/json", **auth)


def test_a_narrowed_write_token_signs_receipts_in_its_subtree_only(client, district):
    d = district
    directive = do_issue_directive(acting_user=d.users["commander"], title="全区核酸筛查", body="今日完成。")
    receipts = {lp.owner_unit_id: lp for lp in Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk)}
    auth = _narrow_writer(d)
    assert _post(client, f"/directives/receipts/{receipts[d.community_a.pk].pk}/sign", {}, auth).status_code == 200
    assert _post(client, f"/directives/receipts/{receipts[d.township_a.pk].pk}/sign", {}, auth).status_code == 200
    for outside in (d.township_b, d.village_b, d.office):
        assert _post(client, f"/directives/receipts/{receipts[outside.pk].pk}/sign", {}, auth).status_code == 404
        assert receipts[outside.pk].state == Loop.objects.get(pk=receipts[outside.pk].pk).state


def test_a_narrowed_write_token_marks_households_of_its_subtree_only(client, district):
    d = district
    directive = do_issue_directive(acting_user=d.users["commander"], title="入户告知", body="请告知每一户。")
    auth = _narrow_writer(d)
    body = {"household_ids": [d.household_a.pk, d.household_b.pk], "status": "reached", "method": "phone"}
    response = _post(client, f"/directives/{directive.pk}/marks", body, auth)
    assert response.status_code == 200 and response.json() == {"changed": 1}
    assert Reach.objects.get(directive=directive, household=d.household_a).status == ReachStatus.REACHED
    assert Reach.objects.get(directive=directive, household=d.household_b).status == ReachStatus.PENDING
    # a directive of branch B only is not there at all for it
    other = do_issue_directive(acting_user=d.users["township_b"], title="屯里镇通知", body="内容")
    assert _post(client, f"/directives/{other.pk}/marks", body, auth).status_code == 404


def test_a_narrowed_write_token_acts_as_its_subtree_never_as_the_accounts_unit_outside_it(client, district):
    d = district
    auth = _narrow_writer(d)
    me = client.get(f"{API}/me", **auth).json()
    assert me["unit"]["id"] == d.district.pk and me["acting_unit"]["id"] == d.township_a.pk
    # a robot for a unit outside the subtree (the account's own unit included) is refused; the default is its top
    robot = {"kind": "wecom", "name": "街道群", "webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}
    assert _post(client, "/notify/robots", {**robot, "unit_id": d.district.pk}, auth).status_code == 404
    assert _post(client, "/notify/robots", {**robot, "unit_id": d.township_b.pk}, auth).status_code == 404
    created = _post(client, "/notify/robots", robot, auth)
    assert created.status_code == 201 and created.json()["unit_id"] == d.township_a.pk
    # no directive in the name of the account's unit, and none for a scope outside
    response = _post(client, "/directives", {"title": "通知", "body": "内容"}, auth)
    assert response.status_code == 400 and response.json()["field"] == "issuer"
    assert not Directive.objects.filter(issuer_unit=d.district).exists()
    # a pushed list is uploaded for the subtree only: its top by default, never the account's unit
    upload = {"file": upload_file(), "source": "省大数据中心"}
    assert client.post(f"{API}/pushes/batches", {**upload, "unit": d.district.pk}, **auth).status_code == 404
    response = client.post(f"{API}/pushes/batches", {"file": upload_file(), "source": "省大数据中心"}, **auth)
    assert response.status_code == 201 and response.json()["unit"]["id"] == d.township_a.pk


def test_an_unnarrowed_token_and_a_department_keep_their_own_unit(client, district):
    d = district
    _, whole = _token(d.users["commander"], write=True)
    me = client.get(f"{API}/me", **_auth(whole)).json()
    assert me["unit"]["id"] == me["acting_unit"]["id"] == d.district.pk
    response = _post(client, "/directives", {"title": "全区通知", "body": "内容"}, _auth(whole))
    assert response.status_code == 201 and response.json()["issuer_unit"]["id"] == d.district.pk
    # a department serves the district without standing above it: narrowed, it still issues as itself, inside
    auth = _narrow_writer(d, "department")
    response = _post(client, "/directives", {"title": "卫健局通知", "body": "内容"}, auth)
    assert response.status_code == 201, response.content
    assert response.json()["issuer_unit"]["id"] == d.department.pk
    assert response.json()["scope_unit"]["id"] == d.township_a.pk
