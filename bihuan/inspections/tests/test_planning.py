"""Weekly plans: targets weighted by risk and lagging indicators — overdue work and posts short on the duty roster
(read from the forces app) — drawn with a seed kept for audit, every candidate's weight kept with the plan."""

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from bihuan.inspections import actions, planning
from bihuan.inspections.models import TargetKind
from bihuan.register.models import Staff

from .helpers import create_post

pytestmark = pytest.mark.django_db


def both_townships_group(world):
    d = world.d
    return actions.do_create_group(name="第三督导组", leader=world.inspector, members=[world.inspector],
                                   territory=[d.township_a, d.township_b], visits_per_week=3,
                                   acting_user=d.users["commander"])


def week() -> dt.date:
    return planning.monday(timezone.localdate())


def by_target(cands):
    return {(c.kind, c.target_id): c for c in cands}


def test_without_lag_two_communities_weigh_the_same(world):
    group = both_townships_group(world)
    cands = by_target(planning.candidates(group, timezone.now(), week()))
    d = world.d
    assert cands[(TargetKind.COMMUNITY, d.community_a.pk)].weight == 1.0
    assert cands[(TargetKind.COMMUNITY, d.village_b.pk)].weight == 1.0


def test_a_post_short_on_the_roster_weighs_more_and_so_does_its_community(world):
    d = world.d
    guard = Staff.objects.get(user=d.users["village_b"])
    short = create_post(d.community_a, "鼓楼路卡点")  # nobody on the roster this week
    full = create_post(d.village_b, "东羊村卡点", staffed_by=guard, week_start=week())
    sampling = create_post(d.community_a, "鼓楼采样点", kind="sampling", staffed_by=guard, week_start=week(),
                           start_hour=20, end_hour=23)
    group = both_townships_group(world)
    cands = by_target(planning.candidates(group, timezone.now(), week()))
    a, b = cands[(TargetKind.COMMUNITY, d.community_a.pk)], cands[(TargetKind.COMMUNITY, d.village_b.pk)]
    assert dict(a.why) == {"base": 1.0, "roster": 1.0} and a.weight == 2.0
    assert dict(b.why) == {"base": 1.0} and b.weight == 1.0
    p_short, p_full = cands[(TargetKind.CHECKPOINT, short.pk)], cands[(TargetKind.CHECKPOINT, full.pk)]
    assert dict(p_short.why)["post_gap"] == 3.0  # 84 short hours: 1 + 84/24, at most 3
    assert p_short.weight == 0.5 + 3.0 + 1.0 and p_short.responsible_path == d.community_a.path
    assert "post_gap" not in dict(p_full.why) and p_full.weight == 0.5
    assert cands[(TargetKind.SAMPLING_POINT, sampling.pk)].kind == TargetKind.SAMPLING_POINT


def test_a_community_with_roster_gaps_is_drawn_more_often_over_many_seeds(world):
    d = world.d
    guard = Staff.objects.get(user=d.users["village_b"])
    short = create_post(d.community_a, "鼓楼路卡点")
    full = create_post(d.village_b, "东羊村卡点", staffed_by=guard, week_start=week())
    group = both_townships_group(world)
    cands = planning.candidates(group, timezone.now(), week())
    drawn = Counter()
    for seed in range(2000):  # fixed seeds: the same counts on every run
        for c in planning.draw(cands, 3, seed):
            drawn[(c.kind, c.target_id)] += 1
    gap_community = drawn[(TargetKind.COMMUNITY, d.community_a.pk)]
    no_gap_community = drawn[(TargetKind.COMMUNITY, d.village_b.pk)]
    assert gap_community > 1.3 * no_gap_community, (gap_community, no_gap_community)
    short_drawn, full_drawn = drawn[(TargetKind.CHECKPOINT, short.pk)], drawn[(TargetKind.CHECKPOINT, full.pk)]
    assert short_drawn > 3 * full_drawn, (short_drawn, full_drawn)


def test_the_plan_keeps_every_candidates_weight_and_the_draw_repeats_from_them(world):
    d = world.d
    short = create_post(d.community_a, "鼓楼路卡点")
    group = both_townships_group(world)
    plan = actions.do_draw_plan(group, week_start=week(), seed=20201, acting_user=d.users["commander"])
    kept = {(kind, target): (weight, why) for kind, target, weight, why in plan.weights}
    assert plan.candidates == len(plan.weights) and plan.weights_digest == planning.digest(plan.weights)
    assert kept[(TargetKind.CHECKPOINT, short.pk)] == (4.5, {"base": 0.5, "post_gap": 3.0, "roster": 1.0})
    assert kept[(TargetKind.COMMUNITY, d.community_a.pk)] == (2.0, {"base": 1.0, "roster": 1.0})
    drawn = [(v.target_kind, v.case_id or v.post_id or v.unit_id) for v in plan.visits.order_by("id")]
    assert actions.redraw_recorded(plan) == drawn
    assert actions.redraw(plan) == drawn  # the data has not changed since
    # The roster is filled afterwards: the live weights change, the kept ones (and their draw) do not.
    create_post(d.village_b, "东羊村新卡点")
    assert planning.digest(planning.candidates(group, plan.as_of, plan.week_start)) != plan.weights_digest
    assert actions.redraw_recorded(plan) == drawn
    visit = plan.visits.get(target_kind=TargetKind.CHECKPOINT)  # the heaviest target was drawn with this seed
    assert visit.post_id == short.pk and visit.label == "鼓楼路卡点" and visit.responsible_unit == d.community_a


def test_a_checkpoint_visit_takes_the_newest_checklist_and_reads_staff_on_duty_from_the_roster(world, clock):
    d = world.d
    clock.set_local(week() + dt.timedelta(days=1), 10)  # Tuesday 10:00, inside the post's 8–20 window
    guard = Staff.objects.get(user=d.users["community_a"])
    short = create_post(d.community_a, "鼓楼路卡点")
    group = both_townships_group(world)
    plan = actions.do_draw_plan(group, week_start=week(), seed=20201, acting_user=d.users["commander"])
    visit = plan.visits.get(target_kind=TargetKind.CHECKPOINT)
    assert visit.template.version == 2
    actions.do_start_visit(visit, acting_user=world.inspector)
    staff = visit.answers.get(item__key="staff_on_duty")
    assert staff.prefilled == "fail" and "排班在岗 0 人，应在岗 1 人" in staff.evidence
    assert staff.evidence_url.endswith(f"/posts/{short.pk}/")
    from bihuan.forces.models import Shift

    Shift.objects.create(post=short, path=short.path, staff=guard, starts_at=clock.now - dt.timedelta(hours=1),
                         ends_at=clock.now + dt.timedelta(hours=3))
    from bihuan.inspections.prefill import post_staffed

    assert post_staffed(visit, clock.now)[0] == "pass"
