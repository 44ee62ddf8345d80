"""The situation board: every figure equals an independent recount, rows skip the office layer, the page polls."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bihuan.control.models import ALERT, MISSED_CHECKIN, SERVICE, TEST_MISSED, TEST_POSITIVE
from bihuan.core import today as registry
from bihuan.core.roles import RESPONSIBLE_ROLES
from bihuan.directives.models import RECEIPT
from bihuan.loops.models import OPEN_STATES, Loop
from bihuan.pushes.models import TRANSFER, VERIFICATION
from bihuan.register.models import Household, Staff, Unit
from bihuan.today.board import build


def recount(unit: Unit) -> dict[str, int]:
    """The same figures counted another way: the ORM and the one definition of overdue."""
    now = timezone.now()
    loops = Loop.objects.filter(unit.subtree())
    open_loops = loops.filter(state__in=OPEN_STATES)
    grids = Unit.objects.filter(unit.subtree(), level=6)
    staffed = Staff.objects.filter(deactivated_at__isnull=True, role__in=list(RESPONSIBLE_ROLES)).values("unit_id")
    return {
        "directives.overdue_units": loops.overdue(now).filter(kind=RECEIPT).count(),
        "pushes.overdue": loops.overdue(now).filter(kind=VERIFICATION).count(),
        "pushes.transfers": open_loops.filter(kind=TRANSFER).count(),
        "control.alerts": open_loops.filter(kind__in=[ALERT, TEST_POSITIVE, TEST_MISSED]).count(),
        "control.missed": open_loops.filter(kind=MISSED_CHECKIN).count(),
        "control.services_late": open_loops.filter(kind=SERVICE, created_at__lt=now - timedelta(hours=24)).count(),
        "register.households_without_grid": Household.objects.filter(unit.subtree()).exclude(unit__level=6).count(),
        "register.grids_without_responsible": grids.exclude(id__in=staffed).count(),
        **{f"inspections.open_{s}": open_loops.filter(kind=f"inspections.rectify.{s}").count()
           for s in ("critical", "major", "minor")},
        "inspections.rectify_overdue": loops.overdue(now).filter(kind__startswith="inspections.rectify.").count(),
        **checkpoint_recount(unit, now),
    }


def checkpoint_recount(unit: Unit, now) -> dict[str, int]:
    from bihuan.checkpoints.models import ALERT as CHECKPOINT_ALERT
    from bihuan.checkpoints.models import Campaign, SelfReport
    from bihuan.directives.models import Reach

    loops = Loop.objects.filter(unit.subtree())
    late_people = loops.overdue(now).filter(kind=VERIFICATION).values("subject_id")
    late = [c.directive_id for c in Campaign.objects.select_related("directive")
            if c.directive.status == "issued" and c.directive.reach_due < now]
    return {
        "checkpoints.abnormal": loops.filter(kind=CHECKPOINT_ALERT, state__in=OPEN_STATES).count(),
        "checkpoints.self_reports_overdue": SelfReport.objects.filter(pushed_person_id__in=late_people)
        .exclude(status="cancelled").count(),
        "checkpoints.screening_unreached": Reach.objects.filter(unit.subtree(), directive_id__in=late)
        .exclude(status="reached").count(),
    }


def test_every_figure_equals_an_independent_recount_at_every_level(demo_day):
    for unit in Unit.objects.filter(level__in=[1, 3, 4]):
        board = build(unit)
        # (the field force's figures are recounted in bihuan/forces/tests/test_rollups.py)
        assert {f.key: f.count for f in board.figures if not f.key.startswith("forces.")} == recount(unit), unit.name
    district = build(Unit.objects.get(level=1))
    assert district.figure("directives.overdue_units").count > 0
    assert district.figure("register.households_without_grid").count == 3


def test_the_district_board_lists_the_townships_ranked_by_how_far_behind_they_are(demo_day):
    board = build(Unit.objects.get(level=1))
    assert [r.unit.level for r in board.rows] == [3] * Unit.objects.filter(level=3).count()
    behind = [r.behind for r in board.rows]
    assert behind == sorted(behind, reverse=True)
    assert all(r.person is not None and r.person.phone_masked for r in board.rows)
    # rows plus the office-and-departments row add up to the district's figures
    for i, f in enumerate(board.figures):
        apart = board.apart.counts[i] if board.apart else 0
        assert sum(r.counts[i] for r in board.rows) + apart == f.count


def test_the_board_costs_one_query_per_figure_whatever_the_size(demo_day):
    district = Unit.objects.get(level=1)
    build(district)
    with CaptureQueriesContext(connection) as queries:
        board = build(district)
    assert len(queries) == len(board.figures) + 2  # the figures, the rows, their people


def test_a_capability_adds_its_figures_through_a_provider(demo_day):
    def roster_gaps(area):
        return [registry.Figure("forces.gaps", "排班空缺", 7, "/", {}, order=60)]

    registry.provider(roster_gaps)
    try:
        board = build(Unit.objects.get(level=1))
        assert board.figure("forces.gaps").count == 7
    finally:
        registry.PROVIDERS.remove(roster_gaps)


def test_commander_home_is_the_board_with_links_and_polling(client, demo_day):
    client.force_login(demo_day["commander"])
    page = client.get(reverse("home")).content.decode()
    assert 'data-testid="fig-directives.overdue_units"' in page
    assert 'hx-trigger="every 30s"' in page and reverse("today:board") in page
    assert "解放路街道" in page and 'data-testid="row-apart"' in page or "指挥部办公室" not in page
    fragment = client.get(reverse("today:board"))
    assert fragment.status_code == 200 and b"<html" not in fragment.content
    wall = client.get(reverse("today:wall")).content.decode()
    assert 'id="chart-wall-coverage"' in wall and 'id="wall-charts"' in wall


def test_a_grid_worker_cannot_open_the_board_of_another_branch(client, demo_day):
    client.force_login(demo_day["grid1"])
    other = Unit.objects.filter(level=3).order_by("-path").first()
    assert client.get(reverse("today:board") + f"?unit={other.pk}").status_code == 404
