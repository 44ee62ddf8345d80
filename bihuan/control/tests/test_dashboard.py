"""The control dashboard: rolled up through the levels it equals a recount of the raw rows at every unit, and the
Excel export says the same."""

import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from bihuan.control import dashboard, export
from bihuan.control import models as m
from bihuan.control.actions import do_open_case
from bihuan.control.checkins import do_record_checkin
from bihuan.control.models import OPEN_CASE_STATES, CaseState, CheckIn, ControlCase, ServiceRequest
from bihuan.control.services import do_confirm_service, do_mark_service_done, do_request_service
from bihuan.core.models import AuditEntry
from bihuan.loops.models import OPEN_STATES, Loop, LoopState
from bihuan.register.models import Unit, UnitKind, subtree_q
from bihuan.testing import create_household, create_resident, create_unit


def _open(unit, resident=None, *, type_code="home_isolation", days_ago=3, name=""):
    hotel = type_code == "centralized_quarantine"
    return do_open_case(type_code=type_code, unit=unit, name=name or ("" if resident else "外来人员"),
                        phone="" if resident else "13900000000", resident=resident,
                        start_date=timezone.localdate() - dt.timedelta(days=days_ago),
                        site_kind="hotel" if hotel else "home", site_address="尧都宾馆" if hotel else "某小区",
                        acting_user=None)


@pytest.fixture
def scene(district):
    """Cases of every type in both branches and at a community itself, with the day's check-ins (normal,
    abnormal), samples (negative, positive, missed, pending, not yet taken), service requests (open, overdue,
    done, confirmed) and cases that do not count (released, not started, ended)."""
    d = district
    today = timezone.localdate()
    grid_a2 = create_unit(d.compound_a, "锦悦小区第2网格", UnitKind.GRID)
    people = []
    for unit, n in ((d.grid_a, 5), (grid_a2, 3), (d.grid_b, 4)):
        for i in range(n):
            h = create_household(unit, f"{unit.name}{i}号")
            people.append((unit, create_resident(h, f"{unit.name[:2]}{i}")))
    types = ["home_isolation", "home_monitoring", "centralized_quarantine"]
    cases = []
    for i, (unit, r) in enumerate(people):
        cases.append(_open(unit, r, type_code=types[i % 3], days_ago=i % 7))
    cases.append(_open(d.community_a, name="社区直管", days_ago=0))  # held at the community itself
    cases.append(_open(d.village_b, name="村直管", type_code="home_monitoring", days_ago=6))  # ends today
    future = _open(d.grid_a, name="明天开始", days_ago=-1)  # open, but not in its period today
    released = _open(grid_a2, name="已解除", days_ago=2)
    ControlCase.objects.filter(pk=released.pk).update(state=CaseState.RELEASED)
    ControlCase.objects.filter(pk=cases[1].pk).update(state=CaseState.RELEASE_PROPOSED)

    for i, c in enumerate(cases):
        if i % 4 != 3:
            do_record_checkin(c, date=today, slot="am", temperature="38.0" if i % 5 == 0 else "36.5",
                              symptoms=["咳嗽"] if i % 7 == 1 else [], acting_user=None)
        if i % 3 == 0 and c.type.checkins_per_day > 1:
            do_record_checkin(c, date=today, slot="pm", temperature="36.6", symptoms=[], acting_user=None)
    results = ["negative", "positive", "missed", "pending", ""]
    for i, s in enumerate(m.TestSample.objects.filter(date=today).order_by("id")):
        m.TestSample.objects.filter(pk=s.pk).update(result=results[i % len(results)])
    m.TestSample.objects.filter(case=released).update(date=today, result="negative")  # a closed case: not counted

    services = []
    for c in cases[:8]:
        services.append(do_request_service(c, "groceries", "大米", acting_user=None))
    Loop.objects.filter(pk__in=[s.loop_id for s in services[:3]]).update(
        due_at=timezone.now() - dt.timedelta(hours=1))  # overdue
    staff = d.users["commander"]
    do_mark_service_done(services[3], acting_user=staff)
    do_mark_service_done(services[4], acting_user=staff)
    do_confirm_service(services[5], acting_user=staff)
    do_request_service(future, "medicine", "", acting_user=None)
    return d


