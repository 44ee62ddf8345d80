"""The weekly score against an independent recount: the records of a generated week read one by one through the
ORM and counted in Python per unit (subtree by subtree), never through ``scoring``'s SQL."""

import datetime as dt

import pytest
from django.utils import timezone

from bihuan.inspections import scoring
from bihuan.inspections.models import RECTIFY_KIND_LIST, RuleSet, WeekScore
from bihuan.inspections.planning import monday
from bihuan.register.models import Unit

pytestmark = pytest.mark.django_db


def last_week() -> dt.date:
    return monday(timezone.localdate()) - dt.timedelta(days=7)


def recount(week: dt.date) -> dict[int, dict[str, list[int]]]:
    from bihuan.control.models import CheckIn, MissedCheckIn, TestSample
    from bihuan.directives.models import Directive, Reach
    from bihuan.inspections.models import Answer
    from bihuan.loops.models import Loop

    start = timezone.make_aware(dt.datetime.combine(week, dt.time()))
    end = start + dt.timedelta(days=7)
    at = min(timezone.now(), end)
    records: list[tuple[str, str, bool]] = []  # (path, indicator, done)

    def due_record(path, key, deadline, done_at):
        if deadline is None or not (start <= deadline < end):
            return
        ok = done_at is not None and done_at <= deadline and done_at <= at
        if deadline < at or ok:
            records.append((path, key, ok))

    for lp in Loop.objects.all():
        if lp.kind == "directive.receipt":
            due_record(lp.path, "directive_signed", lp.ack_due_at, lp.acknowledged_at)
            if lp.level < 6:
                due_record(lp.path, "directive_relayed", lp.due_at, lp.started_at)
            due_record(lp.path, "directive_reported", lp.due_at, lp.reported_at)
        elif lp.kind == "push.verification":
            due_record(lp.path, "pushes_verified", lp.due_at, lp.reported_at)
        elif lp.kind == "control.service":
            due_record(lp.path, "services_closed", lp.created_at + dt.timedelta(hours=24),
                       lp.reported_at or lp.closed_at)
        elif lp.kind in RECTIFY_KIND_LIST:
            closed = lp.closed_at is not None and lp.closed_at <= at
            due_record(lp.path, "rectified_on_time", lp.due_at, lp.reported_at if closed else None)
    for d in Directive.objects.all():
        deadline = d.issued_at + dt.timedelta(hours=d.reach_hours)
        for reach in Reach.objects.filter(directive=d):
            done_at = reach.marked_at if reach.status != "pending" else None
            due_record(reach.path, "households_reached", deadline, done_at)
    for k in CheckIn.objects.select_related("case"):
        if week <= k.date < week + dt.timedelta(days=7) and k.at <= at:
            records.append((k.case.path, "checkins_done", True))
    for m in MissedCheckIn.objects.with_resolved_at():
        if week <= m.date < week + dt.timedelta(days=7) and m.due_at <= at and (
                m.resolved_at is None or m.resolved_at > at):
            records.append((m.path, "checkins_done", False))
    today = timezone.localtime(at).date()
    for t in TestSample.objects.select_related("case"):
        done = t.result in ("negative", "positive", "pending")
        if week <= t.date < week + dt.timedelta(days=7) and t.date <= today and (t.date < today or done):
            records.append((t.case.path, "tests_done", done))
    for a in Answer.objects.exclude(answered_at=None):
        if start <= a.answered_at < end and a.answered_at <= at and a.result in ("pass", "fail"):
            records.append((a.path, "inspection_passed", a.result == "pass"))
    out = {}
    for unit in Unit.objects.all():
        counts = {k: [0, 0] for k in scoring.KEYS}
        for path, key, ok in records:
            if path.startswith(unit.path):
                counts[key][0] += ok
                counts[key][1] += 1
        out[unit.pk] = counts
    return out


def score_of(counts, weights) -> float | None:
    used = [(w, counts[k]) for k, w in weights.items() if counts[k][1]]
    if not used:
        return None
    return round(100 * sum(w * done / due for w, (done, due) in used) / sum(w for w, _ in used), 2)


@pytest.fixture
def generated_week(district):
    from bench.week_activity import build_week

    week = last_week()
    counts = build_week(week, "tiny")
    assert counts["directives"] and counts["pushed"] and counts["cases"] and counts["findings"]
    return week


def test_the_score_of_a_generated_week_equals_an_independent_recount(generated_week):
    units, rules = scoring.score_week(generated_week)
    expected = recount(generated_week)
    weights = {k: float(w) for k, w in rules.weights.items()}
    assert len(units) == Unit.objects.count()
    scored = 0
    for u in units:
        assert u.counts == expected[u.unit_id], u.name
        assert u.score == score_of(expected[u.unit_id], weights), u.name
        scored += u.score is not None
    assert scored >= 8
    # Every indicator was exercised by the generated week.
    district = next(u for u in units if u.level == 1)
    assert all(district.counts[k][1] > 0 for k in scoring.KEYS), district.counts
    assert any(district.counts[k][0] < district.counts[k][1] for k in scoring.KEYS), district.counts


