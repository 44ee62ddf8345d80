import threading
from datetime import timedelta
from email.header import decode_header, make_header

import pytest
from django.db import connection
from django.utils import timezone

from bihuan.core.worker import TASKS, run_tick
from bihuan.notify import conf
from bihuan.notify.channels import message_id
from bihuan.notify.models import Channel, InboxItem, Message, RobotRequest, State
from bihuan.notify.outbox import enqueue, notify_unit_robots, notify_user
from bihuan.notify.tasks import deliver, deliver_direct, marker
from bihuan.notify.testing import DINGTALK_SECRET, dingtalk_sign


def test_deliver_is_registered_with_the_worker():
    assert TASKS["notify.deliver"] is deliver


def test_inbox_delivery_creates_the_inbox_item_and_marks_the_message_sent(district):
    user = district.users["grid_a"]
    message = enqueue(Channel.INBOX, key="in:1", subject="催办", body="两项待办", user=user)
    assert not InboxItem.objects.exists()  # nothing is delivered before the worker runs
    assert run_tick("w1")["notify.deliver"] == 1
    item = InboxItem.objects.get()
    assert (item.user, item.message_id, item.read_at) == (user, message.pk, None)
    message.refresh_from_db()
    assert message.state == State.SENT and message.sent_at and message.attempts == 1 and not message.locked_by
    assert deliver("w1") == 0  # nothing left, and no second inbox item


def test_email_is_delivered_to_a_real_smtp_server_with_a_message_id_from_the_key(district, notify_env,
                                                                                 smtp_server):
    message = enqueue(Channel.EMAIL, key="mail:1", subject="催办：两项待办已超时", body="请尽快反馈。",
                      address="grid_a@yaodu.example.cn")
    deliver("w1")
    message.refresh_from_db()
    assert message.state == State.SENT, message.last_error
    [received] = smtp_server.messages
    assert received["to"] == ["grid_a@yaodu.example.cn"]
    assert received["from"] == "bihuan@yaodu.example.cn"
    assert received["message"]["Message-ID"] == message_id("mail:1", "yaodu.example.cn")
    subject = str(make_header(decode_header(received["message"]["Subject"])))
    assert subject == "催办：两项待办已超时"
    assert received["message"].get_payload(decode=True).decode().strip() == "请尽快反馈。"


def test_sms_goes_to_the_gateway_with_the_idempotency_key_as_id(district, notify_env, endpoints):
    message = enqueue(Channel.SMS, key="sms:1", subject="催办", body="两项待办已超时", address="13812345678")
    deliver("w1")
    message.refresh_from_db()
    assert message.state == State.SENT, message.last_error
    [request] = endpoints.to("/sms")
    assert request["json"] == {"id": "sms:1", "phone": "13812345678", "text": "【催办】两项待办已超时"}


def test_long_sms_text_is_cut_to_the_configured_length(district, notify_env, endpoints, monkeypatch):
    monkeypatch.setenv("BIHUAN_SMS_MAX_CHARS", "40")
    enqueue(Channel.SMS, key="sms:long", subject="催办", body="很长" * 100, address="13812345678")
    deliver("w1")
    [request] = endpoints.to("/sms")
    assert len(request["json"]["text"]) == 40 and request["json"]["text"].endswith("…")


def test_notify_user_reaches_inbox_email_and_phone(district, notify_env, endpoints, smtp_server):
    user = district.users["community_a"]
    user.email = "community_a@yaodu.example.cn"
    user.save()
    notify_user(user, key="remind:9", subject="催办", body="一项待办已超时")
    assert deliver("w1") == 3
    assert InboxItem.objects.filter(user=user).count() == 1
    assert len(smtp_server.messages) == 1
    assert [r["json"]["phone"] for r in endpoints.to("/sms")] == [user.staff.reveal_phone()]
    assert set(Message.objects.values_list("state", flat=True)) == {State.SENT}


def test_wecom_robot_gets_a_markdown_message(district, robots, endpoints):
    notify_unit_robots(district.community_a, key="d:1", subject="新指令", body="请今日 18:00 前签收")
    assert deliver("w1") == 1
    [request] = endpoints.to("/wecom")
    mark = marker(f"d:1:robot:{robots[0].pk}")
    assert request["json"] == {"msgtype": "markdown", "markdown": {
        "content": f'**新指令**\n请今日 18:00 前签收\n<font color="comment">{mark}</font>'}}
    assert Message.objects.get().state == State.SENT


def test_dingtalk_robot_request_is_signed_as_dingtalk_documents(district, robots, endpoints):
    notify_unit_robots(district.village_b, key="d:2", subject="新指令", body="请签收")
    assert deliver("w1") == 1
    message = Message.objects.get()
    assert message.state == State.SENT, message.last_error
    [request] = endpoints.to("/dingtalk")
    mark = marker(message.idempotency_key)
    assert request["json"] == {"msgtype": "text", "text": {"content": f"【新指令】\n请签收\n{mark}"}}
    timestamp = request["query"]["timestamp"][0]
    assert request["query"]["sign"] == [dingtalk_sign(timestamp, DINGTALK_SECRET)]