def recount(unit: Unit, day: dt.date, now: dt.datetime) -> dict:
    """The figures of ``unit`` counted straight from the rows of its subtree."""
    cases = ControlCase.objects.filter(subtree_q(unit.path), state__in=OPEN_CASE_STATES).select_related("type")
    covering = [c for c in cases if c.start_date <= day <= c.end_date]
    checkins = CheckIn.objects.filter(case__in=covering, date=day)
    samples = m.TestSample.objects.filter(case__in=cases, date=day)
    # Where a request stands is its loop: open = not done, reported = done and waiting for the person.
    services = [s for s in ServiceRequest.objects.filter(case__in=cases).select_related("loop")
                if s.loop.state in (*OPEN_STATES, LoopState.REPORTED)]
    open_services = [s for s in services if s.loop.state in OPEN_STATES]
    overdue = set(Loop.objects.overdue(now).values_list("pk", flat=True))
    return {
        "open_cases": len(cases), "release_proposed": sum(c.state == CaseState.RELEASE_PROPOSED for c in cases),
        "ending": sum(c.end_date == day for c in cases), "checkin_people": len(covering),
        "checkins_due": sum(c.type.checkins_per_day for c in covering), "checkins_done": checkins.count(),
        "abnormal": checkins.filter(abnormal=True).values("case").distinct().count(),
        "tests_due": samples.count(), "tests_done": samples.filter(result__in=["pending", "negative", "positive"]).count(),
        "tests_positive": samples.filter(result="positive").count(), "tests_missed": samples.filter(result="missed").count(),
        "services_open": len(open_services),
        "services_overdue": sum(1 for s in open_services if s.loop_id in overdue),
        "services_unconfirmed": sum(1 for s in services if s.loop.state == LoopState.REPORTED),
        "under": {t: sum(1 for c in cases if c.type.code == t) for t in
                  ("centralized_quarantine", "home_isolation", "home_monitoring")},
    }


def test_the_rollup_equals_a_recount_of_the_rows_at_every_unit(scene):
    day, now = timezone.localdate(), timezone.now()
    units, totals = dashboard.rollup(None, day, now=now)
    assert len(units) == Unit.objects.count()
    root = next(u for u in units if u.parent_id is None)
    assert totals[root.id].open_cases == ControlCase.objects.filter(state__in=OPEN_CASE_STATES).count() == 15
    assert totals[root.id].abnormal and totals[root.id].tests_positive and totals[root.id].services_overdue
    for u in Unit.objects.all():
        expected = recount(u, day, now)
        got = totals[u.id].as_dict()
        got.pop("checkins_missing")
        assert got == expected, u.name


def test_a_subtree_rollup_equals_the_whole_districts(scene):
    day = timezone.localdate()
    _units, whole = dashboard.rollup(None, day)
    for unit in (scene.township_a, scene.community_a, scene.compound_a, scene.village_b):
        units, part = dashboard.rollup(unit, day)
        assert {u.id for u in units} == set(Unit.objects.filter(unit.subtree()).values_list("id", flat=True))
        assert part[unit.id].as_dict() == whole[unit.id].as_dict()


def test_another_day_counts_that_days_rows(scene):
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    _units, totals = dashboard.rollup(None, yesterday)
    root = Unit.objects.get(level=1)
    assert totals[root.id].checkins_done == 0
    assert totals[root.id].as_dict() == {**recount(root, yesterday, timezone.now()), "checkins_missing":
                                         totals[root.id].checkins_due}


def test_the_dashboard_page_drills_down(client, scene):
    d = scene
    client.force_login(d.users["commander"])
    page = client.get(reverse("control:dashboard")).content.decode()
    _units, totals = dashboard.rollup(None)
    c = totals[d.district.id]
    assert f'data-testid="kpi-open">{c.open_cases}<' in page
    assert f"{c.checkins_done} / {c.checkins_due}" in page and 'id="control-charts"' in page
    page = client.get(reverse("control:dashboard"), {"unit": d.township_a.id}).content.decode()
    t = totals[d.community_a.id]
    assert f'data-testid="child-open-{d.community_a.id}">{t.open_cases}<' in page
    client.force_login(d.users["township_b"])
    assert client.get(reverse("control:dashboard"), {"unit": d.township_a.id}).status_code == 404


def test_the_excel_export_opens_and_matches(client, scene):
    from openpyxl import load_workbook

    d = scene
    client.force_login(d.users["commander"])
    response = client.get(reverse("control:export"))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(response.content)).active
    assert ws.cell(1, 1).value.startswith("尧都区分级分类管控日报")
    types = dashboard.control_types()
    header = [f"{ws.cell(export.HEAD_ROW, c).value or ''}" for c in range(3, ws.max_column + 1)]
    assert header[0] == "在管人数"
    sub = [ws.cell(export.SUB_ROW, c).value for c in range(3, ws.max_column + 1)]
    assert sub == [h.split("/", 1)[1] for h in export.flat_header(types)]
    _units, totals = dashboard.rollup(None)
    rows = {}
    for r in range(export.SUB_ROW + 1, ws.max_row + 1):
        name = ws.cell(r, 2).value or ws.cell(r, 1).value
        rows[str(name).strip()] = [ws.cell(r, c).value for c in range(3, ws.max_column + 1)]
    assert rows["合计"] == export.values_of(types, totals[d.district.id])
    for unit in (d.office, d.township_a, d.township_b, d.community_a, d.village_b):
        assert rows[unit.name] == export.values_of(types, totals[unit.id]), unit.name
    assert d.compound_a.name not in rows  # the district's table stops at communities and villages
    assert "区卫健局" not in rows  # a department with nothing under control is left out
    assert AuditEntry.objects.filter(action="control.dashboard.export", actor=d.users["commander"]).exists()
