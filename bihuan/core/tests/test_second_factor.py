"""The second factor (TOTP): a user enrols with a code from their app and gets recovery codes; from then on every
sign-in asks a code after the password (a code works once; a recovery code too); roles that reveal or export
personal data or manage accounts must enrol where it is enforced; enrolment and reset are audited."""

import io

import pyotp
import pytest
from django.core.management import call_command

from bihuan.core import totp
from bihuan.core.models import AuditEntry
from bihuan.testing import PASSWORD


def _enrol(client, user) -> tuple[str, list[str]]:
    client.force_login(user)
    response = client.post("/me/2fa/", {"action": "start"})
    secret = response.context["secret"]
    codes = client.post("/me/2fa/", {"action": "confirm", "code": pyotp.TOTP(secret).now()}).context["codes"]
    return secret, codes


def _sign_in(client, username):
    client.logout()
    return client.post("/login/", {"username": username, "password": PASSWORD})


def test_enrolment_needs_a_matching_code_and_gives_recovery_codes(client, district):
    user = district.users["grid_a"]
    client.force_login(user)
    response = client.post("/me/2fa/", {"action": "start"})
    secret = response.context["secret"]
    assert "<svg" in response.content.decode()
    assert client.post("/me/2fa/", {"action": "confirm", "code": "000000"}).status_code == 400
    assert not totp.enrolled(user)
    response = client.post("/me/2fa/", {"action": "confirm", "code": pyotp.TOTP(secret).now()})
    assert totp.enrolled(user) and len(response.context["codes"]) == totp.RECOVERY_CODES
    assert AuditEntry.objects.filter(action="totp.enrol", actor=user).exists()


def test_an_enrolled_user_gives_a_code_after_the_password_once_per_code(client, district, clock):
    user = district.users["grid_a"]
    secret, _codes = _enrol(client, user)
    response = _sign_in(client, "grid_a")
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 302 and page["Location"].startswith("/login/verify/")
    assert client.get("/api/v1/me").status_code == 403  # the session is no way round the second factor
    assert client.post("/login/verify/", {"code": "123456"}).status_code == 400
    clock.advance(minutes=1)
    code = pyotp.TOTP(secret).at(clock.now)
    assert client.post("/login/verify/", {"code": code, "next": "/directives/"})["Location"] == "/directives/"
    assert client.get("/").status_code == 200
    _sign_in(client, "grid_a")
    assert client.post("/login/verify/", {"code": code}).status_code == 400  # the same code again: refused


def test_a_recovery_code_works_once(client, district):
    user = district.users["grid_a"]
    _secret, codes = _enrol(client, user)
    _sign_in(client, "grid_a")
    assert client.post("/login/verify/", {"code": codes[0]}).status_code == 302
    _sign_in(client, "grid_a")
    assert client.post("/login/verify/", {"code": codes[0]}).status_code == 400
    assert AuditEntry.objects.filter(action="totp.recovery_code").count() == 1


def test_wrong_codes_count_towards_the_lockout(client, district, settings):
    settings.LOGIN_MAX_FAILURES = 3
    _enrol(client, district.users["grid_a"])
    _sign_in(client, "grid_a")
    for _ in range(3):
        client.post("/login/verify/", {"code": "000000"})
    response = client.post("/login/verify/", {"code": "000000"})
    assert "分钟后再试" in response.content.decode()


@pytest.mark.parametrize("username, required", [("commander", True), ("township_a", True), ("grid_a", True),
                                                ("department", False)])
def test_roles_that_reveal_export_or_manage_must_enrol_where_enforced(client, district, settings, username,
                                                                       required):
    settings.TOTP_ENFORCE = True
    client.force_login(district.users[username])
    response = client.get("/directives/")
    if required:
        assert response.status_code == 302 and response["Location"].startswith("/me/2fa/")
        assert client.get("/me/2fa/").status_code == 200
    else:
        assert response.status_code == 200


def test_demo_mode_does_not_enforce_enrolment(client, district, settings):
    settings.TOTP_ENFORCE = False
    client.force_login(district.users["commander"])
    assert client.get("/directives/").status_code == 200


def test_a_reset_removes_the_factor_and_is_audited(client, district):
    user = district.users["grid_a"]
    _enrol(client, user)
    call_command("reset_2fa", "grid_a", "--reason", "手机丢失", stdout=io.StringIO(), stderr=io.StringIO())
    assert not totp.enrolled(user)
    row = AuditEntry.objects.get(action="totp.reset")
    assert row.changes["reason"] == "手机丢失"
    _sign_in(client, "grid_a")
    assert client.get("/").status_code == 200