def test_a_parent_is_scored_from_its_childrens_records_not_their_average(generated_week):
    units, _rules = scoring.score_week(generated_week)
    by_id = {u.unit_id: u for u in units}
    office = next(u for u in units if u.level == 2 and any(c.parent_id == u.unit_id for c in units))
    children = [u for u in units if u.parent_id == office.unit_id]
    for key in scoring.KEYS:
        own = [0, 0]
        for c in children:
            own[0] += c.counts[key][0]
            own[1] += c.counts[key][1]
        assert by_id[office.unit_id].counts[key][0] >= own[0]
        assert by_id[office.unit_id].counts[key][1] >= own[1]


def test_recomputing_last_week_gives_the_same_ranking_and_the_snapshot_keeps_it(generated_week):
    first, _ = scoring.score_week(generated_week)
    assert scoring.snapshot(generated_week) == len(first)
    again, _ = scoring.score_week(generated_week)
    assert [(u.unit_id, u.score, u.rank) for u in first] == [(u.unit_id, u.score, u.rank) for u in again]
    kept = dict(WeekScore.objects.filter(week_start=generated_week).values_list("unit_id", "rank"))
    assert kept == {u.unit_id: u.rank for u in first}


def test_ranks_are_per_level_and_dense_from_one(generated_week):
    units, _ = scoring.score_week(generated_week)
    for level in range(1, 7):
        ranks = sorted(u.rank for u in units if u.level == level and u.rank)
        assert ranks == list(range(1, len(ranks) + 1))


def test_a_week_is_scored_by_the_rules_in_force_on_its_monday(generated_week):
    RuleSet.objects.create(version=2, effective_from=generated_week + dt.timedelta(days=7),
                           weights={"pushes_verified": 100})
    assert scoring.rules_for(generated_week).version == 1
    assert scoring.rules_for(generated_week + dt.timedelta(days=7)).version == 2


def test_recomputing_last_week_after_late_work_still_gives_the_same_ranking(generated_week, district):
    """Work done after the week ended (directives signed for late, through the loop engine; samples taken late)
    changes nothing."""
    from django.db import transaction

    from bihuan.control.models import TestSample
    from bihuan.loops import engine
    from bihuan.loops.models import Loop, LoopState

    first, _ = scoring.score_week(generated_week)
    forward = {LoopState.ISSUED: LoopState.ACKNOWLEDGED, LoopState.ACKNOWLEDGED: LoopState.IN_PROGRESS,
               LoopState.IN_PROGRESS: LoopState.REPORTED}
    unsigned = list(Loop.objects.filter(state__in=list(forward)))
    with transaction.atomic():
        for loop in unsigned:  # one step further, now
            engine.transition(loop, forward[loop.state], actor=district.users["commander"], note="补办")
    tested = TestSample.objects.filter(date__gte=generated_week, date__lt=generated_week + dt.timedelta(days=7)) \
        .exclude(result__in=["negative", "positive", "pending"]).update(result="negative")
    assert unsigned, list(Loop.objects.values_list("kind", "state").distinct())
    again, _ = scoring.score_week(generated_week)
    assert [(u.unit_id, u.counts, u.score, u.rank) for u in first] == [(u.unit_id, u.counts, u.score, u.rank)
                                                                       for u in again], tested


def test_households_are_not_ranked_their_records_count_in_their_grid_and_the_grid_drills_down_to_them(
        generated_week):
    """Level 7 (households) is what the grid answers for: each household's reach of each directive is a record of
    its grid's score (and every level above), and the points a grid lost list the households behind them."""
    from bihuan.directives.models import Reach
    from bihuan.inspections.selectors import drill
    from bihuan.register.models import Household

    units, _ = scoring.score_week(generated_week)
    assert {u.level for u in units} == {1, 2, 3, 4, 5, 6}
    grids = [u for u in units if u.level == 6 and u.counts["households_reached"][1]]
    assert grids
    for g in grids:
        done, due = g.counts["households_reached"]
        assert due == Reach.objects.filter(path=g.path, directive__title__startswith="").count() or due > 0
        rows = drill(Unit.objects.get(pk=g.unit_id), "households_reached", generated_week, limit=100_000)
        assert len(rows) == due - done, g.name
        addresses = set(Household.objects.filter(path=g.path).values_list("address", flat=True))
        assert {r["unit"] for r in rows} <= addresses
