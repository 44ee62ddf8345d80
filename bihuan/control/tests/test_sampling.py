"""Test schedules: the day's door-to-door sampling list grouped by grid and building, recording results,
and missed samples marked and escalated once by the worker."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from bihuan.control.models import TEST_MISSED, TEST_POSITIVE
from bihuan.control.models import TestResult as Result
from bihuan.control.models import TestSample as Sample
from bihuan.control.sampling import SampleError, do_record_result, mark_missed_samples, sampling_list
from bihuan.core.models import AuditEntry
from bihuan.core.worker import run_tick
from bihuan.loops.models import Loop
from bihuan.notify.models import Message
from bihuan.register.models import HouseholdKind
from bihuan.testing import create_household, create_resident

from .helpers import build_care, freeze, inbox_users, make_case


def today():
    return timezone.localdate()


def test_the_days_sampling_list_is_grouped_by_grid_and_building_in_door_order(care):
    d = care.d
    start = today()
    in_3_401 = make_case(d.grid_a, resident=d.resident_a, start=start)  # building 3, entrance 2, room 401
    h_3_201 = create_household(d.grid_a, "锦悦小区3号楼1单元201", building="3", entrance="1", room="201")
    in_3_201 = make_case(d.grid_a, resident=create_resident(h_3_201, "孙立"), start=start)
    h_10 = create_household(d.grid_a, "锦悦小区10号楼1单元101", building="10", entrance="1", room="101")
    in_10 = make_case(d.grid_a, resident=create_resident(h_10, "周敏"), start=start)
    hotel_b = make_case(d.grid_a, name="吴刚", site_kind="hotel", site_address="尧都宾馆", site_room="512", start=start)
    hotel_a = make_case(d.grid_a, name="郑洁", site_kind="hotel", site_address="尧都宾馆", site_room="305", start=start)
    rural = make_case(d.grid_b, resident=d.resident_b, start=start)
    make_case(d.grid_a, name="已解除", state="released", start=start)
    make_case(d.grid_a, name="明天才采", start=start - timedelta(days=2), tests=(4,))

    groups = sampling_list(d.community_a, start)
    assert [(g.unit, g.place, g.label) for g in groups] == [
        (d.grid_a, "3", "3号楼"), (d.grid_a, "10", "10号楼"), (d.grid_a, "尧都宾馆", "尧都宾馆")]
    assert [[s.case for s in g.samples] for g in groups] == [[in_3_201, in_3_401], [in_10], [hotel_a, hotel_b]]
    assert all(s.day == 1 and s.date == start for g in groups for s in g.samples)

    assert [[s.case for s in g.samples] for g in sampling_list(d.grid_b, start)] == [[rural]]
    [group] = sampling_list(d.village_b, start)
    assert group.place == "" and group.label == d.grid_b.name

    do_record_result(Sample.objects.get(case=in_10, day=1), "pending", acting_user=d.users["grid_a"])
    assert [g.done for g in sampling_list(d.community_a, start)] == [0, 1, 0]


def test_a_rural_household_without_building_sorts_by_house_number(care):
    d = care.d
    start = today()
    h2 = create_household(d.grid_b, "东羊村一组2号", kind=HouseholdKind.RURAL, house_number="2")
    first = make_case(d.grid_b, resident=create_resident(h2, "钱进"), start=start)
    second = make_case(d.grid_b, resident=d.resident_b, start=start)  # house 12
    [group] = sampling_list(d.grid_b, start)
    assert [s.case for s in group.samples] == [first, second]


def test_results_are_recorded_and_corrected_with_audit(care):
    sample = Sample.objects.get(case=care.case, day=1)
    grid = care.d.users["grid_a"]
    Sample.objects.filter(pk=sample.pk).update(result="")
    sample = do_record_result(sample, "pending", acting_user=grid)
    assert sample.result == Result.PENDING and sample.sampled_at and sample.recorded_by == grid
    sampled_at = sample.sampled_at
    sample = do_record_result(sample, "negative", acting_user=care.doctor)
    assert sample.result == Result.NEGATIVE and sample.sampled_at == sampled_at
    assert do_record_result(sample, "negative", acting_user=grid).recorded_by == care.doctor  # unchanged
    changes = [e.changes["result"] for e in AuditEntry.objects.filter(action="control.test_result").order_by("id")]
    assert changes == [["", "pending"], ["pending", "negative"]]
    assert not Loop.objects.exists() and not Message.objects.exists()


def test_a_result_is_refused_for_a_future_test_an_unknown_value_and_an_outsider(care):
    future = Sample.objects.get(case=care.case, day=4)
    with pytest.raises(SampleError, match="^result:"):
        do_record_result(future, "negative", acting_user=care.d.users["grid_a"])
    with pytest.raises(SampleError, match="^result:"):
        do_record_result(Sample.objects.get(case=care.case, day=1), "maybe", acting_user=care.d.users["grid_a"])
    with pytest.raises(Http404):
        do_record_result(Sample.objects.get(case=care.case, day=1), "positive", acting_user=care.d.users["township_b"])
    assert not Loop.objects.exists()


def test_a_missed_result_escalates_to_the_team_and_community_but_not_the_office(care):
    sample = Sample.objects.get(case=care.case, day=1)
    do_record_result(sample, "missed", acting_user=care.d.users["grid_a"])
    loop = Loop.objects.get(kind=TEST_MISSED, subject_id=sample.pk)
    assert loop.owner_unit == care.d.community_a
    run_tick()
    assert inbox_users() == care.team | {"community_a"}


def test_a_positive_after_a_missed_mark_opens_its_own_loop(care):
    sample = Sample.objects.get(case=care.case, day=1)
    do_record_result(sample, "missed", acting_user=care.d.users["grid_a"])
    do_record_result(sample, "positive", acting_user=care.d.users["community_a"])
    assert set(Loop.objects.values_list("kind", "subject_id")) == {(TEST_MISSED, sample.pk), (TEST_POSITIVE, sample.pk)}
    run_tick()
    assert "office" in inbox_users()


def test_the_worker_marks_past_samples_missed_and_escalates_each_once(district, monkeypatch):
    day = dt.date(2026, 3, 10)
    clock = freeze(monkeypatch, day, 8)
    c = build_care(district)
    untaken = make_case(c.d.grid_a, resident=c.d.resident_a2, start=day - timedelta(days=3), past_result="",
                        tests=(1, 2, 4))  # days 1 and 2 are past and were never taken; day 4 is today
    pending = Sample.objects.get(case=untaken, day=2)
    Sample.objects.filter(pk=pending.pk).update(result="pending")  # taken, result awaited: not missed
    make_case(c.d.grid_a, name="已解除", state="released", start=day - timedelta(days=3), past_result="")

    run_tick("w1")
    run_tick("w2")
    missed = Sample.objects.filter(result=Result.MISSED)
    assert list(missed.values_list("case_id", "day")) == [(untaken.pk, 1)]
    assert Loop.objects.filter(kind=TEST_MISSED).count() == 1
    # the team of the untaken case is the grid's responsible people (it has none of its own)
    assert inbox_users() == {"grid_a", "community_a"}
    count = Message.objects.count()
    assert mark_missed_samples() == 0
    clock.advance(days=1)  # day 4 (today before) is now past as well
    assert mark_missed_samples() == 1
    assert mark_missed_samples() == 0
    assert Message.objects.count() == count * 2
    assert Loop.objects.filter(kind=TEST_MISSED).count() == 2
    assert AuditEntry.objects.filter(action="control.test_result", changes__by="worker").count() == 2
