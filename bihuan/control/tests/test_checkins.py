"""Daily check-ins: by the person's signed link and by a team member; validation; access; missed check-ins
(reminder once, then an alert after the grace period, no duplicates across ticks and workers).

``build_care``, ``make_case``, ``Clock`` and ``sms_gateway`` are shared with the other control tests."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from bihuan.control import links
from bihuan.control.checkins import (
    GRACE,
    CheckInError,
    detect_missed,
    do_record_checkin,
    process_missed,
    slot_deadline,
)
from bihuan.control.models import (
    ALERT,
    ALERT_KINDS,
    MISSED_CHECKIN,
    CheckIn,
    ControlCase,
    ControlType,
    MissedCheckIn,
    TeamMember,
)
from bihuan.core.models import AuditEntry
from bihuan.core.worker import TASKS, run_tick
from bihuan.loops import kinds
from bihuan.loops.models import Loop, LoopState
from bihuan.notify.models import Channel, InboxItem, Message

from .helpers import (
    PERSON_PHONE,
    VOLUNTEER_PHONE,
    build_care,
    freeze,
    inbox_users,
    make_case,
    sms_phones,
)

# ---- recording -------------------------------------------------------------------------------------------

def test_the_person_checks_in_through_their_signed_link(care, client):
    token = links.token_for(care.case.pk)
    assert links.person_path(care.case.pk) == f"/p/{token}/"
    case = links.case_for_token(token)
    checkin = do_record_checkin(case, date=timezone.localdate(), slot="am", temperature="36.5", symptoms=[])
    assert (checkin.temperature, checkin.abnormal, checkin.entered_by) == (Decimal("36.5"), False, None)
    entry = AuditEntry.objects.get(action="control.checkin")
    assert entry.actor is None and entry.actor_unit_id == care.case.unit_id and entry.changes["by"] == "person"
    assert not Loop.objects.filter(kind=ALERT).exists() and not Message.objects.exists()


def test_a_team_member_outside_the_subtree_and_the_grid_worker_record_check_ins(care):
    today = timezone.localdate()
    by_doctor = do_record_checkin(care.case, date=today, slot="am", temperature=36.6, symptoms="无",
                                  acting_user=care.doctor)
    by_grid = do_record_checkin(care.case, date=today - timedelta(days=1), slot="pm", temperature="36.8 ℃",
                                symptoms=None, acting_user=care.d.users["grid_a"])
    assert by_doctor.entered_by == care.doctor and by_doctor.symptoms == []
    assert by_grid.entered_by == care.d.users["grid_a"] and by_grid.temperature == Decimal("36.8")
    assert AuditEntry.objects.filter(action="control.checkin", changes__by="staff").count() == 2


@pytest.mark.parametrize("temperature", ["33.9", "43.1", "abc", ""])
def test_an_impossible_temperature_is_refused(care, temperature):
    with pytest.raises(CheckInError, match="^temperature:"):
        do_record_checkin(care.case, date=timezone.localdate(), slot="am", temperature=temperature, symptoms=[])


def test_the_person_checks_in_for_today_only_and_nobody_for_the_future(care):
    today = timezone.localdate()
    with pytest.raises(CheckInError, match="^date:"):
        do_record_checkin(care.case, date=today - timedelta(days=1), slot="am", temperature="36.5", symptoms=[])
    with pytest.raises(CheckInError, match="^date:"):
        do_record_checkin(care.case, date=today + timedelta(days=1), slot="am", temperature="36.5", symptoms=[],
                          acting_user=care.d.users["grid_a"])
    with pytest.raises(CheckInError, match="^slot:"):
        do_record_checkin(care.case, date=today, slot="noon", temperature="36.5", symptoms=[])


def test_a_double_tap_returns_the_same_check_in_and_a_different_value_is_refused(care):
    today = timezone.localdate()
    first = do_record_checkin(care.case, date=today, slot="am", temperature="36.5", symptoms=[])
    again = do_record_checkin(care.case, date=today, slot="am", temperature="36.5", symptoms=[])
    assert again.pk == first.pk and CheckIn.objects.count() == 1
    with pytest.raises(CheckInError, match="^slot:"):
        do_record_checkin(care.case, date=today, slot="am", temperature="36.9", symptoms=[])


def test_a_released_case_takes_no_check_ins(care):
    ControlCase.objects.filter(pk=care.case.pk).update(state="released")
    with pytest.raises(CheckInError, match="^case:"):
        do_record_checkin(care.case, date=timezone.localdate(), slot="am", temperature="36.5", symptoms=[])


def test_an_outsider_cannot_record_for_a_branch_a_case(care):
    with pytest.raises(Http404):
        do_record_checkin(care.case, date=timezone.localdate(), slot="am", temperature="36.5", symptoms=[],
                          acting_user=care.d.users["township_b"])
    with pytest.raises(PermissionDenied):  # no CARE and not on the team
        do_record_checkin(care.case, date=timezone.localdate(), slot="am", temperature="36.5", symptoms=[],
                          acting_user=care.d.users["department"])
    assert not CheckIn.objects.exists()


def test_a_forged_or_foreign_link_token_is_404(care, client):
    from bihuan.directives import links as directive_links

    token = links.token_for(care.case.pk)
    forged = [token[:-1] + ("A" if token[-1] != "A" else "B"), f"{care.case.pk}-", "abc-def", "",
              directive_links.token_for(care.case.pk), links.token_for(10**9)]
    for bad in forged:
        with pytest.raises(Http404):
            links.case_for_token(bad)
    assert client.get(f"/p/{forged[0]}/").status_code == 404


def test_directive_links_keep_their_tokens_after_the_signing_moved_to_core():
    import base64
    import hashlib
    import hmac

    from django.conf import settings

    from bihuan.directives import links as directive_links

    mac = hmac.new(settings.SECRET_KEY.encode(), b"bihuan-reach|42", hashlib.sha256).digest()
    assert directive_links.token_for(42) == "42-" + base64.urlsafe_b64encode(mac[:15]).decode()
    assert directive_links.reach_id_from(directive_links.token_for(42)) == 42
    assert directive_links.reach_id_from("42-forged") is None


# ---- missed check-ins ------------------------------------------------------------------------------------

DAY = dt.date(2026, 3, 10)


@pytest.fixture
def early(monkeypatch, district):
    """The clock at 08:00 on DAY; the care setup made then (so today's slots count)."""
    clock = freeze(monkeypatch, DAY, 8)
    c = build_care(district)
    c.clock = clock
    return c


def test_the_worker_task_is_registered():
    assert {"control.checkins", "control.samples", "control.release"} <= set(TASKS)


def test_nothing_is_missing_before_the_deadline(early):
    early.clock.set_local(DAY, 9, 59)
    assert detect_missed() == 0
    run_tick("w1")
    assert not MissedCheckIn.objects.exists() and not Message.objects.exists()


def test_a_missed_check_in_reminds_the_person_once_then_opens_a_loop_at_the_grid_after_the_grace_period(
        early, sms_gateway):
    case = early.case
    early.clock.set_local(DAY, 10, 1)
    run_tick("w1")
    miss = MissedCheckIn.objects.get()
    assert (miss.case_id, miss.date, miss.slot, miss.due_at) == (case.pk, DAY, "am", slot_deadline(DAY, "am"))
    assert miss.reminded_at and not miss.handed_at and not miss.locked_by
    assert not Loop.objects.filter(kind=MISSED_CHECKIN).exists()
    reminder = Message.objects.get()
    assert (reminder.channel, reminder.idempotency_key) == (Channel.SMS, f"checkin-remind:{case.pk}:{DAY}:am")
    for owner in ("w1", "w2", "w1"):  # more ticks, another worker: nothing new
        run_tick(owner)
    assert Message.objects.count() == 1 and sms_phones(sms_gateway) == [PERSON_PHONE]
    assert not InboxItem.objects.exists()

    early.clock.set_local(DAY, 11, 0)  # deadline + GRACE
    assert GRACE == timedelta(hours=1)
    run_tick("w2")
    run_tick("w1")  # notify.deliver runs before control.checkins in a tick: the next tick sends
    miss.refresh_from_db()
    assert miss.handed_at
    loop = Loop.objects.get(kind=MISSED_CHECKIN, subject_id=miss.pk)
    assert (loop.owner_unit, loop.state) == (early.d.grid_a, LoopState.ISSUED)
    assert loop.due_at == early.clock.now + timedelta(hours=2)
    # The grid's staff are the loop's owners (the engine tells them); the doctor of another unit and the
    # volunteer known only by phone are told by control.
    told = early.team | {"volunteer_a"}
    assert inbox_users() == told
    keys = set(Message.objects.values_list("idempotency_key", flat=True))
    assert f"checkin-alert:{case.pk}:{DAY}:am:m{TeamMember.objects.get(slot='volunteer').pk}:sms" in keys
    assert sorted(sms_phones(sms_gateway)) == sorted([PERSON_PHONE, VOLUNTEER_PHONE] + staff_phones(told))
    count = Message.objects.count()
    for owner in ("w1", "w2", "w3"):
        run_tick(owner)
    assert Message.objects.count() == count and InboxItem.objects.count() == len(told)
    assert AuditEntry.objects.filter(action="control.checkin_reminded").count() == 1
    assert AuditEntry.objects.filter(action="control.checkin_missed_alert").count() == 1


def staff_phones(usernames) -> list[str]:
    from bihuan.register.models import Staff

    return [s.reveal_phone() for s in Staff.objects.filter(user__username__in=usernames) if s.phone_sealed]


def test_a_late_check_in_within_the_grace_period_opens_no_loop_and_no_alert_follows(early):
    early.clock.set_local(DAY, 10, 30)
    run_tick("w1")
    miss = MissedCheckIn.objects.get()
    assert miss.reminded_at and not Message.objects.exists()  # no SMS gateway: the step is taken, nothing sent
    do_record_checkin(early.case, date=DAY, slot="am", temperature="36.4", symptoms=[])
    early.clock.set_local(DAY, 12, 0)
    run_tick("w1")
    run_tick("w1")
    miss.refresh_from_db()
    assert miss.handed_at and not Loop.objects.filter(kind=MISSED_CHECKIN).exists()
    assert not Message.objects.exists() and not InboxItem.objects.exists()
    assert AuditEntry.objects.get(action="control.checkin").changes["late"] is True


def test_both_slots_are_detected_in_one_pass_and_a_catch_up_reminds_and_alerts_at_once(early):
    early.clock.set_local(DAY, 20, 0)
    assert detect_missed() == 2
    assert detect_missed() == 0
    assert process_missed("w1") == 2
    rows = MissedCheckIn.objects.order_by("slot")
    assert [r.slot for r in rows] == ["am", "pm"] and all(r.reminded_at and r.handed_at for r in rows)
    assert Loop.objects.filter(kind=MISSED_CHECKIN).count() == 2
    assert process_missed("w2") == 0
    run_tick("w1")
    assert inbox_users() == early.team | {"volunteer_a"}
    # The grid's two accounts get one message listing both loops (opened together); the doctor one per slot.
    assert InboxItem.objects.filter(user__username="doctor_a").count() == 2
    assert InboxItem.objects.filter(user__username__in=["grid_a", "volunteer_a"]).count() == 2


def test_a_case_opened_after_a_deadline_is_not_reminded_for_that_slot(early):
    early.clock.set_local(DAY, 12, 0)
    late_case = make_case(early.d.grid_a, resident=early.d.resident_a2, start=DAY)
    detect_missed()
    assert list(MissedCheckIn.objects.values_list("case_id", "slot")) == [(early.case.pk, "am")]
    early.clock.set_local(DAY, 18, 30)
    detect_missed()
    assert set(MissedCheckIn.objects.filter(case=late_case).values_list("slot", flat=True)) == {"pm"}


def test_a_type_with_one_check_in_a_day_is_missed_only_in_the_morning_and_closed_cases_never(early):
    ControlType.objects.filter(code="home_monitoring").update(checkins_per_day=1)
    once = make_case(early.d.grid_a, resident=early.d.resident_a2, type_code="home_monitoring")
    make_case(early.d.grid_a, name="已解除", state="released")
    make_case(early.d.grid_a, name="未开始", start=DAY + timedelta(days=1))
    early.clock.set_local(DAY, 19, 0)
    detect_missed()
    assert set(MissedCheckIn.objects.values_list("case_id", "slot")) == {
        (early.case.pk, "am"), (early.case.pk, "pm"), (once.pk, "am")}


def test_a_case_closed_after_the_miss_is_resolved_without_messages(early):
    early.clock.set_local(DAY, 10, 30)
    detect_missed()
    ControlCase.objects.filter(pk=early.case.pk).update(state="released")
    early.clock.set_local(DAY, 12, 0)
    assert process_missed("w1") == 1
    assert MissedCheckIn.objects.get().handed_at
    assert not Loop.objects.filter(kind=MISSED_CHECKIN).exists() and not Message.objects.exists()


def test_the_missed_check_in_loop_is_chased_by_the_engine_and_closed_by_the_check_in(early):
    early.clock.set_local(DAY, 11, 0)
    run_tick("w1")
    loop = Loop.objects.get(kind=MISSED_CHECKIN)
    assert loop in Loop.objects.filter(kind__in=ALERT_KINDS)  # listed on the today page with the alerts
    spec = kinds.get(MISSED_CHECKIN)
    early.clock.set_local(DAY, 13, 1)  # past the two hours
    assert loop in Loop.objects.overdue()
    for _ in range(spec.reminder_limit + 1):
        run_tick("w1")
        early.clock.advance(seconds=spec.reminder_interval + 1)
    loop.refresh_from_db()
    assert loop.reminders_sent == spec.reminder_limit and loop.escalated_at  # the community was told (督办)
    do_record_checkin(early.case, date=DAY, slot="am", temperature="36.5", symptoms=[],
                      acting_user=early.d.users["grid_a"])
    loop.refresh_from_db()
    assert loop.state == LoopState.CLOSED
    assert list(loop.events.values_list("action", flat=True))[-2:] == ["reported", "closed"]


def test_a_released_case_cancels_its_missed_check_in_loops(early):
    from bihuan.control.actions import end_case_loops

    early.clock.set_local(DAY, 11, 0)
    run_tick("w1")
    assert end_case_loops(early.case) == 1
    assert Loop.objects.get(kind=MISSED_CHECKIN).state == LoopState.CANCELLED


def test_a_row_leased_by_another_worker_is_left_alone(early):
    early.clock.set_local(DAY, 10, 30)
    detect_missed()
    MissedCheckIn.objects.update(locked_by="other", locked_until=timezone.now() + timedelta(minutes=2))
    assert process_missed("w1") == 0
    early.clock.advance(minutes=3)  # the other worker died: its lease runs out
    assert process_missed("w1") == 1
