"""Acceptance: an abnormal temperature, a listed symptom and a positive test reach the right people within one
worker round — the five-for-one team and the community's staff (and, for a positive test, the district
command office), and nobody else — with an alert loop the loop engine then chases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bihuan.control.checkins import CareError, do_record_checkin, do_resolve_alert
from bihuan.control.models import ALERT, ALERT_KINDS, TEST_POSITIVE, CheckIn
from bihuan.control.models import TestSample as Sample
from bihuan.control.sampling import do_record_result
from bihuan.core.models import AuditEntry
from bihuan.core.worker import run_tick
from bihuan.loops import kinds
from bihuan.loops.models import Loop, LoopState
from bihuan.notify.models import InboxItem, Message
from bihuan.testing import freeze_clock

from .helpers import VOLUNTEER_PHONE, inbox_users, make_case, sms_phones


def today():
    return timezone.localdate()


def test_an_abnormal_temperature_reaches_the_team_and_the_community_within_one_worker_round(care):
    checkin = do_record_checkin(care.case, date=today(), slot="am", temperature="37.8", symptoms=[])
    assert checkin.abnormal
    loop = Loop.objects.get(kind=ALERT, subject_id=checkin.pk)
    assert loop.owner_unit == care.d.community_a and loop.state == LoopState.ISSUED
    assert loop.data == {"case": care.case.pk, "checkin": checkin.pk}
    assert abs(loop.due_at - loop.created_at - timedelta(hours=1)) < timedelta(seconds=5)
    assert not InboxItem.objects.exists()  # nothing is delivered before the worker runs

    run_tick()

    assert inbox_users() == care.team | {"community_a"}  # nobody else: not the property, township, office …
    items = InboxItem.objects.select_related("message")
    assert all("王建国" in i.message.subject and "37.8" in i.message.body for i in items)
    entry = AuditEntry.objects.get(action="control.alert")
    assert entry.changes["reason"] == "abnormal_checkin" and entry.changes["community"] == care.d.community_a.pk


def test_a_listed_symptom_alerts_even_at_a_normal_temperature_and_sms_reaches_the_phone_only_member(care,
                                                                                                   sms_gateway):
    checkin = do_record_checkin(care.case, date=today(), slot="am", temperature="36.6", symptoms=["咳嗽", "有点累"],
                                acting_user=care.d.users["grid_a"])
    assert checkin.abnormal and checkin.symptoms == ["咳嗽", "有点累"]
    assert Loop.objects.filter(kind=ALERT, subject_id=checkin.pk, owner_unit=care.d.community_a).exists()
    run_tick()
    assert inbox_users() == care.team | {"community_a"}
    assert VOLUNTEER_PHONE in sms_phones(sms_gateway)


def test_an_unlisted_symptom_alone_at_a_normal_temperature_alerts_nobody(care):
    checkin = do_record_checkin(care.case, date=today(), slot="am", temperature="37.2", symptoms=["失眠"])
    assert not checkin.abnormal
    run_tick()
    assert not Loop.objects.filter(kind__in=ALERT_KINDS).exists() and not InboxItem.objects.exists()


def test_a_positive_test_reaches_the_team_the_community_and_the_command_office_within_one_worker_round(care):
    sample = Sample.objects.get(case=care.case, day=1)
    do_record_result(sample, "positive", acting_user=care.d.users["grid_a"])
    loop = Loop.objects.get(kind=TEST_POSITIVE, subject_id=sample.pk)
    assert loop.owner_unit == care.d.community_a and loop.data["result"] == "positive"
    run_tick()
    assert inbox_users() == care.team | {"community_a", "office"}
    assert all("阳性" in m.subject for m in Message.objects.all())


def test_with_no_team_the_grids_responsible_people_are_told(care):
    case = make_case(care.d.grid_a, resident=care.d.resident_a2)
    do_record_checkin(case, date=today(), slot="am", temperature="38.5", symptoms=[])
    run_tick()
    assert inbox_users() == {"grid_a", "community_a"}


def test_an_unanswered_alert_is_reminded_then_escalated_to_the_township_by_the_loop_engine(care, monkeypatch):
    checkin = do_record_checkin(care.case, date=today(), slot="am", temperature="38.1", symptoms=[])
    run_tick()
    InboxItem.objects.all().delete()
    loop = Loop.objects.get(kind=ALERT, subject_id=checkin.pk)
    now = loop.ack_due_at + timedelta(seconds=1)
    clock = freeze_clock(monkeypatch, now)
    for _ in range(kinds.get(ALERT).reminder_limit):
        run_tick()
        clock.advance(seconds=kinds.get(ALERT).reminder_interval + 1)
    run_tick()  # limit reached: the township is told
    run_tick()
    assert inbox_users() == {"community_a", "township_a"}
    loop.refresh_from_db()
    assert loop.reminders_sent == kinds.get(ALERT).reminder_limit and loop.escalated_at


def test_the_community_resolves_an_alert_and_an_outsider_cannot(care):
    from django.http import Http404

    checkin = do_record_checkin(care.case, date=today(), slot="pm", temperature="37.5", symptoms=[])
    loop = Loop.objects.get(kind=ALERT, subject_id=checkin.pk)
    with pytest.raises(Http404):
        do_resolve_alert(loop, "已处置", acting_user=care.d.users["village_b"])
    with pytest.raises(CareError, match="^note:"):
        do_resolve_alert(loop, " ", acting_user=care.d.users["community_a"])
    closed = do_resolve_alert(loop, "医生上门复测 36.9℃，无异常", acting_user=care.d.users["community_a"])
    assert closed.state == LoopState.CLOSED
    assert do_resolve_alert(loop, "again", acting_user=care.d.users["community_a"]).state == LoopState.CLOSED
    assert list(closed.events.values_list("action", flat=True)) == ["issued", "reported", "closed"]
    assert CheckIn.objects.get().abnormal


# ---- told at once: the outbox rows are written by the recording action itself ----------------------------

def add_robot(unit):
    from bihuan.notify.models import Robot

    robot = Robot(unit=unit, kind="wecom", name=f"{unit.name}工作群")
    robot.set_webhook("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=test")
    robot.save()
    return robot


def test_an_abnormal_check_in_writes_every_responsible_persons_message_in_the_same_transaction(care):
    robot = add_robot(care.d.community_a)
    checkin = do_record_checkin(care.case, date=today(), slot="am", temperature="38.1", symptoms=[])
    loop = Loop.objects.get(kind=ALERT, subject_id=checkin.pk)
    inbox = Message.objects.filter(channel="inbox").select_related("user")
    assert {m.user.username for m in inbox} == care.team | {"community_a"}  # before any worker round
    # The community owns the loop: the engine tells its staff and its group robot as the loop opens ...
    owners = Message.objects.filter(idempotency_key__startswith=f"open:{ALERT}:")
    assert {m.user.username for m in owners if m.user} == {"community_a"}
    assert [m.robot for m in owners if m.robot] == [robot]
    # ... and control tells the five-for-one team (the grid worker, the health bureau's doctor).
    team = Message.objects.filter(idempotency_key__startswith=f"control.alert:checkin:{checkin.pk}:")
    assert {m.user.username for m in team if m.user} == care.team
    assert all("38.1" in m.body and "王建国" in m.subject for m in inbox)
    assert loop.state == LoopState.ISSUED
