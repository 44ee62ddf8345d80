"""Hours served roll up per helper, team, home organisation and unit, and the situation board's field-force figures
say what is behind now: each equals an independent recount in Python over the same rows."""

import datetime as dt
import random
import re

from django.urls import reverse
from django.utils import timezone

from bihuan.forces import roster, selectors
from bihuan.forces.actions import (
    do_create_place,
    do_create_post,
    do_create_task,
    do_create_team,
    do_log_disinfection,
)
from bihuan.forces.models import Helper, Place, Post, Shift, Team
from bihuan.forces.today import forces_figures
from bihuan.register.models import Unit
from bihuan.today.board import area_of, build, row_units

from .helpers import active_helper


def _whole_second(clock):
    clock.now = clock.now.replace(microsecond=0)


def _world(d, rng):
    helpers = [active_helper(d.community_a, f"甲{i}", home_unit=rng.choice([d.department, d.township_a, None]))
               for i in range(6)]
    helpers += [active_helper(d.village_b, f"乙{i}", home_unit=rng.choice([d.department, d.township_b]))
                for i in range(4)]
    teams = [do_create_team(d.community_a, name="橄榄绿", members=helpers[:4], acting_user=None),
             do_create_team(d.township_a, name="宣传队", members=helpers[2:6], acting_user=None),
             do_create_team(d.village_b, name="蓝天救援队", members=helpers[6:], acting_user=None),
             do_create_team(d.office, name="区志愿服务总队", members=[helpers[0], helpers[7]], acting_user=None)]
    posts = [do_create_post(u, name=f"岗{i}", kind="gate", acting_user=None)
             for i, u in enumerate([d.compound_a, d.community_a, d.grid_a, d.group_b, d.village_b])]
    return helpers, teams, posts


def test_hours_served_per_helper_team_home_and_unit_equal_an_independent_recount(district, clock):
    _whole_second(clock)
    d = district
    rng = random.Random(11)
    helpers, teams, posts = _world(d, rng)
    now = clock.now
    rows = []
    for _ in range(120):
        on = now - dt.timedelta(minutes=rng.randint(1, 20 * 24 * 60))
        off = None if rng.random() < 0.1 else min(on + dt.timedelta(minutes=rng.randint(10, 600)), now)
        post = rng.choice(posts)
        rows.append(Shift(post=post, path=post.path, helper=rng.choice(helpers), starts_at=on,
                          ends_at=on + dt.timedelta(hours=10), on_at=on, off_at=off))
    Shift.objects.bulk_create(rows)
    since = now - dt.timedelta(days=7)

    def served(shift):  # seconds in the window, by hand
        if not (since <= shift.on_at < now):
            return 0
        return ((shift.off_at or now) - shift.on_at).total_seconds()

    def recount(root: Unit, by: str) -> dict[int, float]:
        out: dict[int, float] = {}
        for s in Shift.objects.select_related("helper", "post"):
            sec = served(s)
            if not sec:
                continue
            if by == "helper":
                keys = [s.helper_id] if s.helper.path.startswith(root.path) else []
            elif by == "team":
                keys = [t.pk for t in Team.objects.filter(members=s.helper) if t.path.startswith(root.path)]
            elif by == "home":
                keys = [s.helper.home_unit_id] if s.helper.home_unit_id and s.helper.home_path.startswith(
                    root.path) else []
            else:
                keys = [s.post.unit_id] if s.post.path.startswith(root.path) else []
            for k in keys:
                out[k] = out.get(k, 0) + sec
        return {k: round(v / 3600, 2) for k, v in out.items()}

    for root in (d.district, d.township_a, d.community_a, d.township_b, d.department):
        for by in selectors.BY:
            got = dict(selectors.hours_served(since, now, root, by=by))
            assert got == recount(root, by), (root.name, by)
    by_team = dict(selectors.hours_served(since, now, d.district, by="team"))
    assert set(by_team) == {t.pk for t in teams} and by_team[teams[3].pk] > 0  # the district's own team too
    # A team's page says the same as its rollup.
    from django.test import Client

    client = Client()
    client.force_login(d.users["township_a"])
    page = client.get(reverse("forces:hours") + f"?unit={d.township_a.pk}&by=team&days=7").content.decode()
    assert "宣传队" in page and str(by_team[teams[1].pk]) in page

    # The unit rollup (this week, folded up the tree) is the posts' units' hours summed over each subtree.
    monday = roster.monday_of(timezone.localdate(now))
    week = timezone.make_aware(dt.datetime.combine(monday, dt.time()))
    _, totals = roster.rollup(now=now)
    for unit in (d.district, d.township_a, d.community_a, d.compound_a, d.village_b):
        expected = sum(((s.off_at or now) - s.on_at).total_seconds() for s in Shift.objects.select_related("post")
                       if week <= s.on_at < now and s.post.path.startswith(unit.path)) / 3600
        assert round(totals[unit.pk].hours_served, 4) == round(expected, 4), unit.name


