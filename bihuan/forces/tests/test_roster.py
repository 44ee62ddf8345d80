"""Roster gaps and conflicts, found exactly: the set-based SQL against a brute-force recount over a generated
week; assigning refuses a conflict; copying a week."""

import datetime as dt
import random

import pytest
from django.utils import timezone

from bihuan.core.errors import Refused
from bihuan.forces import roster
from bihuan.forces.actions import do_assign_shift, do_copy_week, do_create_post
from bihuan.forces.models import MAX_HOURS_PER_DAY, Post, Shift
from bihuan.register.models import Staff

from .helpers import active_helper, at, brute_force_week


def test_gaps_and_conflicts_equal_a_brute_force_recount_over_a_generated_week(district):
    d = district
    rng = random.Random(7)
    monday = roster.monday_of(timezone.localdate())
    units = [d.compound_a, d.community_a, d.group_b, d.village_b, d.grid_a]
    posts = [do_create_post(rng.choice(units), name=f"岗{i}", kind="gate", start_hour=rng.choice([0, 6, 8, 20]),
                            end_hour=rng.choice([24, 18, 22, 8, 6]), required=rng.randint(1, 3), acting_user=None)
             for i in range(12)]
    people = [active_helper(rng.choice([d.community_a, d.village_b]), f"志愿者{i}") for i in range(15)]
    staff = list(Staff.objects.all()[:3])
    # Written straight to the table (not through do_assign_shift, which refuses conflicts): the week must hold some.
    rows = []
    for _ in range(160):
        start = at(monday, 0) + dt.timedelta(hours=rng.randint(-6, 7 * 24 + 2))
        length = dt.timedelta(hours=rng.choice([2, 4, 6, 8, 10]))
        person = rng.choice(people + staff)
        is_helper = person in people
        rows.append(Shift(post=rng.choice(posts), path="", helper=person if is_helper else None,
                          staff=None if is_helper else person, starts_at=start, ends_at=start + length))
    for s in rows:
        s.path = s.post.path
    Shift.objects.bulk_create(rows)
    shifts = [(s.id, s.post_id, ("h", s.helper_id) if s.helper_id else ("s", s.staff_id), s.starts_at, s.ends_at)
              for s in Shift.objects.all()]
    expected = brute_force_week(monday, [(p.id, p.start_hour, p.end_hour, p.required) for p in posts], shifts,
                                MAX_HOURS_PER_DAY)
    got = roster.week_by_post(monday)
    for p in posts:
        w = got.get(p.id, roster.PostWeek())
        e = expected[p.id]
        assert (w.gap_seconds / 3600, w.short_seconds / 3600, w.overlaps, w.overhours) == (
            e["gap_hours"], e["short_hours"], e["overlaps"], e["overhours"]), p.name
    assert sum(e["overlaps"] for e in expected.values()) > 0 and sum(e["overhours"] for e in expected.values()) > 0
    assert sum(e["gap_hours"] for e in expected.values()) > 0

    # Rolled up: every unit holds the sum of its subtree's posts; the district all of them.
    units_, totals = roster.roster_rollup(monday)
    district_total = totals[d.district.id]
    assert district_total.gap_hours == sum(e["gap_hours"] for e in expected.values())
    assert district_total.overlaps == sum(e["overlaps"] for e in expected.values())
    assert district_total.posts == len(posts)
    branch_a = [p for p in posts if p.path.startswith(d.township_a.path)]
    assert totals[d.township_a.id].short_hours == sum(expected[p.id]["short_hours"] for p in branch_a)
    # And the rollup for a subtree alone says the same for it.
    _, only_a = roster.roster_rollup(monday, d.township_a)
    assert only_a[d.township_a.id].gap_hours == totals[d.township_a.id].gap_hours


def test_a_post_without_anyone_on_the_roster_is_short_every_staffed_hour(district):
    monday = roster.monday_of(timezone.localdate())
    post = do_create_post(district.compound_a, name="南门", kind="gate", start_hour=8, end_hour=20, required=2,
                          acting_user=None)
    night = do_create_post(district.group_b, name="村口", kind="checkpoint", start_hour=20, end_hour=8, required=1,
                           acting_user=None)
    got = roster.week_by_post(monday)
    assert got[post.id].gap_seconds == 7 * 12 * 3600 and got[post.id].short_seconds == 7 * 12 * 2 * 3600
    # A night post's windows start each evening; the last one is cut at the week's end (4 hours of Sunday).
    assert got[night.id].gap_seconds == (6 * 12 + 4) * 3600


