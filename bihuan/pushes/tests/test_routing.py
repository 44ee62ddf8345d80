"""Routing of pushed people: by resident, by address (prefixes, abbreviations, aliases), to manual dispatch;
the verification loops it opens; manual dispatch. The helpers here are shared by the other test modules."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bihuan.core.models import AuditEntry
from bihuan.loops.models import Loop, LoopEvent, LoopState
from bihuan.loops.tasks import remind_due
from bihuan.notify.models import Message
from bihuan.pushes.actions import do_dispatch
from bihuan.pushes.address import RoutingError, UnitIndex
from bihuan.pushes.models import (
    VERIFICATION,
    RouteMethod,
    Verification,
)
from bihuan.pushes.routing import route_people, verification_due
from bihuan.register.models import Unit, UnitKind
from bihuan.testing import create_household, create_unit, make_id_number

from .helpers import assert_one_owner, loop_of, make_batch, push, routed

# --- helpers (used by test_verify, test_transfers and test_views too) -------------------------------------


# --- by resident ---------------------------------------------------------------------------------------------

def test_a_registered_resident_goes_to_their_grid_with_the_reason(district):
    d = district
    [p] = routed(d, {"name": "王建国", "id_number": d.resident_a.reveal_id_number(), "address": "北京市某处"})
    assert p.unit == d.grid_a and p.path == d.grid_a.path and p.resident == d.resident_a
    assert p.route_method == RouteMethod.RESIDENT and p.route_reason == "户籍匹配：锦悦小区3号楼2单元401"
    assert p.routed_at is not None
    assert_one_owner(p)


def test_a_resident_already_linked_by_the_import_goes_to_their_grid(district):
    d = district
    [p] = routed(d, {"resident": d.resident_b, "address": ""})
    assert p.unit == d.grid_b and p.route_method == RouteMethod.RESIDENT


def test_a_moved_out_resident_is_not_matched(district):
    d = district
    d.resident_b.status = "moved_out"
    d.resident_b.save()
    [p] = routed(d, {"id_number": d.resident_b.reveal_id_number(), "address": ""})
    assert p.route_method == RouteMethod.MANUAL and p.unit == d.office


# --- by address ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "山西省临汾市尧都区解放路街道鼓楼社区锦悦小区",
    "山西临汾尧都区解放路街道鼓楼社区锦悦小区",
    "临汾市尧都区鼓楼社区锦悦小区5号楼1单元",
    "尧都区 解放路 锦悦小区 9号楼",  # the building is unknown: the community owns it
    "解放路锦悦5栋",
    "山西省临汾市尧都区锦悦",
    "ＳＨＡＮＸＩ 鼓楼社区锦悦小区",  # full-width noise
])
def test_addresses_with_prefixes_and_abbreviations_go_to_the_community(district, address):
    [p] = routed(district, {"address": address})
    assert p.unit == district.community_a, p.route_reason
    assert p.route_method == RouteMethod.ADDRESS and "锦悦" in p.route_reason
    assert p.route_reason.endswith("→ 鼓楼社区")


def test_the_community_alone_routes_to_the_community(district):
    [p] = routed(district, {"address": "山西省临汾市尧都区鼓楼社区3排"})
    assert p.unit == district.community_a


def test_a_known_building_pins_down_the_grid(district):
    d = district
    [p] = routed(d, {"address": "山西省临汾市尧都区解放路街道锦悦小区3号楼2单元401室"})
    assert p.unit == d.grid_a, p.route_reason
    assert "3号楼" in p.route_reason and p.route_reason.endswith("→ 锦悦小区第1网格")


def test_a_building_split_between_two_grids_stays_with_the_community(district):
    d = district
    grid2 = create_unit(d.compound_a, "锦悦小区第2网格", UnitKind.GRID)
    create_household(grid2, "锦悦小区3号楼1单元101", building="3", entrance="1", room="101")
    [p] = routed(d, {"address": "锦悦小区3号楼"})
    assert p.unit == d.community_a


def test_a_rural_house_number_pins_down_the_grid_and_village_spellings_match(district):
    d = district
    [a, b] = routed(d, {"address": "山西省临汾市尧都区屯里镇东羊村一组12号"},
                    {"address": "屯里东羊一组"})
    assert a.unit == d.grid_b, a.route_reason
    assert b.unit == d.village_b, b.route_reason


def test_unit_aliases_are_matched(district):
    d = district
    Unit.objects.filter(pk=d.compound_a.pk).update(aliases="锦悦苑|金色锦悦")
    [p] = routed(d, {"address": "尧都区金色锦悦8号"})
    assert p.unit == d.community_a and "金色锦悦" in p.route_reason


def test_the_pushed_community_text_stands_in_for_a_useless_address(district):
    d = district
    [p, q] = routed(d, {"address": "不详", "township": "屯里镇", "community": "东羊村委会"},
                    {"address": "", "community": "鼓楼"})
    assert p.unit == d.village_b and "按推送的" in p.route_reason
    assert q.unit == d.community_a


def test_the_pushed_township_breaks_a_tie_between_namesakes(district):
    d = district
    other = create_unit(d.village_b, "锦悦小区", UnitKind.COMPOUND)  # a namesake under branch B
    [p, q] = routed(d, {"address": "锦悦小区", "township": "屯里镇"}, {"address": "锦悦小区"})
    assert p.unit == d.village_b and other.parent_id == d.village_b.pk
    # Without a hint the two namesakes sit under different townships: only the office can decide.
    assert q.unit == d.office and q.route_method == RouteMethod.MANUAL and "歧义" in q.route_reason


def test_namesakes_in_one_township_go_to_the_township(district):
    d = district
    c2 = create_unit(d.township_a, "鼓楼南社区", UnitKind.COMMUNITY)
    create_unit(c2, "锦悦小区", UnitKind.COMPOUND)
    [p] = routed(d, {"address": "锦悦小区"})
    assert p.unit == d.township_a and "同名" in p.route_reason


# --- to the manual-dispatch queue --------------------------------------------------------------------------

@pytest.mark.parametrize("address, reason", [
    ("北京市朝阳区幸福小区", "地址不在本区"),
    ("山西省太原市小店区某某路8号", "地址不在本区"),
    ("某某路88号", "未匹配到单位"),
    ("", "无地址"),
])
def test_unmatched_people_wait_in_the_command_offices_queue(district, address, reason):
    [p] = routed(district, {"address": address})
    assert p.unit == district.office and p.route_method == RouteMethod.MANUAL
    assert reason in p.route_reason and "待指挥部人工分派" in p.route_reason
    assert_one_owner(p)


def test_the_office_dispatches_and_the_loop_follows(district):
    d = district
    [p] = routed(d, {"address": "某某路88号"})
    due = loop_of(p).due_at
    with pytest.raises(PermissionDenied):
        do_dispatch(p, d.community_a, acting_user=d.users["community_a"])
    with pytest.raises(RoutingError, match="unit:"):
        do_dispatch(p, d.department, acting_user=d.users["office"])
    do_dispatch(p, d.community_a, acting_user=d.users["office"])
    p.refresh_from_db()
    assert p.unit == d.community_a and p.route_method == RouteMethod.MANUAL and p.route_text.startswith("人工分派：鼓楼社区")
    assert "人工分派：人工分派" not in p.route_text
    loop = loop_of(p)
    assert loop.owner_unit == d.community_a and loop.due_at == due  # the push deadline stands
    assert list(loop.events.values_list("action", flat=True)) == ["issued", "dispatched"]
    assert AuditEntry.objects.filter(action="push.dispatch", target_id=str(p.pk)).exists()
    with pytest.raises(RoutingError, match="person:"):
        do_dispatch(p, d.village_b, acting_user=d.users["office"])
    assert_one_owner(p)


# --- the loops, deadlines, audit -----------------------------------------------------------------------------

def test_routing_opens_one_verification_loop_each_with_the_deadline(district):
    d = district
    at = timezone.now() - timedelta(hours=1)
    people = routed(d, {"resident": d.resident_a, "at": at, "name": "王建国"}, {"address": "鼓楼社区", "at": at},
                    {"address": "无处", "at": at})
    for p in people:
        loop = loop_of(p)
        assert loop.owner_unit_id == p.unit_id and loop.originator_unit == d.office
        assert loop.originator_user == d.users["office"] and loop.state == LoopState.ISSUED
        assert loop.due_at == at.replace(second=0, microsecond=0) + timedelta(hours=24)
        assert loop.next_reminder_at == loop.due_at
        assert loop.title == f"核查：{p.name}"
        ver = Verification.objects.get(person=p)
        assert ver.loop == loop and ver.outcome == "verifying" and ver.origin == "上海市浦东新区"
        assert list(loop.events.values_list("action", flat=True)) == ["issued"]


def test_same_day_deadline_is_the_end_of_the_local_day(district, settings):
    settings.PUSH_VERIFY_DEADLINE = "same_day"
    at = timezone.make_aware(dt.datetime(2022, 3, 4, 9, 30))
    [p] = routed(district, {"address": "鼓楼社区", "at": at})
    due = timezone.localtime(loop_of(p).due_at)
    assert (due.date(), due.hour, due.minute) == (dt.date(2022, 3, 4), 23, 59)
    assert verification_due(at, "8h") == at + timedelta(hours=8)
    with pytest.raises(RoutingError, match="deadline:"):
        verification_due(at, "tomorrow")


def test_routing_again_changes_nothing_and_each_call_leaves_one_audit_row(district):
    d = district
    people = routed(d, {"resident": d.resident_a}, {"address": "鼓楼社区"}, {"address": "?"})
    entry = AuditEntry.objects.get(action="push.route")
    assert entry.changes["people"] == 3
    assert entry.changes["by_method"] == {"resident": 1, "address": 1, "manual": 1}
    route_people([p.pk for p in people], acting_user=d.users["office"])
    assert Loop.objects.filter(kind=VERIFICATION).count() == 3 and Verification.objects.count() == 3
    assert AuditEntry.objects.filter(action="push.route").count() == 1
    assert LoopEvent.objects.filter(action="issued").count() == 3


def test_routing_is_set_based(district):
    d = district

    def queries_for(n: int) -> int:
        batch = make_batch(d.office)
        ids = [push(batch, address=["鼓楼社区锦悦小区3号楼", "东羊村一组12号", "无名路", "屯里镇"][i % 4],
                    id_number=make_id_number(dt.date(1990, 1, 1)) if i % 3 == 0 else None).pk for i in range(n)]
        with CaptureQueriesContext(connection) as q:
            route_people(ids, acting_user=d.users["office"])
        assert Verification.objects.filter(person_id__in=ids).count() == n
        return len(q)

    UnitIndex.cached()  # the unit index is built once and reused by later calls
    assert queries_for(40) == queries_for(8)


def test_an_overdue_verification_is_reminded_then_escalated(district):
    d = district
    [p] = routed(d, {"resident": d.resident_a}, deadline="1h")
    past = timezone.now() - timedelta(minutes=1)
    Loop.objects.filter(pk=loop_of(p).pk).update(due_at=past, next_reminder_at=past, reminder_limit=1)
    assert loop_of(p).is_overdue()
    assert remind_due("w1") == 1
    assert Message.objects.filter(user=d.users["grid_a"], channel="inbox", subject__startswith="催办").exists()
    Loop.objects.filter(pk=loop_of(p).pk).update(next_reminder_at=past)
    assert remind_due("w1") == 1
    assert Message.objects.filter(user=d.users["property_a"], subject__startswith="督办").exists()


def test_the_index_strips_only_known_prefixes(district):
    idx = UnitIndex.build()
    assert idx.strip_prefixes("山西省临汾市尧都区鼓楼社区") == ("鼓楼社区", "")
    assert idx.strip_prefixes("解放路市场旁") == ("解放路市场旁", "")
    assert idx.strip_prefixes("北京市朝阳区三里屯")[1] == "朝阳区"
    assert idx.decide("东城社区").method == RouteMethod.MANUAL  # 社区 is not a district
