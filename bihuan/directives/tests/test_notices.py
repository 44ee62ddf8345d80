"""Told at once: issuing, updating and cancelling a directive puts a message in the outbox for the responsible
people of every receiving unit, once per version, whatever crashes and re-runs of the fan-out happen."""

from __future__ import annotations

from collections import Counter

import pytest
from django.urls import reverse

from bihuan.directives import fanout
from bihuan.directives.actions import do_cancel_directive, do_issue_directive, do_update_directive
from bihuan.directives.models import RECEIPT, Directive, FanoutState, Urgency
from bihuan.loops.models import Loop
from bihuan.notify.models import Channel, Message
from bihuan.register.models import Staff


def receiving_staff(directive) -> set[int]:
    units = Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk).values("owner_unit_id")
    return set(Staff.objects.filter(unit_id__in=units).values_list("user_id", flat=True))


def inbox(directive, what: str) -> Counter:
    """Inbox messages of one notice of the directive, per recipient."""
    rows = Message.objects.filter(channel=Channel.INBOX,
                                  idempotency_key__startswith=f"directive:{directive.pk}:v")
    return Counter(m.user_id for m in rows if m.idempotency_key.split(":")[3] == what)


def test_issuing_tells_every_receiving_unit_at_once(district):
    d = district
    directive = do_issue_directive(acting_user=d.users["commander"], title="全员核酸", body="今日完成")
    people = receiving_staff(directive)
    assert {d.users["grid_a"].pk, d.users["rep_b"].pk, d.users["township_b"].pk} <= people
    assert d.users["commander"].pk not in people  # the issuer's own unit has no receipt
    assert inbox(directive, "issued") == Counter(dict.fromkeys(people, 1))
    message = Message.objects.get(idempotency_key=f"directive:{directive.pk}:v1:issued:u{d.users['grid_a'].pk}:inbox")
    assert message.subject == "新指令：全员核酸" and message.body == "今日完成"
    assert Directive.objects.get(pk=directive.pk).notify_cursor == max(
        Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk).values_list("owner_unit_id", flat=True))


def test_a_directive_to_part_of_the_district_tells_only_that_part(district):
    d = district
    directive = do_issue_directive(acting_user=d.users["township_a"], title="街道消杀", body="明早八点")
    assert set(inbox(directive, "issued")) == {d.users[u].pk for u in ("community_a", "property_a", "grid_a")}


def test_updating_and_cancelling_tell_every_receiving_unit_once_per_version(district):
    d = district
    directive = do_issue_directive(acting_user=d.users["commander"], title="全员核酸", body="今日完成")
    people = receiving_staff(directive)
    do_update_directive(directive=directive, acting_user=d.users["commander"], body="改为明日完成")
    do_update_directive(directive=directive, acting_user=d.users["commander"], title="全员核酸（二）")
    do_cancel_directive(directive=directive, reason="疫情解除", acting_user=d.users["commander"])
    keys = set(Message.objects.filter(channel=Channel.INBOX, user_id=d.users["grid_a"].pk)
               .values_list("idempotency_key", flat=True))
    grid = d.users["grid_a"].pk
    assert keys == {f"directive:{directive.pk}:v1:issued:u{grid}:inbox",
                    f"directive:{directive.pk}:v2:updated:u{grid}:inbox",
                    f"directive:{directive.pk}:v3:updated:u{grid}:inbox",
                    f"directive:{directive.pk}:v3:cancelled:u{grid}:inbox"}
    assert inbox(directive, "updated") == Counter(dict.fromkeys(people, 2))
    assert inbox(directive, "cancelled") == Counter(dict.fromkeys(people, 1))
    cancelled = Message.objects.get(idempotency_key=f"directive:{directive.pk}:v3:cancelled:u{grid}:inbox")
    assert cancelled.subject == "指令撤销：全员核酸（二）" and cancelled.body == "疫情解除"


def test_the_pages_tell_them_too(client, district):
    d = district
    client.force_login(d.users["township_a"])
    response = client.post(reverse("directives:new"), {
        "title": "街道消杀", "body": "明早八点", "urgency": "normal", "sign_minutes": 30, "reach_hours": 24,
        "reminder_minutes": 30, "reminder_limit": 3})
    assert response.status_code == 302
    directive = Directive.objects.get(title="街道消杀")
    assert inbox(directive, "issued")[d.users["grid_a"].pk] == 1
    client.post(reverse("directives:update", args=[directive.pk]),
                {"title": "街道消杀", "body": "改到下午", "urgency": "urgent"})
    client.post(reverse("directives:cancel", args=[directive.pk]), {"reason": "重复"})
    assert inbox(directive, "updated")[d.users["grid_a"].pk] == 1
    assert inbox(directive, "cancelled")[d.users["grid_a"].pk] == 1


