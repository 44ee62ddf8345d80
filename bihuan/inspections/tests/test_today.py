"""The situation board's inspection figures: open findings by severity and rectifications overdue, each equal to
an independent recount (the findings table and the ORM, not the loop-kind SQL), each linking to the very list it
counts; and a planned visit shows on no board."""

import re

import pytest
from django.utils import timezone

from bihuan.inspections import actions
from bihuan.inspections.models import RECTIFY_KIND_LIST, Finding, Severity
from bihuan.loops.models import OPEN_STATES, Loop
from bihuan.register.models import Unit
from bihuan.today.board import build

from .helpers import draw_home_visit, png, visit_and_fail

pytestmark = pytest.mark.django_db

KEYS = ["inspections.open_critical", "inspections.open_major", "inspections.open_minor", "inspections.rectify_overdue"]


def recount(unit: Unit) -> dict[str, int]:
    findings = Finding.objects.filter(unit.subtree())
    waiting = findings.filter(loop__state__in=OPEN_STATES)
    out = {f"inspections.open_{s}": waiting.filter(severity=s).count() for s in Severity.values}
    out["inspections.rectify_overdue"] = Loop.objects.overdue(timezone.now()).filter(
        unit.subtree(), kind__in=RECTIFY_KIND_LIST).count()
    return out


def inspection_figures(unit: Unit) -> dict:
    return {f.key: f for f in build(unit).figures if f.key.startswith("inspections.")}


@pytest.fixture
def findings_in_every_state(world, clock):
    """Three findings at community A (critical, major, minor), one reported, then time passes: the critical and
    the major are overdue, the minor (72 h) is not."""
    _visit, found = visit_and_fail(world, "sensor_working", "card_posted", "waste_handled")
    by_key = {f.item_key: f for f in found}
    actions.do_report_rectification(by_key["card_posted"], text="已张贴", photo=png(),
                                    acting_user=world.d.users["community_a"])
    clock.advance(hours=30)
    return by_key


def test_the_board_counts_equal_an_independent_recount_at_every_level(world, findings_in_every_state):
    d = world.d
    for unit in (d.district, d.township_a, d.community_a, d.compound_a, d.township_b, d.village_b):
        figures = inspection_figures(unit)
        assert sorted(figures) == sorted(KEYS)
        assert {k: f.count for k, f in figures.items()} == recount(unit), unit.name
    district = inspection_figures(d.district)
    assert district["inspections.open_critical"].count == 1 and district["inspections.open_minor"].count == 1
    assert district["inspections.open_major"].count == 0  # reported: waiting for the re-check, not for the unit
    assert district["inspections.rectify_overdue"].count == 1  # the critical (4 h); the reported one is not
    assert district["inspections.rectify_overdue"].by_row == {d.township_a.path: 1}
    assert inspection_figures(d.township_b)["inspections.rectify_overdue"].count == 0


def test_every_figure_links_to_the_list_of_exactly_what_it_counts(world, findings_in_every_state, client):
    d = world.d
    client.force_login(d.users["township_a"])
    for key, figure in inspection_figures(d.township_a).items():
        page = client.get(figure.url)
        assert page.status_code == 200, key
        rows = re.findall(rb'data-testid="finding-row-(\d+)"', page.content)
        assert len(rows) == figure.count, (key, figure.url)
    overdue = inspection_figures(d.township_a)["inspections.rectify_overdue"]
    page = client.get(overdue.url)
    assert f'finding-row-{findings_in_every_state["sensor_working"].pk}'.encode() in page.content
    client.force_login(d.users["village_b"])  # another branch's unit in the link: not theirs to open
    assert client.get(overdue.url).status_code == 404


def test_a_planned_visit_shows_on_no_board_of_the_target_unit_or_above(world):
    """(The pages themselves — home, board, wall — are compared before and after in ``test_secrecy``.)"""
    d = world.d
    units = [d.district, d.office, d.township_a, d.community_a, d.compound_a, d.grid_a]
    before = {u.pk: [(f.key, f.count, f.by_row) for f in build(u).figures] for u in units}
    draw_home_visit(world)
    assert {u.pk: [(f.key, f.count, f.by_row) for f in build(u).figures] for u in units} == before
