"""API tokens say what they may do: read only unless made for writing, within one unit's subtree if so made, until
they expire; the user sees them on /me/tokens/ with the last time each was used, and revokes them there. A token
is never accepted in a query string."""

import datetime as dt

from django.utils import timezone

from bihuan.core.actions import do_create_api_token
from bihuan.core.models import ApiToken, AuditEntry

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