def test_an_urgent_directive_goes_by_sms_to_every_responsible_person(district, monkeypatch):
    monkeypatch.setenv("BIHUAN_SMS_URL", "http://127.0.0.1:9/sms")
    monkeypatch.setenv("BIHUAN_SMS_TOKEN", "t")
    calls = []
    real = fanout.notify_units

    def spy(unit_ids, **kw):
        calls.append((sorted(unit_ids), kw["event"], kw["urgent"]))
        return real(unit_ids, **kw)

    monkeypatch.setattr(fanout, "notify_units", spy)
    d = district
    directive = do_issue_directive(acting_user=d.users["commander"], title="紧急封控", body="立即执行",
                                   urgency=Urgency.EXTRA_URGENT)
    units = sorted(Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk).values_list("owner_unit_id", flat=True))
    assert calls == [(units, "directive.issued", True)]
    sms = set(Message.objects.filter(channel=Channel.SMS, idempotency_key__startswith=f"directive:{directive.pk}:")
              .values_list("user_id", flat=True))
    assert sms == receiving_staff(directive)
    assert Message.objects.get(idempotency_key__startswith=f"directive:{directive.pk}:v1:issued:u{d.users['grid_a'].pk}",
                               channel=Channel.INBOX).subject == "【特急】新指令：紧急封控"
    calls.clear()
    normal = do_issue_directive(acting_user=d.users["commander"], title="一般通知", body="知悉")
    assert calls and all(urgent is False for *_, urgent in calls)
    assert normal.urgency == Urgency.NORMAL


def test_a_re_run_of_the_fan_out_sends_nothing_twice(district):
    d = district
    directive = do_issue_directive(acting_user=d.users["commander"], title="全员核酸", body="今日完成")
    before = Message.objects.count()
    # The worker's fan-out run again from the start (cursors lost): the keys make it enqueue nothing.
    Directive.objects.filter(pk=directive.pk).update(notify_cursor=0, fanout_cursor=0,
                                                     fanout_state=FanoutState.PENDING)
    fanout.distribute(Directive.objects.get(pk=directive.pk))
    assert Message.objects.count() == before


def test_a_crash_between_chunks_resumes_after_the_last_committed_chunk(district, monkeypatch):
    d = district
    monkeypatch.setattr(fanout, "INLINE_LIMIT", 0)  # the worker's part, as for a large scope
    directive = do_issue_directive(acting_user=d.users["commander"], title="全员核酸", body="今日完成")
    assert not Message.objects.filter(idempotency_key__startswith=f"directive:{directive.pk}:").exists()
    real, calls = fanout.notify_units, []

    def crash_on_third(unit_ids, **kw):
        calls.append(list(unit_ids))
        if len(calls) == 3:
            raise KeyboardInterrupt("worker killed")
        return real(unit_ids, **kw)

    monkeypatch.setattr(fanout, "notify_units", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        fanout.notify_issued(Directive.objects.get(pk=directive.pk), chunk=2)
    cursor = Directive.objects.get(pk=directive.pk).notify_cursor
    assert cursor == calls[1][-1]  # two chunks committed, the third rolled back
    monkeypatch.setattr(fanout, "notify_units", real)
    fanout.distribute(Directive.objects.get(pk=directive.pk))
    people = receiving_staff(directive)
    assert inbox(directive, "issued") == Counter(dict.fromkeys(people, 1))
    assert Directive.objects.get(pk=directive.pk).fanout_state == FanoutState.DONE


def test_a_directive_cancelled_before_the_worker_told_anyone_is_not_announced(district, monkeypatch):
    d = district
    monkeypatch.setattr(fanout, "INLINE_LIMIT", 0)
    directive = do_issue_directive(acting_user=d.users["commander"], title="发错了", body="内容")
    do_cancel_directive(directive=directive, reason="发错", acting_user=d.users["commander"])
    fanout.distribute(Directive.objects.get(pk=directive.pk))
    assert not inbox(directive, "issued")
    assert inbox(directive, "cancelled")