def test_dingtalk_with_a_wrong_secret_is_refused_and_retried(district, robots, endpoints):
    _wecom, dingtalk = robots
    dingtalk.set_secret("SECwrong")
    dingtalk.save()
    notify_unit_robots(district.village_b, key="d:3", subject="s", body="b")
    deliver("w1")
    message = Message.objects.get()
    assert message.state == State.FAILED and "310000" in message.last_error


def test_failure_is_retried_with_exponential_backoff_then_dead(district, notify_env, endpoints, clock,
                                                               monkeypatch):
    monkeypatch.setenv("BIHUAN_NOTIFY_MAX_ATTEMPTS", "4")
    endpoints.fail_next("/sms", *[(503, {"error": "busy"})] * 4)
    message = enqueue(Channel.SMS, key="sms:retry", subject="s", body="b", address="13812345678")
    waits = []
    for attempt in range(1, 5):
        assert deliver("w1") == 1
        message.refresh_from_db()
        assert message.attempts == attempt and "HTTP 503" in message.last_error
        if attempt < 4:
            assert message.state == State.FAILED
            waits.append((message.next_attempt_at - clock.now).total_seconds())
            assert deliver("w1") == 0  # not due yet
            clock.advance(waits[-1])
    assert waits == [30, 60, 120]  # 30 s · 2^(attempts-1)
    assert message.state == State.DEAD
    clock.advance(3600)
    assert deliver("w1") == 0 and len(endpoints.to("/sms")) == 4


def test_backoff_is_capped():
    config = conf.load()
    assert [config.backoff(n) for n in (1, 2, 3)] == [30, 60, 120]
    assert config.backoff(50) == 3600


def test_message_recovers_after_a_failure(district, notify_env, endpoints, clock):
    endpoints.fail_next("/sms", (500, {}))
    message = enqueue(Channel.SMS, key="sms:heal", subject="s", body="b", address="13812345678")
    deliver("w1")
    clock.advance(30)
    deliver("w1")
    message.refresh_from_db()
    assert (message.state, message.attempts, message.last_error) == (State.SENT, 2, "")


def test_a_request_the_gateway_rejects_as_malformed_is_dead_at_once(district, notify_env, endpoints):
    endpoints.fail_next("/sms", (400, {"error": "bad phone"}))
    message = enqueue(Channel.SMS, key="sms:bad", subject="s", body="b", address="13812345678")
    deliver("w1")
    message.refresh_from_db()
    assert message.state == State.DEAD and message.attempts == 1


def test_an_unreachable_endpoint_is_a_failed_attempt(district, notify_env, monkeypatch):
    from bihuan.notify.testing import free_port

    monkeypatch.setenv("BIHUAN_SMS_URL", f"http://127.0.0.1:{free_port()}/sms")
    message = enqueue(Channel.SMS, key="sms:down", subject="s", body="b", address="13812345678")
    deliver("w1")
    message.refresh_from_db()
    assert message.state == State.FAILED and "127.0.0.1" in message.last_error


def test_25_messages_for_one_robot_go_out_as_one_digest(district, robots, endpoints):
    for n in range(25):
        notify_unit_robots(district.community_a, key=f"remind:{n}", subject=f"催办 {n}", body=f"第 {n} 项待办已超时")
    assert deliver("w1") == 25
    [request] = endpoints.to("/wecom")
    content = request["json"]["markdown"]["content"]
    assert content.startswith("**共 25 条通知**")
    assert all(f"第 {n} 项待办已超时" in content for n in range(25))
    assert Message.objects.filter(state=State.SENT).count() == 25
    assert list(RobotRequest.objects.values_list("messages", "ok")) == [(25, True)]


def test_a_robot_gets_at_most_20_requests_a_minute(district, robots, endpoints, clock, monkeypatch):
    """With digests that hold one message each (a small size limit), 25 messages need 25 requests:
    20 go out now, 5 wait for the window without counting as failed attempts."""
    monkeypatch.setenv("BIHUAN_ROBOT_MAX_BYTES", "200")
    for n in range(25):
        notify_unit_robots(district.community_a, key=f"r:{n}", subject=f"催办 {n}", body="待办已超时" * 8)
    assert deliver("w1") == 20
    assert len(endpoints.to("/wecom")) == 20
    waiting = Message.objects.exclude(state=State.SENT)
    assert waiting.count() == 5 and set(waiting.values_list("state", "attempts")) == {(State.PENDING, 0)}
    clock.advance(30)
    assert deliver("w1") == 0 and len(endpoints.to("/wecom")) == 20
    clock.advance(31)
    assert deliver("w1") == 5
    assert len(endpoints.to("/wecom")) == 25
    assert not Message.objects.exclude(state=State.SENT).exists()