def test_assigning_refuses_a_person_in_two_places_and_over_the_daily_hours(district):
    d = district
    monday = roster.monday_of(timezone.localdate()) + dt.timedelta(days=7)
    gate = do_create_post(d.compound_a, name="北门", kind="gate", acting_user=None)
    door = do_create_post(d.compound_a, name="3号楼", kind="building", acting_user=None)
    helper = active_helper(d.community_a)
    do_assign_shift(gate, helper=helper, starts_at=at(monday, 8), ends_at=at(monday, 14), acting_user=d.users["community_a"])
    with pytest.raises(Refused, match="同一时段已在「北门」值班"):
        do_assign_shift(door, helper=helper, starts_at=at(monday, 12), ends_at=at(monday, 16), acting_user=None)
    do_assign_shift(door, helper=helper, starts_at=at(monday, 14), ends_at=at(monday, 20), acting_user=None)
    with pytest.raises(Refused, match="超过 12 小时"):
        do_assign_shift(door, helper=helper, starts_at=at(monday, 21), ends_at=at(monday, 23), acting_user=None)
    # An outsider community may not put anyone on branch A's posts.
    with pytest.raises(Refused, match="不在您的管辖范围内"):
        do_assign_shift(gate, helper=helper, starts_at=at(monday, 1), ends_at=at(monday, 2),
                        acting_user=d.users["village_b"])


def test_copying_last_weeks_roster_once(district):
    d = district
    monday = roster.monday_of(timezone.localdate())
    gate = do_create_post(d.compound_a, name="北门", kind="gate", acting_user=None)
    helper = active_helper(d.community_a)
    for day in range(3):
        do_assign_shift(gate, helper=helper, starts_at=at(monday, 8) + dt.timedelta(days=day),
                        ends_at=at(monday, 16) + dt.timedelta(days=day), acting_user=None)
    assert do_copy_week(d.community_a, from_monday=monday, acting_user=d.users["community_a"]) == 3
    assert do_copy_week(d.community_a, from_monday=monday, acting_user=d.users["community_a"]) == 0
    next_week = list(Shift.objects.filter(starts_at__gte=at(monday, 0) + dt.timedelta(days=7)).order_by("starts_at"))
    assert [s.starts_at for s in next_week] == [at(monday, 8) + dt.timedelta(days=7 + k) for k in range(3)]
    assert Post.objects.count() == 1


def _sheet(rows) -> bytes:
    import io

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["岗位", "日期", "开始", "结束", "姓名", "手机"])
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_a_roster_upload_with_unknown_names_or_overlaps_says_why_per_row_and_writes_nothing(district):
    from bihuan.forces.upload import import_roster

    d = district
    day = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    do_create_post(d.compound_a, name="锦悦小区大门", kind="gate", acting_user=None)
    active_helper(d.community_a, "周卫国", phone="13912345670")
    bad = _sheet([["锦悦小区大门", day, "8:00", "16:00", "周卫国", ""],
                  ["锦悦小区大门", day, "12:00", "20:00", "周卫国", ""],
                  ["锦悦小区大门", day, "8:00", "16:00", "张无名", ""],
                  ["西门", day, "8:00", "16:00", "周卫国", ""]])
    added, errors = import_roster(d.community_a, bad, "排班表.xlsx", acting_user=d.users["community_a"])
    assert added == 0 and not Shift.objects.exists()
    assert [(e.row, e.message) for e in errors] == [
        (3, "周卫国 与第 2 行的班次时间重叠"), (4, "本社区没有在岗的“张无名”"), (5, "没有这个岗位：“西门”")]
    good = _sheet([["锦悦小区大门", day, "8:00", "16:00", "周卫国", "139 1234 5670"],
                   ["锦悦小区大门", day, "16", "24", "周卫国", ""]])
    added, errors = import_roster(d.community_a, good, "排班表.xlsx", acting_user=d.users["community_a"])
    assert (added, [(e.row, e.message) for e in errors]) == (0, [(3, "周卫国 当天排班超过 12 小时")])
    good = _sheet([["锦悦小区大门", day, "8:00", "16:00", "周卫国", "139 1234 5670"],
                   ["锦悦小区大门", day, "16", "20", "周卫国", ""]])
    added, errors = import_roster(d.community_a, good, "排班表.xlsx", acting_user=d.users["community_a"])
    assert (added, errors) == (2, []) and Shift.objects.count() == 2
    # The same file again: every row now clashes with the roster itself; nothing more is written.
    added, errors = import_roster(d.community_a, good, "排班表.xlsx", acting_user=d.users["community_a"])
    assert added == 0 and "同一时段已在「锦悦小区大门」值班" in errors[0].message and Shift.objects.count() == 2
