"""API tokens: created and revoked through actions (audited), stored as hashes, checked on every request."""

from __future__ import annotations

import datetime as dt
import io
import json
import string

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bihuan.core.actions import TokenError, do_create_api_token, do_revoke_api_token
from bihuan.core.api_auth import TOUCH_INTERVAL
from bihuan.core.models import ApiToken, AuditEntry

ME = "/api/v1/me"


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def reveal_url(district) -> str:
    return f"/api/v1/residents/{district.resident_a.id}/reveal"


def test_a_token_is_stored_as_its_hash_only_and_its_creation_is_audited(district):
    user = district.users["grid_a"]
    token, key = do_create_api_token(user=user, name="phone app", acting_user=user)
    assert key.startswith("bh_") and len(key) > 40
    assert token.key_hash == ApiToken.hash_key(key) and token.prefix == key[:8]
    stored = json.dumps(list(ApiToken.objects.values()), default=str)
    assert key not in stored
    entry = AuditEntry.objects.get(action="api_token.create")
    assert entry.actor == user and entry.target_id == str(token.pk)
    assert key not in json.dumps(entry.changes)


def test_a_token_authenticates_its_user(district, client):
    user = district.users["community_a"]
    _, key = do_create_api_token(user=user, name="script", acting_user=user)
    response = client.get(ME, **bearer(key))
    assert response.status_code == 200
    assert response.json()["username"] == "community_a"


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer bh_not-a-real-token", "Token abc", "Basic Zm9vOmJhcg=="])
def test_no_token_or_a_bad_token_is_a_401(district, client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.get(ME, **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="bihuan"'


def test_a_post_with_a_bad_token_is_a_401_not_a_csrf_failure(district):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reveal_url(district), data={"reason": "x"}, content_type="application/json",
                           **bearer("bh_wrong"))
    assert response.status_code == 401


def test_a_revoked_token_is_a_401_and_its_revocation_is_audited(district, client):
    user = district.users["grid_a"]
    token, key = do_create_api_token(user=user, name="lost phone", acting_user=user)
    assert client.get(ME, **bearer(key)).status_code == 200
    do_revoke_api_token(token=token, acting_user=user)
    assert client.get(ME, **bearer(key)).status_code == 401
    assert AuditEntry.objects.filter(action="api_token.revoke", target_id=str(token.pk)).count() == 1
    do_revoke_api_token(token=token, acting_user=user)  # again: nothing changes, nothing is written
    assert AuditEntry.objects.filter(action="api_token.revoke").count() == 1


def test_a_token_of_an_inactive_user_is_a_401(district, client):
    user = district.users["grid_a"]
    _, key = do_create_api_token(user=user, name="x", acting_user=user)
    user.is_active = False
    user.save()
    assert client.get(ME, **bearer(key)).status_code == 401


def test_a_bad_token_is_refused_even_alongside_a_valid_session(district, client):
    client.force_login(district.users["grid_a"])
    assert client.get(ME, **bearer("bh_wrong")).status_code == 401


def test_only_the_user_themselves_or_a_superuser_manage_their_tokens(district, django_user_model):
    grid_worker, other = district.users["grid_a"], district.users["rep_b"]
    with pytest.raises(PermissionDenied):
        do_create_api_token(user=grid_worker, name="x", acting_user=other)
    token, _ = do_create_api_token(user=grid_worker, name="x", acting_user=grid_worker)
    with pytest.raises(PermissionDenied):
        do_revoke_api_token(token=token, acting_user=other)
    admin = django_user_model.objects.create_superuser("admin", password="x")
    do_revoke_api_token(token=token, acting_user=admin)
    with pytest.raises(TokenError, match="^name:"):
        do_create_api_token(user=grid_worker, name="  ", acting_user=grid_worker)


def test_last_used_at_is_written_at_most_once_a_minute(district, client):
    user = district.users["grid_a"]
    token, key = do_create_api_token(user=user, name="x", acting_user=user)
    assert token.last_used_at is None
    client.get(ME, **bearer(key))
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None

    with CaptureQueriesContext(connection) as ctx:
        client.get(ME, **bearer(key))
    assert not [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    token.refresh_from_db()
    assert token.last_used_at == first

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - TOUCH_INTERVAL - dt.timedelta(seconds=1))
    client.get(ME, **bearer(key))
    token.refresh_from_db()
    assert token.last_used_at > first


def test_a_logged_in_session_works_for_reading(district, client):
    client.force_login(district.users["grid_a"])
    assert client.get(ME).json()["username"] == "grid_a"


def test_a_session_write_needs_the_csrf_token(district):
    client = Client(enforce_csrf_checks=True)
    client.force_login(district.users["grid_a"])
    body = json.dumps({"reason": "verification"})
    response = client.post(reveal_url(district), data=body, content_type="application/json")
    assert response.status_code == 403
    assert response.json() == {"detail": "CSRF check failed"}
    assert not AuditEntry.objects.filter(action="resident.reveal").exists()

    # As a page of the web UI would: the CSRF cookie, and its value in the X-CSRFToken header.
    secret = string.ascii_letters[:32]
    client.cookies[settings.CSRF_COOKIE_NAME] = secret
    response = client.post(reveal_url(district), data=body, content_type="application/json",
                           HTTP_X_CSRFTOKEN=secret)
    assert response.status_code == 200
    assert AuditEntry.objects.filter(action="resident.reveal").count() == 1


def test_a_token_needs_no_csrf_token_even_with_a_session_cookie(district):
    user = district.users["grid_a"]
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    _, key = do_create_api_token(user=user, name="x", acting_user=user, write=True)  # a POST needs a writing token
    response = client.post(reveal_url(district), data={"reason": "verification"}, content_type="application/json",
                           **bearer(key))
    assert response.status_code == 200


def test_create_token_command_prints_a_working_key_once(district, client):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_token", "property_a", "--name", "night shift", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert key.startswith("bh_") and "\n" not in key
    assert key not in err.getvalue() and "cannot be shown again" in err.getvalue()
    token = ApiToken.objects.get(key_hash=ApiToken.hash_key(key))
    assert token.name == "night shift" and token.user == district.users["property_a"]
    assert AuditEntry.objects.get(action="api_token.create").actor is None
    assert client.get(ME, **bearer(key)).json()["username"] == "property_a"


def test_create_token_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user"):
        call_command("create_token", "nobody", stdout=io.StringIO(), stderr=io.StringIO())
