"""Control cases: opening each type (directly and from a verification outcome), phases and dates from the
protocol versions, period changes with re-planned tests, the measures checklist with its photo, the
five-for-one team, moving up. The helpers here are shared by the other test modules of this app."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from bihuan.core.models import AuditEntry
from bihuan.notify.models import Message
from bihuan.policy.models import Protocol, RiskArea
from bihuan.pushes.models import Measure, Outcome, Verification

from ..actions import (
    ControlError,
    access_case,
    cases_for_member,
    do_change_period,
    do_mark_measure,
    do_move_up,
    do_open_case,
    do_open_case_from_verification,
    do_set_team_member,
    team_of,
)
from ..models import CaseState, ControlCase, ControlType, MeasureItem, TeamMember, TeamSlot
from ..phases import phases_for, replan_tests, type_code_for
from .helpers import (
    HOTEL,
    PNG,
    days_ago,
    open_case,
    photo,
    protocol,
    sample_days,
    set_results,
    today,
    verified,
)

# A 1×1 PNG: what a phone photo of the signed agreement stands for.
TYPES = ("centralized_quarantine", "home_isolation", "home_monitoring")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


# --- types and phases ------------------------------------------------------------------------------------

def test_the_three_types_are_shipped_ranked_with_their_checklists(db):
    types = {t.code: t for t in ControlType.objects.all()}
    assert [t.code for t in ControlType.objects.all()] == ["centralized_quarantine", "home_isolation",
                                                           "home_monitoring"]  # strictest first
    assert types["centralized_quarantine"].rank > types["home_isolation"].rank > types["home_monitoring"].rank
    assert not types["centralized_quarantine"].at_home and types["home_isolation"].at_home
    keys = {code: [m["key"] for m in t.measures] for code, t in types.items()}
    assert keys["home_isolation"] == ["card_posted", "agreement_signed", "sensor_installed", "household_briefed"]
    for t in types.values():
        assert [m["key"] for m in t.measures if m["photo"]] == ["agreement_signed"]
    assert {type_code_for(m) for m in Measure.values} == {*TYPES, None}


def test_the_ninth_edition_gives_seven_days_with_its_test_days(db):
    ninth = protocol("第九版")
    assert phases_for(Measure.CENTRALIZED_QUARANTINE, ninth) == [
        {"type": "centralized_quarantine", "days": 7, "tests": [1, 2, 3, 5, 7]}]
    assert phases_for(Measure.HOME_ISOLATION, ninth) == [{"type": "home_isolation", "days": 7, "tests": [1, 4, 7]}]
    # No 第九版 rule for home monitoring: the type's default.
    assert phases_for(Measure.HOME_MONITORING, ninth) == [{"type": "home_monitoring", "days": 7, "tests": [1, 4, 7]}]


def test_the_eighth_edition_gives_fourteen_plus_seven(db):
    eighth = protocol("第八版")
    assert phases_for(Measure.CENTRALIZED_QUARANTINE, eighth) == [
        {"type": "centralized_quarantine", "days": 14, "tests": [1, 4, 7, 14]},
        {"type": "home_monitoring", "days": 7, "tests": [2, 7]}]
    # Home monitoring alone follows the chain's step for it.
    assert phases_for(Measure.HOME_MONITORING, eighth) == [{"type": "home_monitoring", "days": 7, "tests": [2, 7]}]


def test_a_rule_that_says_so_chains_three_days_of_home_monitoring_and_stops_at_tests_only(db):
    rule = {"risk": "high", "within_days": 7, "measure": "centralized_quarantine", "days": 7, "tests": [1, 2, 3, 5, 7],
            "then": [{"measure": "home_monitoring", "days": 3, "tests": [3]},
                     {"measure": "tests_only", "days": 3, "tests": [1, 3]}]}
    seven_three = Protocol(name="7+3", effective_from=dt.date(2022, 8, 1), rules=[rule])
    assert phases_for("centralized_quarantine", seven_three) == [
        {"type": "centralized_quarantine", "days": 7, "tests": [1, 2, 3, 5, 7]},
        {"type": "home_monitoring", "days": 3, "tests": [3]}]


@pytest.mark.parametrize("tests, old, new, expected", [
    ([1, 2, 3, 5, 7], 7, 10, [1, 2, 3, 5, 7, 10]),  # the release test moves to the new last day
    ([1, 4, 7, 14], 14, 7, [1, 4, 7]),
    ([1, 2, 3, 5, 7], 7, 6, [1, 2, 3, 5, 6]),
    ([1, 4], 7, 3, [1]),  # no last-day test planned: none added
])
def test_tests_are_replanned_when_the_period_changes(tests, old, new, expected):
    assert replan_tests(tests, old, new) == expected


# --- opening ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_code", TYPES)
def test_each_type_opens_with_its_checklist_and_its_phase_tests(district, type_code):
    d = district
    start = dt.date(2022, 7, 1)
    case = open_case(d, type_code, start=start, reason="密接的密接")
    assert case.state == CaseState.ACTIVE and case.type.code == type_code and case.path == d.grid_a.path
    assert case.end_date == start + dt.timedelta(days=6) and case.protocol_name == "第九版"
    assert case.id_masked == d.resident_a.id_masked and case.phone_masked == "138****5678"
    assert case.reveal_phone() == "13812345678"
    assert [m.key for m in case.measure_items.order_by("id")] == [m["key"] for m in case.type.measures]
    tests = case.phases[0]["tests"]
    assert sample_days(case) == [(n, start + dt.timedelta(days=n - 1)) for n in tests]
    assert all(s.result == "" for s in case.tests.all())
    if type_code == "centralized_quarantine":
        assert (case.site_kind, case.site_address, case.site_room) == ("hotel", HOTEL, "1203")
    else:  # at home: the register's household address
        assert (case.site_kind, case.site_address) == ("home", d.household_a.address)
    entry = AuditEntry.objects.get(action="control.case.open", target_id=str(case.pk))
    assert entry.actor == d.users["community_a"] and entry.changes["phone"] == "138****5678"
    assert "13812345678" not in str(entry.changes)


def test_the_fourteen_plus_seven_case_knows_its_home_phase_address(district):
    d = district
    case = open_case(district, "centralized_quarantine", start=dt.date(2022, 3, 1), protocol_name="第八版")
    assert case.end_date == dt.date(2022, 3, 14)
    assert [p["type"] for p in case.phases] == ["centralized_quarantine", "home_monitoring"]
    assert case.phases[1]["site_address"] == d.household_a.address and case.phases[1]["site_kind"] == "home"
    assert [day for day, _ in sample_days(case)] == [1, 4, 7, 14]


def test_phases_given_by_staff_are_checked_naming_the_field(district):
    d = district
    case = open_case(d, "home_isolation", phases=[{"type": "home_isolation", "days": 10, "tests": ["1", 5, 10]}])
    assert case.end_date == today() + dt.timedelta(days=9) and [day for day, _ in sample_days(case)] == [1, 5, 10]
    for phases, field in [([{"type": "home_isolation", "days": 0}], "phases[0].days"),
                          ([{"type": "home_isolation", "days": 7, "tests": [8]}], "phases[0].tests[0]"),
                          ([{"type": "home_isolation", "days": 7, "tests": [4, 1]}], "phases[0].tests"),
                          ([{"type": "spa", "days": 7}], "phases[0].type"),
                          ([{"type": "home_monitoring", "days": 7}], "phases[0].type")]:
        with pytest.raises(ControlError) as err:
            open_case(d, "home_isolation", resident=d.resident_a2, phases=phases)
        assert err.value.field == field


def test_a_wrong_site_a_second_open_case_and_a_missing_name_are_refused(district):
    d = district
    with pytest.raises(ControlError, match="^site_kind:"):
        open_case(d, "centralized_quarantine", site_kind="home")
    with pytest.raises(ControlError, match="^site_address:"):
        open_case(d, "centralized_quarantine", site_address="")
    open_case(d, "home_isolation")
    with pytest.raises(ControlError, match="^resident:.*已在管控中"):
        open_case(d, "home_monitoring")
    with pytest.raises(ControlError, match="^name:"):
        do_open_case(type_code="home_isolation", unit=d.grid_a, name=" ", start_date=today(), site_kind="home",
                     site_address="锦悦小区1号楼", acting_user=d.users["community_a"])


def test_a_person_not_in_the_register_can_be_put_under_control(district):
    d = district
    case = do_open_case(type_code="home_isolation", unit=d.grid_a, name="外来务工人员", phone="139 0000 1111",
                        start_date=today(), site_kind="home", site_address="锦悦小区5号楼101",
                        acting_user=d.users["community_a"])
    assert case.resident is None and case.phone_masked == "139****1111" and case.path == d.grid_a.path


def test_only_community_staff_and_above_open_cases_and_only_in_their_subtree(district):
    d = district
    with pytest.raises(PermissionDenied):
        open_case(d, "home_isolation", user="grid_a")
    with pytest.raises(Http404):
        open_case(d, "home_isolation", user="village_b")
    with pytest.raises(Http404):  # the unit is theirs, the resident is not
        open_case(d, "home_isolation", user="village_b", unit=d.village_b)
    case = open_case(d, "home_isolation", user="township_a")
    for name in d.insiders:
        assert access_case(d.users[name], case.pk) == case
    for name in d.outsiders:
        with pytest.raises(Http404):
            access_case(d.users[name], case.pk)


# --- from a verification ---------------------------------------------------------------------------------


@pytest.fixture
def pudong_high_risk(db):
    RiskArea.objects.create(level="high", name="上海市浦东新区", effective_from=dt.date(2022, 2, 1))


def test_a_verification_under_the_ninth_edition_opens_seven_days_centralized(district, pudong_high_risk):
    d = district
    ver = verified(d, Measure.CENTRALIZED_QUARANTINE, arrival="2022-07-01")
    assert ver.recommended_measure == Measure.CENTRALIZED_QUARANTINE
    case = do_open_case_from_verification(ver, acting_user=d.users["community_a"], start_date=dt.date(2022, 7, 1),
                                          site_address=HOTEL, site_room="0806")
    assert case.type.code == "centralized_quarantine" and case.protocol_name == "第九版"
    assert case.phases == [{"type": "centralized_quarantine", "days": 7, "tests": [1, 2, 3, 5, 7]}]
    assert case.end_date == dt.date(2022, 7, 7) and case.unit == ver.person.unit and case.pushed_person == ver.person
    assert case.resident == d.resident_a and case.id_masked == ver.person.id_masked != ""
    assert case.reveal_phone() == "13812345678" and case.phone_hash == ver.person.phone_hash
    assert "第九版" in case.reason and "浦东新区" in case.reason
    assert AuditEntry.objects.get(action="control.case.open", target_id=str(case.pk)).changes["verification"] == ver.pk


def test_a_verification_under_the_eighth_edition_opens_fourteen_plus_seven(district, pudong_high_risk):
    d = district
    ver = verified(d, Measure.CENTRALIZED_QUARANTINE, arrival="2022-03-01")
    case = do_open_case_from_verification(ver, acting_user=d.users["community_a"], start_date=dt.date(2022, 3, 1),
                                          site_address=HOTEL)
    assert case.protocol_name == "第八版" and case.end_date == dt.date(2022, 3, 14)
    assert [(p["type"], p["days"]) for p in case.phases] == [("centralized_quarantine", 14), ("home_monitoring", 7)]


@pytest.mark.parametrize("measure", [Measure.HOME_ISOLATION, Measure.HOME_MONITORING])
def test_a_verification_with_a_home_measure_opens_at_home(district, measure):
    d = district
    ver = verified(d, measure, arrival="2022-07-01", override="同住人员为确诊病例的密接")
    case = do_open_case_from_verification(ver, acting_user=d.users["community_a"])
    assert case.type.code == measure and case.site_kind == "home" and case.site_address == d.household_a.address
    assert case.start_date == today() and "同住人员为确诊病例的密接" in case.reason
    assert case.protocol_name == "第九版" and case.phases[0]["type"] == measure


def test_only_a_new_control_outcome_with_a_control_measure_opens_a_case(district):
    d = district
    ver = verified(d, Measure.TESTS_ONLY, arrival="2022-07-01", override="低风险区")
    with pytest.raises(ControlError, match="^measure:"):
        do_open_case_from_verification(ver, acting_user=d.users["community_a"])
    Verification.objects.filter(pk=ver.pk).update(outcome=Outcome.NO_CONTROL_NEEDED)
    with pytest.raises(ControlError, match="^outcome:"):
        do_open_case_from_verification(ver, acting_user=d.users["community_a"])


def test_an_outsider_cannot_open_a_case_from_a_verification(district):
    d = district
    ver = verified(d, Measure.HOME_ISOLATION, arrival="2022-07-01", override="密接")
    with pytest.raises(Http404):
        do_open_case_from_verification(ver, acting_user=d.users["village_b"])
    assert not ControlCase.objects.exists()


# --- period ----------------------------------------------------------------------------------------------

def test_an_extension_is_audited_and_adds_the_new_release_test(district):
    d = district
    case = open_case(d, "centralized_quarantine", start=days_ago(2))  # 7 days, tests 1, 2, 3, 5, 7
    set_results(case, days=[1, 2])
    case = do_change_period(case, 3, "第7天核酸结果异常，延长观察", acting_user=d.users["community_a"])
    assert case.end_date == days_ago(2) + dt.timedelta(days=9)
    assert [day for day, _ in sample_days(case)] == [1, 2, 3, 5, 7, 10]
    assert case.phases[0]["days"] == 10 and case.phases[0]["tests"] == [1, 2, 3, 5, 7, 10]
    entry = AuditEntry.objects.get(action="control.case.period", target_id=str(case.pk))
    assert entry.changes["days"] == [7, 10] and entry.changes["reason"] == "第7天核酸结果异常，延长观察"
    assert entry.changes["tests_added"] == [10] and entry.changes["tests_removed"] == []


def test_a_shortening_removes_future_tests_past_the_new_end(district):
    d = district
    case = open_case(d, "centralized_quarantine", start=days_ago(9), protocol_name="第八版")  # 14 days: 1, 4, 7, 14
    set_results(case, days=[1, 4, 7])
    case = do_change_period(case, -7, "第九版方案实施，隔离期调整为7天", acting_user=d.users["community_a"])
    assert case.end_date == days_ago(3) and [day for day, _ in sample_days(case)] == [1, 4, 7]
    assert AuditEntry.objects.get(action="control.case.period").changes["tests_removed"] == [14]
    # Shortening by a day moves the release test to the new last day, if that is still ahead.
    case2 = open_case(d, "home_isolation", resident=d.resident_a2)  # 1, 4, 7 from today
    case2 = do_change_period(case2, -1, "评估后缩短", acting_user=d.users["community_a"])
    assert [day for day, _ in sample_days(case2)] == [1, 4, 6]


def test_a_period_change_needs_a_reason_a_sane_length_and_the_right_role(district):
    d = district
    case = open_case(d, "home_isolation")
    with pytest.raises(ControlError, match="^reason:"):
        do_change_period(case, 2, " ", acting_user=d.users["community_a"])
    with pytest.raises(ControlError, match="^days_delta:"):
        do_change_period(case, -7, "太短", acting_user=d.users["community_a"])
    with pytest.raises(ControlError, match="^days_delta:"):
        do_change_period(case, 0, "不变", acting_user=d.users["community_a"])
    with pytest.raises(PermissionDenied):
        do_change_period(case, 2, "延长", acting_user=d.users["grid_a"])
    with pytest.raises(Http404):
        do_change_period(case, 2, "延长", acting_user=d.users["village_b"])


def test_an_extension_takes_a_proposed_case_back_under_control(district):
    d = district
    case = open_case(d, "home_isolation", start=days_ago(7))
    ControlCase.objects.filter(pk=case.pk).update(state=CaseState.RELEASE_PROPOSED)
    case = do_change_period(case, 2, "同住人员阳性", acting_user=d.users["community_a"])
    assert case.state == CaseState.ACTIVE


# --- measures --------------------------------------------------------------------------------------------

def test_measures_are_marked_by_whom_and_when_and_the_agreement_needs_its_photo(district, settings):
    d = district
    case = open_case(d, "home_isolation")
    item = do_mark_measure(case, "card_posted", acting_user=d.users["grid_a"])
    assert item.done_by == d.users["grid_a"] and item.done_at is not None
    with pytest.raises(ControlError, match="^photo:"):
        do_mark_measure(case, "agreement_signed", acting_user=d.users["grid_a"])
    with pytest.raises(ControlError, match="^photo:"):
        do_mark_measure(case, "agreement_signed", acting_user=d.users["grid_a"],
                        photo=photo("协议书.png", b"%PDF-1.4 not a photo"))
    item = do_mark_measure(case, "agreement_signed", acting_user=d.users["grid_a"], photo=photo())
    stored = Path(item.photo.path)
    assert stored.is_file() and stored.read_bytes() == PNG and str(stored).startswith(str(settings.MEDIA_ROOT))
    assert item.photo.name.endswith(".png")
    entry = AuditEntry.objects.filter(action="control.measure.done", target_id=str(item.pk)).get()
    assert entry.changes["photo"] == item.photo.name and entry.changes["key"] == "agreement_signed"
    with pytest.raises(ControlError, match="^key:"):
        do_mark_measure(case, "moat_dug", acting_user=d.users["grid_a"])
    assert MeasureItem.objects.filter(case=case, done_at__isnull=False).count() == 2


def test_an_outsider_cannot_mark_measures_unless_on_the_team(district):
    d = district
    case = open_case(d, "home_isolation")
    with pytest.raises(Http404):
        do_mark_measure(case, "card_posted", acting_user=d.users["rep_b"])
    do_set_team_member(case, TeamSlot.VOLUNTEER, user=d.users["rep_b"], acting_user=d.users["community_a"])
    assert do_mark_measure(case, "card_posted", acting_user=d.users["rep_b"]).done_by == d.users["rep_b"]


# --- five-for-one team -----------------------------------------------------------------------------------

def test_the_five_slots_are_filled_and_a_staff_member_sees_and_is_told_about_their_case(district):
    d = district
    case = open_case(d, "home_isolation")
    other = open_case(d, "home_monitoring", resident=d.resident_a2)
    assert [(slot, label) for slot, label, _ in team_of(case)] == [
        ("cadre", "社区干部"), ("grid_worker", "网格员"), ("doctor", "医生"), ("police", "民警"),
        ("volunteer", "志愿者 / 家属")]
    by = d.users["community_a"]
    do_set_team_member(case, TeamSlot.CADRE, user=d.users["community_a"], acting_user=by)
    grid = do_set_team_member(case, TeamSlot.GRID_WORKER, user=d.users["grid_a"], acting_user=by)
    do_set_team_member(case, TeamSlot.DOCTOR, name="社区医生刘敏", phone="13700001111", acting_user=by)
    do_set_team_member(case, TeamSlot.POLICE, name="片警孙强", phone="0357-2345678", acting_user=by)
    do_set_team_member(case, TeamSlot.VOLUNTEER, name="李秀英（家属）", acting_user=by)
    members = {slot: m for slot, _, m in team_of(case)}
    assert all(members.values()) and grid.name == "grid_a" and grid.phone_masked.startswith("139")
    assert members["doctor"].phone_masked == "137****1111" and members["police"].reveal_phone() == "03572345678"
    assert list(cases_for_member(d.users["grid_a"])) == [case]
    assert other not in cases_for_member(d.users["grid_a"])
    told = Message.objects.filter(user=d.users["grid_a"], channel="inbox", idempotency_key__startswith="control.team:")
    assert told.count() == 1 and "王建国" in told.get().subject
    # Filling a slot again replaces the member; an empty slot is cleared.
    do_set_team_member(case, TeamSlot.GRID_WORKER, name="代班网格员", phone="13600002222", acting_user=by)
    assert list(cases_for_member(d.users["grid_a"])) == []
    assert do_set_team_member(case, TeamSlot.VOLUNTEER, acting_user=by) is None
    assert TeamMember.objects.filter(case=case).count() == 4
    assert AuditEntry.objects.filter(action="control.team.set", target_id=str(case.pk)).count() == 6
    assert AuditEntry.objects.filter(action="control.team.clear", target_id=str(case.pk)).count() == 1
    with pytest.raises(ControlError, match="^slot:"):
        do_set_team_member(case, "driver", name="司机", acting_user=by)
    with pytest.raises(PermissionDenied):
        do_set_team_member(case, TeamSlot.VOLUNTEER, name="志愿者", acting_user=d.users["grid_a"])


# --- moving up -------------------------------------------------------------------------------------------

def test_a_case_moves_up_from_home_monitoring_to_home_isolation_to_centralized(district):
    d = district
    by = d.users["community_a"]
    monitoring = open_case(d, "home_monitoring", start=days_ago(2))
    do_set_team_member(monitoring, TeamSlot.GRID_WORKER, user=d.users["grid_a"], acting_user=by)
    isolation = do_move_up(monitoring, "home_isolation", "同住人员核酸阳性", acting_user=by)
    monitoring.refresh_from_db()
    assert monitoring.state == CaseState.MOVED_UP and isolation.previous == monitoring
    assert isolation.type.code == "home_isolation" and isolation.start_date == today()
    assert isolation.end_date == today() + dt.timedelta(days=6) and isolation.reason == "同住人员核酸阳性"
    assert isolation.site_address == monitoring.site_address and isolation.phone_hash == monitoring.phone_hash
    assert [day for day, _ in sample_days(isolation)] == [1, 4, 7]
    assert [m.key for m in isolation.measure_items.order_by("id")][0] == "card_posted"
    assert isolation.team.get().user == d.users["grid_a"]  # the team follows the person
    with pytest.raises(ControlError, match="^type_code:"):
        do_move_up(isolation, "home_monitoring", "降级", acting_user=by)
    with pytest.raises(ControlError, match="^type_code:"):
        do_move_up(isolation, "home_isolation", "原级", acting_user=by)
    with pytest.raises(ControlError, match="^site_address:"):
        do_move_up(isolation, "centralized_quarantine", "出现发热症状", acting_user=by)
    with pytest.raises(ControlError, match="^reason:"):
        do_move_up(isolation, "centralized_quarantine", "", acting_user=by, site_address=HOTEL)
    central = do_move_up(isolation, "centralized_quarantine", "出现发热症状，转集中隔离", acting_user=by,
                         site_address=HOTEL, site_room="0502")
    assert (central.site_kind, central.site_address, central.site_room) == ("hotel", HOTEL, "0502")
    assert central.previous.previous == monitoring and central.previous.state == CaseState.MOVED_UP
    assert list(ControlCase.objects.filter(state__in=[CaseState.ACTIVE]).values_list("pk", flat=True)) == [central.pk]
    moves = AuditEntry.objects.filter(action="control.case.move_up").order_by("id")
    assert [(e.changes["type"], e.changes["reason"]) for e in moves] == [
        (["home_monitoring", "home_isolation"], "同住人员核酸阳性"),
        (["home_isolation", "centralized_quarantine"], "出现发热症状，转集中隔离")]
    with pytest.raises(ControlError, match="^state:"):
        do_move_up(monitoring, "centralized_quarantine", "再次升级", acting_user=by, site_address=HOTEL)
    assert Message.objects.filter(user=d.users["grid_a"], idempotency_key__startswith="control.move_up:").count() == 2


def test_moving_up_needs_manage_control_in_the_subtree(district):
    d = district
    case = open_case(d, "home_monitoring")
    with pytest.raises(PermissionDenied):
        do_move_up(case, "home_isolation", "发热", acting_user=d.users["grid_a"])
    with pytest.raises(Http404):
        do_move_up(case, "home_isolation", "发热", acting_user=d.users["village_b"])
    case.refresh_from_db()
    assert case.state == CaseState.ACTIVE
