import threading

import pytest
from django.db import connection, transaction

from bihuan.core import crypto
from bihuan.notify.models import Channel, Message, State
from bihuan.notify.outbox import enqueue, notify_unit_robots, notify_user


def test_enqueue_with_the_same_key_twice_makes_one_message(district):
    user = district.users["grid_a"]
    first = enqueue(Channel.INBOX, key="k1", subject="催办", body="a", user=user)
    second = enqueue(Channel.INBOX, key="k1", subject="changed", body="b", user=user)
    assert first.pk == second.pk
    assert Message.objects.filter(idempotency_key="k1").count() == 1
    assert Message.objects.get(idempotency_key="k1").subject == "催办"  # the first one wins, unchanged


def test_enqueued_message_is_pending_and_due_now(district):
    message = enqueue(Channel.INBOX, key="k2", subject="s", body="b", user=district.users["grid_a"])
    assert message.state == State.PENDING and message.attempts == 0 and message.is_due


def test_enqueue_rolls_back_with_the_callers_transaction(district):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue(Channel.INBOX, key="k3", subject="s", body="b", user=district.users["grid_a"])
        raise RuntimeError("the action failed")
    assert not Message.objects.filter(idempotency_key="k3").exists()


def test_sms_phone_is_stored_sealed_with_a_masked_copy(district):
    message = enqueue(Channel.SMS, key="k4", subject="s", body="b", address="13812345678")
    assert message.address == "138****5678"
    assert b"13812345678" not in bytes(message.address_sealed)
    assert message.phone() == "13812345678"
    assert message.address_hash == crypto.lookup_hash("phone", "13812345678")


def test_enqueue_refuses_messages_that_could_never_be_delivered(district):
    with pytest.raises(ValueError):
        enqueue(Channel.INBOX, key="k5", subject="s", body="b")
    with pytest.raises(ValueError):
        enqueue(Channel.EMAIL, key="k6", subject="s", body="b", address="not-an-address")
    with pytest.raises(ValueError):
        enqueue(Channel.SMS, key="k7", subject="s", body="b", address="12345")
    with pytest.raises(ValueError):
        enqueue(Channel.WECOM, key="k8", subject="s", body="b", address="999999")


def test_notify_user_enqueues_inbox_email_and_sms_with_channel_keys(district, notify_env):
    user = district.users["grid_a"]
    user.email = "grid_a@yaodu.example.cn"
    user.save()
    messages = notify_user(user, key="remind:1", subject="催办", body="两项待办已超时")
    assert {m.channel: m.idempotency_key for m in messages} == {
        "inbox": "remind:1:inbox", "email": "remind:1:email", "sms": "remind:1:sms"}
    sms = next(m for m in messages if m.channel == Channel.SMS)
    assert sms.phone() == user.staff.reveal_phone() and "****" in sms.address
    assert len(notify_user(user, key="remind:1", subject="催办", body="again")) == 3
    assert Message.objects.count() == 3


def test_notify_user_skips_email_and_sms_when_they_are_not_configured(district, monkeypatch):
    monkeypatch.delenv("BIHUAN_SMTP_HOST", raising=False)
    monkeypatch.delenv("BIHUAN_SMS_URL", raising=False)
    user = district.users["grid_a"]
    user.email = "grid_a@yaodu.example.cn"
    user.save()
    assert [m.channel for m in notify_user(user, key="r", subject="s", body="b")] == ["inbox"]


def test_notify_unit_robots_enqueues_one_message_per_active_robot_of_the_unit(district, robots):
    wecom, dingtalk = robots
    messages = notify_unit_robots(district.community_a, key="directive:7", subject="新指令", body="请签收")
    assert [(m.channel, m.robot_id, m.idempotency_key) for m in messages] == [
        ("wecom", wecom.pk, f"directive:7:robot:{wecom.pk}")]
    wecom.active = False
    wecom.save()
    assert notify_unit_robots(district.community_a, key="directive:8", subject="s", body="b") == []


def test_robot_webhook_and_secret_are_stored_sealed(robots):
    _wecom, dingtalk = robots
    assert b"robot-token" not in bytes(dingtalk.webhook_sealed)
    assert "robot-token" not in dingtalk.webhook_masked
    assert dingtalk.webhook_url().endswith("access_token=robot-token")
    assert dingtalk.secret().startswith("SECtest")


@pytest.mark.django_db(transaction=True)
def test_two_processes_enqueuing_the_same_key_at_once_make_one_row():
    """A holds its transaction open after inserting the key; B's insert waits for A's commit and then
    returns A's row (PostgreSQL: ON CONFLICT DO NOTHING waits; SQLite: B waits for the write lock)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("racer")
    a_inserted, a_may_commit = threading.Event(), threading.Event()
    results, errors = {}, []

    def process_a():
        try:
            with transaction.atomic():
                results["a"] = enqueue(Channel.INBOX, key="race", subject="a", body="", user=user).pk
                a_inserted.set()
                a_may_commit.wait(10)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            a_inserted.set()
            connection.close()

    def process_b():
        try:
            a_inserted.wait(10)
            with transaction.atomic():
                results["b"] = enqueue(Channel.INBOX, key="race", subject="b", body="", user=user).pk
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=process_a), threading.Thread(target=process_b)]
    for t in threads:
        t.start()
    a_inserted.wait(10)
    threading.Timer(0.5, a_may_commit.set).start()  # B is blocked on A by now
    for t in threads:
        t.join(30)
    assert not errors
    assert results["a"] == results["b"]
    assert Message.objects.filter(idempotency_key="race").count() == 1
    assert Message.objects.get(idempotency_key="race").subject == "a"
