"""The demo day: a district in the middle of its work, built through the actions and the loop engine."""

from __future__ import annotations

import pytest
from django.utils import timezone

from bihuan.control.models import ALERT, MISSED_CHECKIN, SERVICE, CheckIn, ControlCase
from bihuan.control.models import TestSample as Sample
from bihuan.demo.day import build_day
from bihuan.demo.generate import generate_district
from bihuan.directives.models import RECEIPT, Directive, DirectiveStatus, Reach, ReachStatus
from bihuan.loops.models import Loop, LoopEvent, LoopState
from bihuan.notify.models import Message
from bihuan.pushes.models import VERIFICATION, Outcome, PushedPerson, Transfer, Verification
from bihuan.register import coverage


def quiet(line: str) -> None:
    pass


@pytest.fixture
def day(db):
    generate_district("tiny", seed=1, out=quiet)
    return build_day(seed=1, out=quiet)


def test_directives_are_at_three_stages_with_units_overdue_and_reminders_sent(day):
    # (the household screening the checkpoints' share starts is a directive of its own: bihuan.checkpoints)
    directives = list(Directive.objects.filter(campaign__isnull=True).order_by("issued_at"))
    assert Directive.objects.filter(campaign__isnull=False).count() == 1
    assert [d.status for d in directives] == [DirectiveStatus.CLOSED, DirectiveStatus.ISSUED, DirectiveStatus.ISSUED]
    closed, running, fresh = directives
    assert Reach.objects.filter(directive=closed, status=ReachStatus.REACHED).count() > 0
    reached = Reach.objects.filter(directive=running, status=ReachStatus.REACHED).count()
    assert 0 < reached < Reach.objects.filter(directive=running).count()
    assert Loop.objects.overdue(timezone.now()).filter(kind=RECEIPT, subject_id=running.pk).exists()
    assert Loop.objects.filter(kind=RECEIPT, subject_id=running.pk, reminders_sent__gt=0).exists()
    assert not Loop.objects.filter(kind=RECEIPT, subject_id=fresh.pk).exclude(state=LoopState.ISSUED).exists()


def test_pushed_lists_are_partly_verified_some_overdue_and_one_transfer_bounces(day):
    assert PushedPerson.objects.count() >= 32
    verified = Verification.objects.exclude(outcome=Outcome.VERIFYING).count()
    assert 0 < verified < Verification.objects.count()
    assert Loop.objects.overdue(timezone.now()).filter(kind=VERIFICATION).exists()
    assert Transfer.objects.filter(ping_pong=True).count() == 1


def test_people_are_under_each_kind_of_control_with_one_abnormal_and_one_missed_check_in(day):
    kinds = set(ControlCase.objects.values_list("type__code", flat=True))
    assert kinds == {"centralized_quarantine", "home_isolation", "home_monitoring"}
    assert CheckIn.objects.filter(abnormal=True).count() == 1
    assert Loop.objects.filter(kind=ALERT).count() == 1
    assert Loop.objects.filter(kind=MISSED_CHECKIN).count() == 1
    assert Sample.objects.filter(result="negative").exists()
    services = Loop.objects.filter(kind=SERVICE)
    assert services.filter(state=LoopState.CLOSED).exists() and services.exclude(state=LoopState.CLOSED).exists()


def test_blind_spots_are_real_and_the_inbox_has_messages(day):
    _units, totals = coverage.rollup()
    root = min(totals, key=lambda pk: 0)  # any key: the district's own totals are the largest
    district = max(totals.values(), key=lambda c: c.households)
    assert district.households_without_grid == 3 and district.grids_without_responsible == 1
    assert root in totals
    assert Message.objects.count() > 10


def test_nothing_in_the_day_happens_after_now_and_only_the_engine_wrote_loops(day):
    now = timezone.now()
    assert not LoopEvent.objects.filter(at__gt=now).exists()
    assert not Loop.objects.filter(created_at__gt=now).exists()


def test_the_same_seed_gives_the_same_day(db):
    generate_district("tiny", seed=1, out=quiet)
    first = build_day(seed=1, out=quiet)
    from bihuan.demo.generate import reset_register

    reset_register(out=quiet)
    generate_district("tiny", seed=1, out=quiet)
    assert build_day(seed=1, out=quiet) == first
