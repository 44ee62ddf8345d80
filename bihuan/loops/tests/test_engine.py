"""The loop engine on its own: set-based opening, transitions with history, reminders and escalation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bihuan.loops import engine
from bihuan.loops.models import Loop, LoopEvent, LoopState
from bihuan.loops.tasks import remind_due
from bihuan.notify.models import Message
from bihuan.register.models import Unit


def open_loops(district, **kw):
    units = Unit.objects.filter(level__gte=3)
    defaults = dict(kind="test.task", subject_id=1, title="排查任务", units=units, originator_unit=district.office,
                    originator_user=district.users["office"], reminder_interval=600, reminder_limit=2)
    return engine.open_for_units(**(defaults | kw))


def reminders(user):
    return Message.objects.filter(user=user, channel="inbox").exclude(idempotency_key__startswith="open:")


def test_opening_is_set_based_and_idempotent(district):
    assert open_loops(district) == 8
    assert open_loops(district) == 0  # a re-run (a crashed fan-out restarted) adds nothing
    assert Loop.objects.count() == 8
    assert LoopEvent.objects.filter(action="issued").count() == 8
    loop = Loop.objects.get(owner_unit=district.grid_a)
    assert loop.path == district.grid_a.path and loop.level == 6 and loop.state == LoopState.ISSUED


def test_transitions_keep_the_full_history_and_refuse_illegal_moves(district):
    open_loops(district)
    loop = Loop.objects.get(owner_unit=district.grid_a)
    grid = district.users["grid_a"]
    loop = engine.transition(loop, LoopState.ACKNOWLEDGED, actor=grid)
    loop = engine.transition(loop, LoopState.ACKNOWLEDGED, actor=grid)  # a double tap changes nothing
    loop = engine.transition(loop, LoopState.REPORTED, actor=grid, note="已完成", data={"answers": {"n": 3}})
    loop = engine.transition(loop, LoopState.CLOSED, actor=district.users["office"])
    with pytest.raises(engine.LoopError):
        engine.transition(loop, LoopState.IN_PROGRESS, actor=grid)
    actions = list(loop.events.values_list("action", flat=True))
    assert actions == ["issued", "acknowledged", "reported", "closed"]
    assert loop.data == {"answers": {"n": 3}} and loop.acknowledged_by == grid and loop.closed_at


def test_overdue_loops_are_reminded_once_per_round_then_escalated_to_the_parent(district):
    past = timezone.now() - timedelta(minutes=1)
    open_loops(district, units=Unit.objects.filter(pk=district.grid_a.pk), ack_due_at=past)
    loop = Loop.objects.get()
    assert loop.is_overdue()

    def messages_to(username):  # reminders and escalations (the opening notice is not one)
        return reminders(district.users[username]).count()

    assert remind_due("w1") == 1 and messages_to("grid_a") == 1
    assert remind_due("w1") == 0 and messages_to("grid_a") == 1  # same round: nothing new
    Loop.objects.update(next_reminder_at=past)  # the interval has passed
    assert remind_due("w2") == 1 and messages_to("grid_a") == 2
    Loop.objects.update(next_reminder_at=past)
    assert remind_due("w1") == 1  # the limit (2) is reached: the parent unit is told
    assert messages_to("grid_a") == 2 and messages_to("property_a") == 1
    loop.refresh_from_db()
    assert loop.escalated_at and loop.next_reminder_at is None
    assert list(loop.events.values_list("action", flat=True)) == ["issued", "reminded", "reminded", "escalated"]
    assert remind_due("w1") == 0


def test_one_digest_per_recipient_per_round(district):
    past = timezone.now() - timedelta(minutes=1)
    for subject in (1, 2, 3):
        open_loops(district, subject_id=subject, units=Unit.objects.filter(pk=district.grid_a.pk), ack_due_at=past)
    assert remind_due("w1") == 3
    assert reminders(district.users["grid_a"]).count() == 1


def test_signing_in_time_stops_the_sign_reminders(district):
    soon = timezone.now() + timedelta(hours=1)
    open_loops(district, units=Unit.objects.filter(pk=district.grid_a.pk), ack_due_at=soon,
               due_at=soon + timedelta(hours=23))
    loop = engine.transition(Loop.objects.get(), LoopState.ACKNOWLEDGED, actor=district.users["grid_a"])
    assert loop.next_reminder_at == loop.due_at and loop.reminders_sent == 0


def test_bulk_cancel_moves_every_open_loop_and_records_it(district):
    open_loops(district)
    engine.transition(Loop.objects.get(owner_unit=district.grid_a), LoopState.REPORTED, actor=None)
    assert engine.bulk_transition(Loop.objects.all(), LoopState.CANCELLED, actor=None, note="撤销") == 8
    assert not Loop.objects.exclude(state=LoopState.CANCELLED).exists()
    assert LoopEvent.objects.filter(action="cancelled").count() == 8


def test_a_second_report_amends_the_answers_and_is_recorded(district):
    open_loops(district)
    loop = Loop.objects.get(owner_unit=district.grid_a)
    grid = district.users["grid_a"]
    engine.transition(loop, LoopState.REPORTED, actor=grid, data={"answers": {"n": 3}})
    loop = engine.transition(loop, LoopState.REPORTED, actor=grid, data={"answers": {"n": 4}}, note="更正")
    assert loop.data == {"answers": {"n": 4}}
    assert list(loop.events.values_list("action", flat=True))[-2:] == ["reported", "amended"]


def test_digests_name_the_late_units_and_the_escalation_names_the_parent(district):
    past = timezone.now() - timedelta(minutes=1)
    open_loops(district, units=Unit.objects.filter(pk=district.grid_a.pk), ack_due_at=past, reminder_limit=0)
    assert remind_due("w1") == 1
    message = Message.objects.get(user=district.users["property_a"], channel="inbox")
    assert district.grid_a.name in message.body
    assert Loop.objects.get().events.last().note == f"督办：{district.compound_a.name}"
