"""End to end on the generated ``tiny`` district: a directive issued at level 1 is signed and relayed at
every level by each unit's own staff, reaches every household through grid marks and resident links,
collects feedback and is closed out — and at every step the rollup at every unit equals a recount from the
raw rows. Then the reminder path: deadlines in the past, reminder rounds, escalation to the parent unit."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from bihuan.core.actions import do_create_api_token
from bihuan.demo.generate import generate_district
from bihuan.directives import rollup
from bihuan.directives.actions import (
    DirectiveError,
    do_close_directive,
    do_confirm_by_link,
    do_issue_directive,
    do_mark_households,
    do_relay_receipt,
    do_report_receipt,
    do_sign_receipt,
)
from bihuan.directives.links import reach_id_from, token_for
from bihuan.directives.models import RECEIPT, Directive, DirectiveStatus, Reach, ReachStatus
from bihuan.loops.models import OPEN_STATES, Loop, LoopEvent, LoopState
from bihuan.loops.tasks import remind_due
from bihuan.notify.models import Channel, Message
from bihuan.register.models import MAX_LEVEL, Household, Staff, Unit, UnitKind, subtree_q

FORM = [{"key": "tested", "label": "已检测人数", "type": "number"},
        {"key": "done", "label": "是否全部完成", "type": "bool"}]
SIGNED = {LoopState.ACKNOWLEDGED, LoopState.IN_PROGRESS, LoopState.REPORTED, LoopState.CLOSED}
REPORTED = {LoopState.REPORTED, LoopState.CLOSED}


@pytest.fixture
def tiny(db):
    result = generate_district("tiny", seed=1, out=lambda line: None)
    User = get_user_model()
    staff_by_unit: dict[int, list] = defaultdict(list)
    for s in Staff.objects.select_related("user").order_by("id"):
        staff_by_unit[s.unit_id].append(s.user)
    return {"result": result, "commander": User.objects.get(username="commander"), "staff": staff_by_unit,
            "district": Unit.objects.get(level=1)}


def own_staff(tiny, unit_id: int):
    people = tiny["staff"][unit_id]
    assert people, f"unit {unit_id} has no staff of its own"
    return people[0]


def recount(directive: Directive, unit: Unit) -> dict:
    """The unit's figures straight from the raw rows of its subtree."""
    reaches = Reach.objects.filter(subtree_q(unit.path), directive=directive)
    loops = Loop.objects.filter(subtree_q(unit.path), kind=RECEIPT, subject_id=directive.pk)
    states = Counter(loops.values_list("state", flat=True))
    return {
        "households": reaches.count(),
        "reached": reaches.filter(status=ReachStatus.REACHED).count(),
        "unreachable": reaches.filter(status=ReachStatus.UNREACHABLE).count(),
        "units": sum(states.values()),
        "signed": sum(n for s, n in states.items() if s in SIGNED),
        "reported": sum(n for s, n in states.items() if s in REPORTED),
    }


def assert_rollup_equals_recount(directive: Directive, client=None, auth=None) -> int:
    """At EVERY unit of the district (the API too, when given a client)."""
    _, totals = rollup.rollup(directive, root=Unit.objects.get(level=1))
    checked = 0
    for unit in Unit.objects.order_by("path"):
        raw = recount(directive, unit)
        counts = totals[unit.id]
        mine = {k: getattr(counts, k) for k in raw}
        assert mine == raw, (unit.level, unit.name)
        if client is not None and unit.kind != UnitKind.DEPARTMENT:
            j = client.get(f"/api/v1/directives/{directive.pk}?unit={unit.id}", **auth).json()
            assert {k: j["counts"][k] for k in raw} == raw, (unit.level, unit.name)
        checked += 1
    # Households are not lost on the way up: the district's figure is the sum over its grids.
    assert totals[Unit.objects.get(level=1).id].households == Household.objects.count()
    return checked


