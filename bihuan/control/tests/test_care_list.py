"""The daily care-visit list of a grid: key-group residents and people under home control, whether today's
visit is recorded and what they asked for; scoped, and a fixed number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from bihuan.core.models import AuditEntry
from bihuan.testing import create_household, create_resident

from ..actions import ControlError, do_open_case, do_record_care_visit
from ..care import care_visit_list
from ..models import CareVisit
from .helpers import HOTEL, open_case, today


@pytest.fixture
def grid(district):
    """Grid A with key-group residents of every kind, people who are not visited, and people under control."""
    d = district
    h = create_household(d.grid_a, "锦悦小区1号楼1单元101", building="1", entrance="1", room="101")
    d.elderly = create_resident(h, "周老太", dt.date(1938, 2, 3), "F", flags={"elderly_alone": True})
    h2 = create_household(d.grid_a, "锦悦小区1号楼1单元202", building="1", entrance="1", room="202")
    d.disabled = create_resident(h2, "钱先生", dt.date(1960, 4, 5), "M", flags={"disabled": True, "chronic_illness": True})
    d.pregnant = create_resident(h2, "孙女士", dt.date(1995, 6, 7), "F", relation="spouse", flags={"pregnant": True})
    d.infant = create_resident(h2, "钱宝宝", dt.date(2024, 1, 1), "M", relation="child", flags={"infant": True})
    h3 = create_household(d.grid_a, "锦悦小区2号楼1单元301", building="2", entrance="1", room="301")
    d.moved = create_resident(h3, "吴老汉", dt.date(1940, 1, 1), "M", status="moved_out", flags={"elderly_alone": True})
    d.isolated = open_case(d, "home_isolation")  # 王建国, no key-group flag
    d.outsider_case = do_open_case(type_code="home_monitoring", unit=d.grid_a, name="外来人员", phone="13900001111",
                                   start_date=today(), site_kind="home", site_address="锦悦小区5号楼101",
                                   acting_user=d.users["community_a"])
    d.in_hotel = open_case(d, "centralized_quarantine", resident=d.resident_a2)  # not at home: not visited here
    return d


def names(rows) -> list[str]:
    return [r.name for r in rows]


def test_the_list_holds_people_under_home_control_then_key_group_residents(grid):
    d = grid
    rows = care_visit_list(d.grid_a, today())
    assert names(rows) == ["王建国", "外来人员", "周老太", "钱先生", "孙女士"]
    by_name = {r.name: r for r in rows}
    assert by_name["周老太"].groups == ["独居老人"] and by_name["钱先生"].groups == ["残疾人", "慢性病患者"]
    assert by_name["王建国"].case == d.isolated and by_name["王建国"].address == d.household_a.address
    assert by_name["外来人员"].resident is None and by_name["外来人员"].phone_masked == "139****1111"
    assert not any(r.visited for r in rows)
    # The other grid has its own list: 赵桂兰, elderly and alone.
    assert names(care_visit_list(d.grid_b, today())) == ["赵桂兰"]


def test_a_key_group_resident_under_home_control_appears_once_with_their_case(grid):
    d = grid
    case = open_case(d, "home_monitoring", resident=d.elderly)
    rows = [r for r in care_visit_list(d.grid_a, today()) if r.name == "周老太"]
    assert len(rows) == 1 and rows[0].case == case and rows[0].groups == ["独居老人"]


def test_recording_a_visit_marks_it_done_for_the_day_with_what_they_need(grid):
    d = grid
    visit = do_record_care_visit(day=today(), resident=d.elderly, note="需要代买蔬菜和降压药",
                                 needs=["groceries", "medicine"], acting_user=d.users["grid_a"])
    assert visit.path == d.grid_a.path and visit.by == d.users["grid_a"]
    do_record_care_visit(day=today(), case=d.outsider_case, acting_user=d.users["grid_a"])
    do_record_care_visit(day=today(), resident=d.resident_a, note="一切正常", acting_user=d.users["grid_a"])
    rows = {r.name: r for r in care_visit_list(d.grid_a, today())}
    assert rows["周老太"].visited and rows["周老太"].needs == ["groceries", "medicine"]
    assert rows["外来人员"].visited and rows["王建国"].visited and rows["王建国"].visit.case == d.isolated
    assert not rows["钱先生"].visited
    # Recording again the same day updates the one visit; tomorrow is a new day.
    do_record_care_visit(day=today(), resident=d.elderly, needs=["groceries"], acting_user=d.users["grid_a"])
    assert CareVisit.objects.filter(resident=d.elderly).count() == 1
    assert CareVisit.objects.get(resident=d.elderly).needs == ["groceries"]
    tomorrow = care_visit_list(d.grid_a, today() + dt.timedelta(days=1))
    assert not any(r.visited for r in tomorrow)
    assert AuditEntry.objects.filter(action="control.care_visit").count() == 4


def test_a_visit_needs_a_person_known_needs_care_and_the_subtree(grid):
    d = grid
    with pytest.raises(ControlError, match="^resident:"):
        do_record_care_visit(day=today(), acting_user=d.users["grid_a"])
    with pytest.raises(ControlError, match="^needs:"):
        do_record_care_visit(day=today(), resident=d.elderly, needs=["pizza"], acting_user=d.users["grid_a"])
    with pytest.raises(Http404):
        do_record_care_visit(day=today(), resident=d.elderly, acting_user=d.users["rep_b"])
    with pytest.raises(Http404):
        do_record_care_visit(day=today(), case=d.isolated, acting_user=d.users["rep_b"])
    with pytest.raises(PermissionDenied):
        do_record_care_visit(day=today(), resident=d.elderly, acting_user=d.users["department"])
    assert not CareVisit.objects.exists()


def test_the_list_takes_three_queries_whatever_the_grid_holds(grid, django_assert_num_queries):
    d = grid
    do_record_care_visit(day=today(), resident=d.elderly, acting_user=d.users["grid_a"])
    with django_assert_num_queries(3):
        rows = care_visit_list(d.grid_a, today())
        [r.visited for r in rows], [r.case and r.case.type.name_zh for r in rows]
    assert HOTEL not in [r.address for r in rows]
