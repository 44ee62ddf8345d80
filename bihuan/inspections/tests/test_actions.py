import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile

from bihuan.inspections import actions
from bihuan.inspections.actions import InspectionError
from bihuan.inspections.models import Finding, Severity, TargetKind, VisitState
from bihuan.loops.models import Loop, LoopEvent, LoopState
from bihuan.notify.models import Message

from .helpers import answers_failing, draw_home_visit, png, visit_and_fail

pytestmark = pytest.mark.django_db


def test_a_plan_draws_only_from_the_groups_territory_and_its_seed_repeats_the_draw(world):
    plan, _visit = draw_home_visit(world)
    visits = list(plan.visits.all())
    assert {v.target_kind for v in visits} == {TargetKind.HOME, TargetKind.COMMUNITY, TargetKind.COMPOUND}
    assert all(v.path.startswith(world.d.township_a.path) for v in visits)
    assert actions.redraw(plan) == [(v.target_kind, v.case_id or v.unit_id) for v in
                                    sorted(visits, key=lambda v: v.planned_for)] or \
        sorted(actions.redraw(plan)) == sorted((v.target_kind, v.case_id or v.unit_id) for v in visits)


def test_a_draw_is_weighted_and_reproducible_from_its_seed():
    from bihuan.inspections.planning import Candidate, draw

    cands = [Candidate("community", i, f"{i:04d}", f"{i:04d}", None, str(i), 1.0 + (i == 3) * 50) for i in range(20)]
    assert draw(cands, 5, 42) == draw(cands, 5, 42)
    hits = sum(any(c.unit_id == 3 for c in draw(cands, 1, seed)) for seed in range(200))
    assert hits > 100  # weight 51 of 70: drawn first most of the time


def test_only_the_district_command_draws_plans(world):
    with pytest.raises(PermissionDenied):
        actions.do_draw_plan(world.group, week_start=dt.date.today(), seed=1, acting_user=world.d.users["township_a"])


def test_starting_a_home_visit_prefills_the_measures_from_the_case_with_evidence(world):
    _plan, visit = draw_home_visit(world)
    actions.do_start_visit(visit, acting_user=world.inspector)
    answers = {a.item.key: a for a in visit.answers.select_related("item")}
    assert answers["card_posted"].prefilled == "pass"
    assert answers["sensor_working"].prefilled == "fail"
    assert "未登记" in answers["sensor_working"].evidence
    assert answers["sensor_working"].evidence_url.endswith(f"/control/cases/{world.case.pk}/")
    assert answers["waste_handled"].prefilled == ""  # answered by eye


def test_an_inspector_of_another_group_cannot_start_the_visit(world):
    _plan, visit = draw_home_visit(world)
    with pytest.raises(PermissionDenied):
        actions.do_start_visit(visit, acting_user=world.other_inspector)


def test_overriding_what_the_data_says_needs_a_reason(world):
    _plan, visit = draw_home_visit(world)
    actions.do_start_visit(visit, acting_user=world.inspector)
    answers = answers_failing(visit, "card_posted")
    card = visit.answers.get(item__key="card_posted")
    answers[card.pk]["reason"] = ""
    with pytest.raises(InspectionError) as e:
        actions.do_submit_visit(visit, answers, acting_user=world.inspector)
    assert e.value.field == f"answer-{card.pk}"


def test_a_failed_item_needs_a_real_photo(world):
    _plan, visit = draw_home_visit(world)
    actions.do_start_visit(visit, acting_user=world.inspector)
    answers = answers_failing(visit, "waste_handled")
    waste = visit.answers.get(item__key="waste_handled")
    answers[waste.pk]["photo"] = SimpleUploadedFile("x.jpg", b"not an image at all", content_type="image/jpeg")
    with pytest.raises(InspectionError, match="JPEG"):
        actions.do_submit_visit(visit, answers, acting_user=world.inspector)
    answers[waste.pk]["photo"] = None
    with pytest.raises(InspectionError, match="拍照"):
        actions.do_submit_visit(visit, answers, acting_user=world.inspector)


def test_a_failed_item_opens_exactly_one_rectification_loop_owned_by_the_community(world):
    visit, findings = visit_and_fail(world, "sensor_working", "waste_handled")
    visit.refresh_from_db()
    assert visit.state == VisitState.DONE
    assert len(findings) == 2
    loops = Loop.objects.filter(kind__startswith="inspections.rectify")
    assert loops.count() == 2
    sensor = Finding.objects.get(item_key="sensor_working")
    assert sensor.severity == Severity.CRITICAL and sensor.loop.kind == "inspections.rectify.critical"
    assert sensor.loop.owner_unit == world.d.community_a
    waste = Finding.objects.get(item_key="waste_handled")
    assert waste.loop.due_at - waste.created_at == dt.timedelta(hours=72)
    assert Message.objects.filter(user=world.d.users["community_a"], subject__contains="督查整改").exists()
    assert sensor.answer.photo.name.startswith("inspections/")