def test_a_directive_reaches_every_household_of_the_tiny_district_and_is_closed_out(tiny, client):
    units_by_level = Counter(Unit.objects.values_list("level", flat=True))
    assert all(units_by_level[level] >= 1 for level in range(1, MAX_LEVEL + 1))
    commander = tiny["commander"]
    _, key = do_create_api_token(user=commander, name="e2e", acting_user=commander, write=True)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    # Issue at level 1 as the commander: one receipt per unit below (departments excepted), one reach per household.
    directive = do_issue_directive(acting_user=commander, title="关于开展全员核酸检测的紧急通知",
                                   body="请各单位逐级签收、下达，逐户通知到位，并反馈检测人数。", urgency="extra_urgent",
                                   feedback_form=FORM)
    loops = list(Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk).select_related("owner_unit"))
    expected_units = Unit.objects.filter(level__gt=1).exclude(kind=UnitKind.DEPARTMENT)
    assert {lp.owner_unit_id for lp in loops} == set(expected_units.values_list("id", flat=True))
    assert Reach.objects.filter(directive=directive).count() == Household.objects.count() > 100
    assert directive.fanout_state == "done"
    assert_rollup_equals_recount(directive, client, auth)

    # Sign at every level, top down, each with the unit's own staff; levels 2–5 relay to the level below.
    # Level 3 signs through the API (bearer token of its own staff), the rest through the actions.
    for lp in sorted(loops, key=lambda lp: (lp.level, lp.path)):
        user = own_staff(tiny, lp.owner_unit_id)
        if lp.level == 3:
            _, k = do_create_api_token(user=user, name="e2e", acting_user=user, write=True)
            r = client.post(f"/api/v1/directives/receipts/{lp.pk}/sign", HTTP_AUTHORIZATION=f"Bearer {k}")
            assert r.status_code == 200 and r.json()["state"] == "acknowledged", r.content
        else:
            do_sign_receipt(loop_id=lp.pk, acting_user=user)
        if lp.level < MAX_LEVEL:
            do_relay_receipt(loop_id=lp.pk, acting_user=user)
    states = Counter(Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk).values_list("level", "state"))
    assert all(state == (LoopState.ACKNOWLEDGED if level == MAX_LEVEL else LoopState.IN_PROGRESS)
               for level, state in states)
    signed_by = dict(Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk)
                     .values_list("owner_unit_id", "acknowledged_by_id"))
    assert all(signed_by[unit_id] == own_staff(tiny, unit_id).pk for unit_id in signed_by)

    # Reach the households: each grid's responsible person marks most of theirs (one unreachable in the
    # first grid); the rest confirm through their own links — a few over HTTP, the others by the action.
    grids = list(Unit.objects.filter(level=MAX_LEVEL).order_by("path"))
    by_link, over_http = [], []
    for g, grid in enumerate(grids):
        worker = own_staff(tiny, grid.id)
        rows = list(Reach.objects.filter(directive=directive, unit=grid).order_by("household_id"))
        marked, linked = rows[: len(rows) * 2 // 3], rows[len(rows) * 2 // 3:]
        if g == 0:
            unreachable, marked = marked[0], marked[1:]
            assert do_mark_households(directive=directive, household_ids=[unreachable.household_id],
                                      status=ReachStatus.UNREACHABLE, reason="长期空置", acting_user=worker) == 1
        method = ("visit", "phone", "wechat")[g % 3]
        assert do_mark_households(directive=directive, household_ids=[r.household_id for r in marked],
                                  status=ReachStatus.REACHED, method=method, acting_user=worker) == len(marked)
        over_http += linked[:1]
        by_link += linked[1:]
        if g == 1:  # halfway: the rollup still equals the recount
            assert_rollup_equals_recount(directive)
    for reach in by_link:
        reach_id = reach_id_from(token_for(reach.pk))
        assert reach_id == reach.pk
        assert do_confirm_by_link(reach_id=reach_id) is True
        assert do_confirm_by_link(reach_id=reach_id) is False  # a second tap changes nothing
    for reach in over_http:
        response = client.post(f"/r/{token_for(reach.pk)}/")
        assert response.status_code == 200
    assert client.post(f"/r/{over_http[0].pk}-forged/").status_code == 404
    rows = Counter(Reach.objects.filter(directive=directive).values_list("status", "method"))
    assert rows[(ReachStatus.UNREACHABLE, "")] == 1
    assert rows[(ReachStatus.REACHED, "self")] == len(by_link) + len(over_http) > len(grids)
    assert not Reach.objects.filter(directive=directive, status=ReachStatus.PENDING).exists()
    assert_rollup_equals_recount(directive, client, auth)

    # Feedback from every unit, bottom up.
    grid_totals = {}
    for lp in sorted(loops, key=lambda lp: (-lp.level, lp.path)):
        tested = Reach.objects.filter(subtree_q(lp.path), directive=directive, status="reached").count()
        grid_totals[lp.owner_unit_id] = tested
        do_report_receipt(loop_id=lp.pk, answers={"tested": str(tested), "done": "yes"},
                          acting_user=own_staff(tiny, lp.owner_unit_id), note="已完成")
    reported = Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk)
    assert set(reported.values_list("state", flat=True)) == {LoopState.REPORTED}
    assert all(lp.data["answers"] == {"tested": grid_totals[lp.owner_unit_id], "done": True} for lp in reported)
    counts = assert_rollup_equals_recount(directive, client, auth)
    assert counts == Unit.objects.count()

    # Close out: no reason needed, every household is reached or unreachable with a reason.
    directive = do_close_directive(directive=directive, acting_user=commander)
    assert directive.status == DirectiveStatus.CLOSED and directive.closed_at
    closed = Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk)
    assert set(closed.values_list("state", flat=True)) == {LoopState.CLOSED}
    assert not closed.filter(state__in=OPEN_STATES).exists()
    assert_rollup_equals_recount(directive)

    # The history of every receipt has each step, in order, by the right people.
    history = defaultdict(list)
    for loop_id, action, actor_id, to_state in (LoopEvent.objects.filter(loop__in=closed)
                                                .order_by("loop_id", "id")
                                                .values_list("loop_id", "action", "actor_id", "to_state")):
        history[loop_id].append((action, actor_id, to_state))
    for lp in closed:
        own = own_staff(tiny, lp.owner_unit_id).pk
        steps = [a for a, _, _ in history[lp.pk]]
        if lp.level < MAX_LEVEL:
            assert steps == ["issued", "acknowledged", "started", "reported", "closed"], steps
        else:
            assert steps == ["issued", "acknowledged", "reported", "closed"], steps
        assert history[lp.pk][0] == ("issued", commander.pk, "issued")
        assert all(actor == own for a, actor, _ in history[lp.pk] if a in {"acknowledged", "started", "reported"})
        assert history[lp.pk][-1] == ("closed", commander.pk, "closed")

    # After close-out residents' links change nothing.
    assert do_confirm_by_link(reach_id=by_link[0].pk) is False
    j = client.get(f"/api/v1/directives/{directive.pk}", **auth).json()
    assert j["status"] == "closed" and j["counts"]["percent"] == 100.0
    assert json.loads(json.dumps(j["counts"]))["pending"] == 0


