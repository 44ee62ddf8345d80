"""Sign-in resists guessing: accounts and addresses lock after repeated failures (the right password included),
the unit is told, an administrator may unlock; passwords are not guessable; sessions end when idle; demo passwords
are changed at first sign-in outside demo mode."""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from bihuan.core.models import AuditEntry, LoginThrottle
from bihuan.testing import PASSWORD


def sign_in(client, username, password, address="10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_fifty_wrong_passwords_lock_the_account_and_then_the_right_one_is_refused(district, client, settings):
    from bihuan.notify.models import Message

    for _n in range(settings.LOGIN_MAX_FAILURES - 1):
        response = sign_in(client, "grid_a", "wrong-password")
        assert "用户名或密码不正确" in response.content.decode()
    response = sign_in(client, "grid_a", "wrong-password")
    assert "请 15 分钟后再试" in response.content.decode()
    response = sign_in(client, "grid_a", PASSWORD)
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert "请 15 分钟后再试" in response.content.decode()
    assert AuditEntry.objects.filter(action="account.locked").count() == 1
    assert Message.objects.filter(idempotency_key__startswith="account.locked:").exists()  # the unit is told


def test_the_lock_ends_after_the_cool_off(district, client, settings, clock):
    for _n in range(settings.LOGIN_MAX_FAILURES):
        sign_in(client, "grid_a", "wrong-password")
    assert sign_in(client, "grid_a", PASSWORD).status_code == 200
    clock.advance(minutes=settings.LOGIN_LOCK_MINUTES + 1)
    assert sign_in(client, "grid_a", PASSWORD).status_code == 302


def test_an_administrator_unlocks_at_once_and_it_is_audited(district, client, settings):
    for _n in range(settings.LOGIN_MAX_FAILURES):
        sign_in(client, "grid_a", "wrong-password")
    admin = district.users["community_a"]
    client.force_login(admin)
    staff = district.users["grid_a"].staff
    assert client.post(reverse("register:staff_unlock", args=[staff.pk])).status_code == 302
    assert AuditEntry.objects.filter(action="account.unlock", actor=admin).exists()
    client.logout()
    assert sign_in(client, "grid_a", PASSWORD).status_code == 302


def test_one_address_guessing_many_accounts_is_locked(district, client, settings):
    settings.LOGIN_ADDRESS_MAX_FAILURES = 6
    for n in range(6):
        sign_in(client, f"nobody{n}", "wrong-password", address="10.9.9.9")
    assert "分钟后再试" in sign_in(client, "commander", PASSWORD, address="10.9.9.9").content.decode()
    assert sign_in(client, "commander", PASSWORD, address="10.9.9.10").status_code == 302


def test_unknown_and_known_accounts_answer_alike(district, client):
    assert sign_in(client, "no-such-user", "x").content.decode().count("用户名或密码不正确") == 1
    assert sign_in(client, "grid_a", "x").content.decode().count("用户名或密码不正确") == 1
    assert LoginThrottle.objects.filter(key="user:no-such-user").exists()


@pytest.mark.parametrize("password", ["bihuan2022", "grid1grid1", "Bihuan@2022", "aaaaaaaaaaaa", "1234567890",
                                      "grid_a12345"])
def test_guessable_passwords_are_refused(district, password):
    from django.contrib.auth.password_validation import validate_password

    with pytest.raises(ValidationError):
        validate_password(password, district.users["grid_a"])


def test_a_password_holding_ones_phone_is_refused(district):
    from django.contrib.auth.password_validation import validate_password

    user = district.users["grid_a"]
    phone = user.staff.reveal_phone()
    with pytest.raises(ValidationError, match="手机号"):
        validate_password(f"xq{phone}zz", user)
    validate_password("tall-river-73-lamp", user)


def test_a_demo_password_must_be_changed_at_first_sign_in_outside_demo_mode(district, client, settings):
    from bihuan.login import DEMO_PASSWORD

    user = district.users["grid_a"]
    user.set_password(DEMO_PASSWORD)
    user.save()
    settings.DEMO = False
    assert sign_in(client, "grid_a", DEMO_PASSWORD).status_code == 302
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("register:change_password"))


def test_an_idle_session_ends_sooner_at_the_top(district, client, settings):
    settings.SESSION_IDLE_MINUTES, settings.SESSION_IDLE_MINUTES_HIGH = 60, 20
    for name, minutes, alive in (("commander", 25, False), ("grid_a", 25, True), ("grid_a", 61, False)):
        client.logout()
        assert sign_in(client, name, PASSWORD).status_code == 302
        session = client.session
        session["bihuan_seen_at"] = time.time() - minutes * 60
        session.save()
        response = client.get(reverse("home"))
        assert (response.status_code == 200) is alive, (name, minutes)


def test_logging_out_everywhere_ends_the_other_sessions(district, client, settings):
    from django.test import Client

    other = Client()
    assert sign_in(other, "grid_a", PASSWORD).status_code == 302
    assert sign_in(client, "grid_a", PASSWORD).status_code == 302
    time.sleep(0.01)
    assert client.post(reverse("logout_everywhere")).status_code == 302
    session = other.session
    session["bihuan_seen_at"] = time.time() - 120  # the guard looks again after a minute
    session.save()
    assert other.get(reverse("home")).status_code == 302
    assert AuditEntry.objects.filter(action="account.logout_everywhere").exists()
