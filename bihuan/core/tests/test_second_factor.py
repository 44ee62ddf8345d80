"""The second factor (TOTP): a user enrols with a code from their app and gets recovery codes; from then on every
sign-in asks a code after the password (a code works once; a recovery code too); roles that reveal or export
personal data or manage accounts must enrol where it is enforced; enrolment and reset are audited."""

import io

import pyotp
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from bihuan.core import totp
from bihuan.core.models import AuditEntry
from bihuan.notify.models import Message
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


# --- the reset by a unit administrator (the staff page) and by the console: one action ---------------------------

def _reset(client, admin, staff, **data):
    client.force_login(admin)
    return client.post(reverse("register:staff_reset_2fa", args=[staff.pk]), data)


def _told(user) -> list[Message]:
    return list(Message.objects.filter(user=user, subject="您的两步验证已被重置"))


def test_a_unit_admin_resets_a_second_factor_with_a_reason_and_the_person_is_told(client, district):
    d = district
    grid = d.users["grid_a"]
    _enrol(client, grid)
    response = _reset(client, d.users["community_a"], grid.staff, reason="lost", confirm="1")
    assert response.status_code == 302 and response["Location"] == reverse("register:staff_edit",
                                                                            args=[grid.staff.pk])
    assert not totp.enrolled(grid) and not totp.has_factor(grid)
    row = AuditEntry.objects.get(action="totp.reset")
    assert row.actor == d.users["community_a"] and row.target_id == str(grid.pk)
    assert row.changes["reason"].startswith("lost: ")
    [inbox] = [m for m in _told(grid) if m.channel == "inbox"]
    assert "手机丢失或被盗" in inbox.body and "community_a" in inbox.body and "grid_a" in inbox.body
    page = client.get(response["Location"]).content.decode()
    assert "两步验证已重置" in page
    _sign_in(client, "grid_a")
    assert client.get("/").status_code == 200  # no code asked any more: they enrol again when they wish (or must)


def test_free_text_is_a_reason_too(client, district):
    d = district
    grid = d.users["grid_a"]
    _enrol(client, grid)
    _reset(client, d.users["township_a"], grid.staff, reason="", reason_text="换了新手机，本人电话确认", confirm="1")
    assert AuditEntry.objects.get(action="totp.reset").changes["reason"] == "换了新手机，本人电话确认"


@pytest.mark.parametrize("data, message", [({"reason": "lost"}, "请勾选确认"),
                                           ({"reason": "", "reason_text": "  ", "confirm": "1"}, "请选择或填写重置原因")])
def test_a_reset_without_a_reason_or_a_confirmation_is_refused(client, district, data, message):
    d = district
    grid = d.users["grid_a"]
    _enrol(client, grid)
    response = _reset(client, d.users["community_a"], grid.staff, **data)
    assert response.status_code == 302
    assert totp.enrolled(grid) and not AuditEntry.objects.filter(action="totp.reset").exists() and not _told(grid)
    assert message in client.get(response["Location"]).content.decode()


def test_a_reset_is_scoped_and_needs_the_manage_staff_permission(client, district):
    d = district
    grid = d.users["grid_a"]
    _enrol(client, grid)
    assert _reset(client, d.users["village_b"], grid.staff, reason="lost", confirm="1").status_code == 404
    assert _reset(client, d.users["township_b"], grid.staff, reason="lost", confirm="1").status_code == 404
    assert _reset(client, d.users["department"], grid.staff, reason="lost", confirm="1").status_code == 403
    assert totp.enrolled(grid)


def test_nobody_resets_their_own_second_factor_and_nothing_is_reset_twice(client, district):
    d = district
    admin = d.users["community_a"]
    _enrol(client, admin)
    _reset(client, admin, admin.staff, reason="lost", confirm="1")
    assert totp.enrolled(admin)
    grid = d.users["grid_a"]
    response = _reset(client, admin, grid.staff, reason="lost", confirm="1")  # never enrolled
    assert "尚未启用两步验证" in client.get(response["Location"]).content.decode()
    assert not AuditEntry.objects.filter(action="totp.reset").exists()


def test_the_staff_page_shows_the_state_and_offers_the_reset_only_when_there_is_one(client, district):
    d = district
    grid = d.users["grid_a"]
    client.force_login(d.users["community_a"])
    url = reverse("register:staff_edit", args=[grid.staff.pk])
    assert 'data-testid="reset-2fa"' not in client.get(url).content.decode()
    _enrol(client, grid)
    client.force_login(d.users["community_a"])
    page = client.get(url).content.decode()
    assert 'data-testid="reset-2fa"' in page and "已启用" in page and "手机丢失或被盗" in page


def test_the_command_goes_through_the_same_action(client, district):
    user = district.users["grid_a"]
    _enrol(client, user)
    call_command("reset_2fa", "grid_a", "--reason", "lost", stdout=io.StringIO(), stderr=io.StringIO())
    row = AuditEntry.objects.get(action="totp.reset")
    assert row.actor is None and row.changes["reason"].startswith("lost: ")
    assert any("系统管理员" in m.body for m in _told(user))
    with pytest.raises(CommandError, match="尚未启用"):
        call_command("reset_2fa", "grid_a", "--reason", "again", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="reason"):
        call_command("reset_2fa", "grid_a", "--reason", " ", stdout=io.StringIO(), stderr=io.StringIO())