# ------------------------------------------------------------------------------------------- reminders


def inbox_counts(kind: str) -> Counter:
    """Inbox messages per recipient whose subject starts with 催办 (remind) or 督办 (escalate)."""
    prefix = {"remind": "催办", "escalate": "督办"}[kind]
    return Counter(Message.objects.filter(channel=Channel.INBOX, subject__startswith=prefix)
                   .values_list("user_id", flat=True))


def time_passes(loops) -> None:
    """Every loop's next reminder is due now (as if its interval had gone by)."""
    loops.filter(next_reminder_at__isnull=False).update(next_reminder_at=timezone.now() - timedelta(seconds=1))


def test_overdue_units_are_reminded_once_a_round_then_the_parent_unit_is_told(tiny):
    commander = tiny["commander"]
    directive = do_issue_directive(acting_user=commander, title="限时签收演练", body="请在 10 分钟内签收。",
                                   sign_minutes=10, reminder_minutes=15, reminder_limit=2, is_exercise=True)
    receipts = Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk)
    # Levels 2 and 3 sign in time; levels 4–6 do not, and their deadlines are in the past.
    for lp in receipts.filter(level__lte=3):
        do_sign_receipt(loop_id=lp.pk, acting_user=own_staff(tiny, lp.owner_unit_id))
    late = receipts.filter(level__gte=4)
    past = timezone.now() - timedelta(minutes=5)
    late.update(ack_due_at=past, next_reminder_at=past)
    late_units = set(late.values_list("owner_unit_id", flat=True))
    parents = dict(Unit.objects.filter(id__in=late_units).values_list("id", "parent_id"))
    owners = Counter(u.pk for unit_id in late_units for u in tiny["staff"][unit_id])
    assert len(late_units) > 5 and owners

    # Round 1: every owner of a late unit gets exactly one digest, however many of its loops are late.
    assert remind_due("worker-1") == len(late_units)
    assert inbox_counts("remind") == Counter(dict.fromkeys(owners, 1))
    assert not inbox_counts("escalate")
    # The same round again (another worker, or a restarted one): nothing new.
    assert remind_due("worker-2") == 0
    assert inbox_counts("remind") == Counter(dict.fromkeys(owners, 1))

    # Round 2: one more each.
    time_passes(late)
    assert remind_due("worker-1") == len(late_units)
    assert inbox_counts("remind") == Counter(dict.fromkeys(owners, 2))
    assert remind_due("worker-1") == 0

    # Round 3: the limit (2) is reached, so the parent units' staff are told instead (督办), once each.
    time_passes(late)
    assert remind_due("worker-1") == len(late_units)
    assert inbox_counts("remind") == Counter(dict.fromkeys(owners, 2))
    parent_staff = {u.pk for unit_id in late_units for u in tiny["staff"][parents[unit_id]]}
    assert inbox_counts("escalate") == Counter(dict.fromkeys(parent_staff, 1))
    assert all(lp.escalated_at and lp.next_reminder_at is None for lp in late)
    # Escalated loops are not chased again, whatever the clock says.
    time_passes(late)
    assert remind_due("worker-1") == 0
    assert sum(inbox_counts("escalate").values()) == len(parent_staff)

    events = Counter(LoopEvent.objects.filter(loop__in=late).values_list("loop_id", "action"))
    for lp in late:
        assert (events[(lp.pk, "reminded")], events[(lp.pk, "escalated")]) == (2, 1)
    on_time = receipts.filter(level__lte=3)
    assert not LoopEvent.objects.filter(loop__in=on_time, action__in=["reminded", "escalated"]).exists()
    # Each recipient got one message per round, not one per loop or household.
    reminders = Message.objects.filter(channel=Channel.INBOX, subject__regex=r"^(催办|督办)")
    assert reminders.count() == 2 * len(owners) + len(parent_staff)


def test_closing_early_ends_the_open_receipts_so_nobody_is_reminded_after(tiny):
    commander = tiny["commander"]
    directive = do_issue_directive(acting_user=commander, title="提前销号", body="内容")
    receipts = Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk)
    first = receipts.filter(level=2).first()
    do_sign_receipt(loop_id=first.pk, acting_user=own_staff(tiny, first.owner_unit_id))
    do_report_receipt(loop_id=first.pk, answers={}, acting_user=own_staff(tiny, first.owner_unit_id))
    with pytest.raises(DirectiveError, match="^reason"):
        do_close_directive(directive=directive, acting_user=commander)
    do_close_directive(directive=directive, acting_user=commander, reason="疫情解除")
    assert Loop.objects.get(pk=first.pk).state == LoopState.CLOSED
    assert not receipts.filter(state__in=OPEN_STATES).exists()
    assert set(receipts.exclude(pk=first.pk).values_list("state", flat=True)) == {LoopState.CANCELLED}
    receipts.update(next_reminder_at=timezone.now() - timedelta(minutes=1))
    assert remind_due("worker-1") == 0
    assert not Message.objects.filter(subject__startswith="催办").exists()