def test_requests_already_made_in_the_last_minute_count_against_the_limit(district, robots, endpoints, clock):
    wecom, _dingtalk = robots
    RobotRequest.objects.bulk_create(
        [RobotRequest(robot=wecom, at=clock.now - timedelta(seconds=s)) for s in range(40, 60)])
    notify_unit_robots(district.community_a, key="full", subject="s", body="b")
    assert deliver("w1") == 0 and not endpoints.to("/wecom")
    clock.advance(2)  # the requests made 58 and 59 s ago leave the window
    assert deliver("w1") == 1 and len(endpoints.to("/wecom")) == 1


def test_a_failed_digest_counts_one_attempt_for_each_of_its_messages(district, robots, endpoints):
    endpoints.fail_next("/wecom", (200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    for n in range(3):
        notify_unit_robots(district.community_a, key=f"f:{n}", subject="s", body=f"{n}")
    assert deliver("w1") == 3
    assert set(Message.objects.values_list("state", "attempts")) == {(State.FAILED, 1)}
    assert "45009" in Message.objects.first().last_error


def test_messages_of_a_deleted_robot_are_dead(district, robots):
    wecom, _dingtalk = robots
    notify_unit_robots(district.community_a, key="gone", subject="s", body="b")
    wecom.delete()
    deliver("w1")
    assert Message.objects.get().state == State.DEAD


def test_a_worker_whose_lease_ran_out_does_not_send_what_another_worker_took(district, notify_env, endpoints,
                                                                            clock, monkeypatch):
    """Worker A claims a batch, then stalls past its lease; worker B claims the same rows and sends them.
    When A wakes up its lease renewal fails, so A skips them: every message reaches the gateway once."""
    from bihuan.notify import tasks

    for n in range(6):
        enqueue(Channel.SMS, key=f"lease:{n}", subject="s", body="b", address="13812345678")
    config = conf.load()
    real_claim = tasks.claim
    state = {"stalled": False}

    def claim_then_stall(queryset, **kw):
        rows = real_claim(queryset, **kw)
        if kw["owner"] == "A" and rows and not state["stalled"]:
            state["stalled"] = True
            clock.advance(tasks.lease_seconds(config) + 1)  # A's lease runs out while it "hangs"
            assert deliver_direct("B", config) == 6  # B takes over everything
        return rows

    monkeypatch.setattr(tasks, "claim", claim_then_stall)
    assert deliver_direct("A", config) == 0
    ids = [r["json"]["id"] for r in endpoints.to("/sms")]
    assert sorted(ids) == sorted(f"lease:{n}" for n in range(6))
    assert Message.objects.filter(state=State.SENT).count() == 6


def test_two_workers_taking_turns_never_send_a_message_twice(district, notify_env, endpoints, monkeypatch):
    """Worker A is in the middle of its batch when worker B runs a whole round: B takes only what A has not
    claimed, and both finish with each message sent exactly once."""
    from bihuan.notify import channels, tasks

    for n in range(30):
        enqueue(Channel.SMS, key=f"turns:{n}", subject="s", body="b", address="13812345678")
    config = conf.load()
    real_send = channels.send_sms
    b_sent = []

    b_running = []

    def send_and_let_b_run(config_, **kw):
        real_send(config_, **kw)
        if len(b_sent) < 2 and not b_running:  # A has just sent one: B runs a round of 5 in between
            b_running.append(True)
            b_sent.append(deliver_direct("B", config_, batch=5, max_messages=5))
            b_running.clear()

    monkeypatch.setattr(tasks, "send_sms", send_and_let_b_run)
    a_sent = deliver_direct("A", config, batch=5)
    ids = [r["json"]["id"] for r in endpoints.to("/sms")]
    assert len(ids) == len(set(ids)) == 30
    assert b_sent == [5, 5] and a_sent == 20
    assert Message.objects.filter(state=State.SENT).count() == 30


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_send_a_message_twice(notify_env, endpoints):
    """Four workers run the task at the same time, each with its own database connection."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("many")
    for n in range(120):
        enqueue(Channel.SMS, key=f"conc:{n}", subject="s", body="b", address="13812345678")
        enqueue(Channel.INBOX, key=f"conc-in:{n}", subject="s", body="b", user=user)
    errors = []
    start = threading.Barrier(4)

    def worker(owner):
        try:
            start.wait(10)
            for _ in range(5):
                deliver_direct(owner, conf.load(), batch=7)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    ids = [r["json"]["id"] for r in endpoints.to("/sms")]
    assert len(ids) == len(set(ids)) == 120
    assert InboxItem.objects.filter(user=user).count() == 120
    assert Message.objects.filter(state=State.SENT).count() == 240
    assert timezone.now() > Message.objects.order_by("-sent_at").first().sent_at