def _staffed(post: Post, hour: int) -> bool:
    if post.end_hour > post.start_hour:
        return post.start_hour <= hour < post.end_hour
    return hour >= post.start_hour or hour < post.end_hour


def recount_board(unit: Unit, now) -> dict[str, int]:
    """The field-force figures counted another way: Python over the rows, ``Place.is_overdue``, the ORM's
    overdue loops."""
    from bihuan.forces.models import TASK
    from bihuan.loops.models import Loop

    hour = timezone.localtime(now).hour
    gaps = short = 0
    for post in Post.objects.filter(unit.subtree(), active=True):
        if not _staffed(post, hour):
            continue
        shifts = list(Shift.objects.filter(post=post))
        rostered = sum(1 for s in shifts if s.starts_at <= now < s.ends_at)
        on = sum(1 for s in shifts if s.on_at and not s.off_at and s.ends_at > now)
        gaps += rostered < post.required
        short += on < post.required
    return {
        "forces.roster_gaps_now": gaps,
        "forces.posts_short_now": short,
        "forces.tasks_overdue": Loop.objects.overdue(now).filter(unit.subtree(), kind=TASK).count(),
        "forces.places_overdue": sum(p.is_overdue(now) for p in Place.objects.filter(unit.subtree(), active=True)),
    }


def test_the_boards_field_force_figures_equal_an_independent_recount_and_link_to_their_lists(district, clock, client):
    d = district
    clock.set_local(timezone.localdate(), 10, 30)
    now = clock.now
    rng = random.Random(5)
    people = [active_helper(rng.choice([d.community_a, d.village_b]), f"丙{i}") for i in range(12)]
    units = [d.compound_a, d.community_a, d.grid_a, d.group_b, d.village_b]
    hours = [(0, 24), (8, 20), (20, 8), (6, 12), (9, 11), (11, 18), (22, 6)]
    posts = []
    for i in range(14):
        sh, eh = rng.choice(hours)
        posts.append(do_create_post(rng.choice(units), name=f"岗{i}", kind="checkpoint", start_hour=sh, end_hour=eh,
                                    required=rng.randint(1, 3), acting_user=None))
    Post.objects.filter(pk=posts[0].pk).update(active=False)
    rows = []
    for _ in range(40):
        post = rng.choice(posts)
        start = now + dt.timedelta(minutes=rng.randint(-600, 120))
        end = start + dt.timedelta(minutes=rng.randint(30, 480))
        on = start + dt.timedelta(minutes=5) if start < now and rng.random() < 0.6 else None
        off = on + dt.timedelta(minutes=20) if on and rng.random() < 0.3 and on + dt.timedelta(minutes=20) < now else None
        rows.append(Shift(post=post, path=post.path, helper=rng.choice(people), starts_at=start, ends_at=end,
                          on_at=on, off_at=off))
    Shift.objects.bulk_create(rows)
    places = [do_create_place(rng.choice(units), name=f"点{i}", kind="road", every_hours=rng.choice([6, 12, 24]),
                              acting_user=None) for i in range(10)]
    for p in places[:6]:
        clock.now = now - dt.timedelta(hours=rng.randint(1, 30))
        do_log_disinfection(p, agent="含氯消毒液", concentration="500mg/L", acting_user=None, done_by="丙")
    clock.now = now - dt.timedelta(hours=5)
    for i in range(5):
        do_create_task(rng.choice([d.community_a, d.village_b, d.compound_a]), kind="publicity", title=f"宣传{i}",
                       helper=rng.choice(people), due_at=now + dt.timedelta(hours=rng.choice([-3, -1, 2, 4])),
                       acting_user=None)
    clock.now = now

    for unit in Unit.objects.filter(level__lte=4):
        area = area_of(unit, row_units(unit), now)
        figures = {f.key: f for f in forces_figures(area)}
        assert {k: f.count for k, f in figures.items()} == recount_board(unit, now), unit.name
        for f in figures.values():
            assert sum(f.by_row.values()) <= f.count
    expected = recount_board(d.district, now)
    assert all(expected.values()), expected  # the generated day has something behind in each
    board = build(d.district, now)
    for key, n in expected.items():
        assert board.figure(key).count == n

    # Each figure's link lists exactly the rows it counts.
    client.force_login(d.users["commander"])
    for key, testid in (("forces.roster_gaps_now", "post"), ("forces.posts_short_now", "post"),
                        ("forces.tasks_overdue", "task"), ("forces.places_overdue", "place")):
        page = client.get(board.figure(key).url).content.decode()
        assert len(re.findall(rf'data-testid="{testid}-\d+"', page)) == expected[key], key
    assert Helper.objects.count() == 12