def test_a_rectification_is_reminded_once_then_escalated_once(world, clock):
    from bihuan.loops.engine import remind_round

    _visit, findings = visit_and_fail(world, "waste_handled")
    loop = findings[0].loop
    clock.advance(hours=73)
    remind_round(list(Loop.objects.filter(pk=loop.pk)), clock.now)
    clock.advance(hours=5)
    remind_round(list(Loop.objects.filter(pk=loop.pk)), clock.now)
    clock.advance(hours=5)
    remind_round(list(Loop.objects.filter(pk=loop.pk)), clock.now)
    actions_seen = list(LoopEvent.objects.filter(loop=loop).values_list("action", flat=True))
    assert actions_seen.count("reminded") == 1
    assert actions_seen.count("escalated") == 1
    assert Message.objects.filter(user=world.d.users["township_a"], subject__startswith="督办").count() == 1


def test_the_community_reports_with_a_photo_and_the_inspector_closes_one_and_returns_one(world):
    _visit, findings = visit_and_fail(world, "sensor_working", "waste_handled")
    community = world.d.users["community_a"]
    for f in findings:
        actions.do_report_rectification(f, text="已整改", photo=png(), acting_user=community)
    sensor, waste = sorted(findings, key=lambda f: f.item_key)
    actions.do_close_rectification(sensor, acting_user=world.inspector)
    actions.do_return_rectification(waste, reason="照片看不清垃圾桶消杀记录", acting_user=world.inspector)
    assert Loop.objects.get(pk=sensor.loop_id).state == LoopState.CLOSED
    returned = Loop.objects.get(pk=waste.loop_id)
    assert returned.state == LoopState.IN_PROGRESS
    assert LoopEvent.objects.filter(loop=returned, note__contains="照片看不清").exists()
    assert Finding.objects.get(pk=waste.pk).returns == 1
    with pytest.raises(InspectionError):
        actions.do_return_rectification(waste, reason="", acting_user=world.inspector)


def test_the_target_unit_cannot_close_its_own_rectification(world):
    _visit, findings = visit_and_fail(world, "waste_handled")
    actions.do_report_rectification(findings[0], text="已整改", photo=png(), acting_user=world.d.users["community_a"])
    with pytest.raises(PermissionDenied):
        actions.do_close_rectification(findings[0], acting_user=world.d.users["community_a"])
    with pytest.raises(PermissionDenied):
        actions.do_report_rectification(findings[0], text="x", photo=png(), acting_user=world.d.users["village_b"])


def test_the_same_item_failing_again_within_14_days_is_a_repeat_that_tells_the_parent(world, clock):
    _visit, first = visit_and_fail(world, "waste_handled")
    assert first[0].severity == Severity.MINOR
    clock.advance(days=8)
    _visit, again = visit_and_fail(world, "waste_handled", week_start=clock.now.date())
    assert again[0].repeat_of == first[0]
    assert again[0].severity == Severity.MAJOR
    assert again[0].loop.kind == "inspections.rectify.major"
    assert Message.objects.filter(user=world.d.users["township_a"], subject__startswith="重复问题").exists()


def test_a_failure_after_14_days_is_not_a_repeat(world, clock):
    _visit, first = visit_and_fail(world, "waste_handled")
    clock.advance(days=15)
    _visit, later = visit_and_fail(world, "waste_handled", week_start=clock.now.date())
    assert later[0].repeat_of is None and later[0].severity == Severity.MINOR


def test_the_demo_generator_makes_groups_plans_visits_and_findings(district):
    from bihuan.demo.day import _Day, clock_at
    from bihuan.demo.inspections import generate_inspections, plan_day
    from bihuan.inspections.models import Finding, InspectionGroup, Plan

    made = generate_inspections("demo", 1, out=lambda line: None)
    assert made["groups"] == InspectionGroup.objects.count() == 2  # one per township of the base district
    assert Plan.objects.count() == 2 and not Finding.objects.exists()  # the visits are the demo day's
    day = _Day(1, out=lambda line: None)
    plan_day(day)  # the inspections' share of the day alone
    for moment, _n, fn in sorted(day.events, key=lambda e: (e[0], e[1])):
        with clock_at(moment):
            fn()
    assert day.counts["visits"] >= 2 and day.counts["findings"] >= 3  # the first visit fails each severity
    assert Loop.objects.filter(kind__startswith="inspections.rectify").count() == day.counts["findings"]
    assert {f.severity for f in Finding.objects.all()} == {"minor", "major", "critical"}
