"""The engine's API beyond opening for units: one loop, many from a SELECT, handing over, reopening, notes,
a person leaving, the kinds registry, and the one definition of overdue."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from bihuan.loops import engine, kinds
from bihuan.loops.models import Loop, LoopEvent, LoopState, overdue_q, overdue_sql
from bihuan.notify.models import Message
from bihuan.register.models import Unit

TASK = kinds.register(kinds.LoopKind("test.api_task", "测试任务", due_within=timedelta(hours=2),
                                     reminder_interval=120, reminder_limit=1))
QUIET = kinds.register(kinds.LoopKind("test.quiet", "静默任务", notify_on_open=False))


def open_one(district, unit=None, **kw):
    return engine.open_one(**({"kind": TASK, "subject_id": 7, "title": "送菜上门", "owner_unit": unit or district.grid_a,
                               "originator_unit": district.community_a,
                               "originator_user": district.users["community_a"]} | kw))


def inbox(user):
    return list(Message.objects.filter(user=user, channel="inbox").values_list("subject", flat=True))


def test_open_one_takes_the_kinds_policy_and_tells_the_owner_at_once(district):
    loop = open_one(district, data={"case": 3})
    assert loop.reminder_interval == 120 and loop.reminder_limit == 1
    assert loop.due_at - loop.created_at == timedelta(hours=2) and loop.next_reminder_at == loop.due_at
    assert loop.data == {"case": 3}
    assert inbox(district.users["grid_a"]) == ["新测试任务：送菜上门"]
    assert inbox(district.users["rep_b"]) == []


def test_open_one_again_returns_the_same_loop_and_tells_no_one_twice(district):
    first = open_one(district)
    again = open_one(district, data={"more": 1})
    assert again.pk == first.pk and again.data == {"more": 1}
    assert Loop.objects.count() == 1 and LoopEvent.objects.filter(action="issued").count() == 1
    assert len(inbox(district.users["grid_a"])) == 1


def test_a_kind_that_sends_its_own_notice_is_opened_silently(district):
    open_one(district, kind=QUIET)
    assert inbox(district.users["grid_a"]) == []


def test_a_given_notice_replaces_the_default_text(district):
    open_one(district, notice=engine.Notice("服务请求：买菜", "请于今天办结"))
    assert inbox(district.users["grid_a"]) == ["服务请求：买菜"]


def test_open_many_opens_from_a_select_with_per_row_deadlines_and_is_idempotent(district):
    q = connection.ops.quote_name
    due = timezone.now() + timedelta(hours=5)
    rows = (f"SELECT u.id AS subject_id, u.name AS title, u.id AS owner_unit_id, u.path AS owner_path, "
            f"u.level AS owner_level, u.parent_id AS originator_unit_id, {engine.sql_time('NULL')} AS ack_due_at, "
            f"{engine.sql_time()} AS due_at FROM {q(Unit._meta.db_table)} u WHERE u.level = 6")
    params = [connection.ops.adapt_datetimefield_value(due)]
    grids = Unit.objects.filter(level=6).count()
    assert engine.open_many(TASK, rows, params) == grids
    assert engine.open_many(TASK, rows, params) == 0
    loops = Loop.objects.filter(kind=TASK)
    assert loops.count() == grids and all(abs((lp.due_at - due).total_seconds()) < 1 for lp in loops)
    assert LoopEvent.objects.filter(action="issued").count() == grids
    assert inbox(district.users["grid_a"]) == [f"新测试任务：{district.grid_a.name}"]


def test_reassign_hands_the_same_loop_to_another_unit_and_tells_it(district):
    loop = open_one(district)
    Loop.objects.filter(pk=loop.pk).update(reminders_sent=1)
    loop = engine.reassign(loop, district.grid_b, actor=district.users["office"], action="dispatched", note="改派")
    assert (loop.owner_unit_id, loop.path, loop.reminders_sent) == (district.grid_b.pk, district.grid_b.path, 0)
    assert inbox(district.users["rep_b"]) == ["新测试任务：送菜上门"]
    assert list(loop.events.values_list("action", flat=True)) == ["issued", "dispatched"]


def test_assigning_a_person_signs_for_it_and_a_leaving_person_hands_it_back(district):
    grid_user = district.users["grid_a"]
    loop = engine.assign_person(open_one(district), grid_user, actor=district.users["community_a"], note="指派")
    loop.refresh_from_db()
    assert loop.owner_user == grid_user and loop.state == LoopState.ACKNOWLEDGED
    assert engine.hand_back_user(grid_user, actor=district.users["community_a"]) == 1
    loop.refresh_from_db()
    assert loop.owner_user is None and loop.state == LoopState.ACKNOWLEDGED
    assert list(loop.events.values_list("action", flat=True)) == ["issued", "acknowledged", "handed_back"]
    assert engine.hand_back_user(grid_user, actor=None) == 0


def test_reopen_puts_a_report_back_to_work_with_reminders_from_zero(district):
    loop = open_one(district)
    loop = engine.transition(loop, LoopState.REPORTED, actor=district.users["grid_a"])
    later = timezone.now() + timedelta(hours=8)
    loop = engine.reopen(loop, actor=district.users["community_a"], note="结果撤回", due_at=later)
    assert loop.state == LoopState.IN_PROGRESS and loop.next_reminder_at == later and loop.reminders_sent == 0


def test_a_note_records_history_without_changing_state(district):
    loop = open_one(district)
    engine.note(loop.pk, actor=district.users["community_a"], action="transferred", note="转办到B")
    assert loop.events.last().action == "transferred" and loop.events.last().to_state == LoopState.ISSUED
    with pytest.raises(engine.LoopError):
        engine.note(10**9, actor=None, action="x")


@pytest.mark.parametrize("offset_hours", [-30, -3, -1, 0, 1, 5])
def test_overdue_is_one_rule_in_memory_in_the_orm_and_in_raw_sql(district, offset_hours):
    now = timezone.now()
    open_one(district, subject_id=1, due_at=now + timedelta(hours=offset_hours, minutes=1))
    open_one(district, subject_id=2, ack_due_at=now + timedelta(hours=offset_hours), due_at=now + timedelta(days=2))
    signed = open_one(district, subject_id=3, ack_due_at=now - timedelta(hours=1), due_at=now + timedelta(days=2))
    engine.transition(signed, LoopState.ACKNOWLEDGED, actor=None)
    reported = open_one(district, subject_id=4, due_at=now - timedelta(hours=1))
    engine.transition(reported, LoopState.REPORTED, actor=None)
    now = timezone.now()  # after the openings (overdue_q reads a loop's state at a moment it existed)
    in_memory = {lp.pk for lp in Loop.objects.all() if lp.is_overdue(now)}
    orm = set(Loop.objects.overdue(now).values_list("pk", flat=True))
    assert orm == set(Loop.objects.filter(overdue_q(now)).values_list("pk", flat=True))
    t = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cur:
        cur.execute(f"SELECT id FROM {Loop._meta.db_table} WHERE {overdue_sql()} = 1", [t, t])
        raw = {row[0] for row in cur.fetchall()}
    assert in_memory == orm == raw
    assert signed.pk not in orm and reported.pk not in orm


def test_a_kind_declared_twice_differently_is_refused():
    with pytest.raises(ValueError):
        kinds.register(kinds.LoopKind("test.api_task", "别的"))
    assert kinds.register(kinds.LoopKind("test.api_task", "测试任务", due_within=timedelta(hours=2),
                                         reminder_interval=120, reminder_limit=1)) == TASK
