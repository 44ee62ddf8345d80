"""Verification: call attempts, the form fields, outcomes and their required fields, the loop reported on
completion, the policy recommendation confirmed or overridden, the hand-off export."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from bihuan.core.models import AuditEntry
from bihuan.loops.models import LoopEvent, LoopState
from bihuan.pushes.actions import do_record_call, do_save_verification
from bihuan.pushes.exports import handoff_xlsx
from bihuan.pushes.models import Measure, Outcome, Transfer, Verification
from bihuan.pushes.verify import VerifyError

from .helpers import assert_one_owner, loop_of, routed


@pytest.fixture
def person(district):
    """A pushed person routed to grid A (a registered resident)."""
    [p] = routed(district, {"name": "王建国", "resident": district.resident_a, "phone": "13812345678"})
    return p


def ver_of(person) -> Verification:
    return Verification.objects.get(person=person)


def save(district, person, data, user="grid_a"):
    return do_save_verification(ver_of(person), data, acting_user=district.users[user])


@pytest.fixture
def no_policy(monkeypatch):
    from bihuan.policy import rules as policy

    monkeypatch.setattr(policy, "recommend", lambda person, ver=None: ("", ""))


@pytest.fixture
def policy_says_home_isolation(monkeypatch):
    from bihuan.policy import rules as policy

    monkeypatch.setattr(policy, "recommend", lambda person, ver=None: (Measure.HOME_ISOLATION, "第九版：中风险区"))


def test_call_attempts_are_kept_with_their_times_and_start_the_loop(district, person):
    d = district
    do_record_call(ver_of(person), "no_answer", acting_user=d.users["grid_a"])
    do_record_call(ver_of(person), "powered_off", acting_user=d.users["grid_a"], note="下午再打")
    ver = do_record_call(ver_of(person), "reached", acting_user=d.users["grid_a"])
    assert [a["result"] for a in ver.call_attempts] == ["no_answer", "powered_off", "reached"]
    assert all(dt.datetime.fromisoformat(a["at"]) <= timezone.now() for a in ver.call_attempts)
    assert ver.call_attempts[1]["note"] == "下午再打"
    assert loop_of(person).state == LoopState.IN_PROGRESS
    with pytest.raises(VerifyError, match="^result:"):
        do_record_call(ver_of(person), "busy", acting_user=d.users["grid_a"])
    assert AuditEntry.objects.filter(action="push.call").count() == 3


def test_the_form_fields_are_saved_section_by_section(district, person, no_policy):
    d = district
    save(d, person, {"origin": "上海市浦东新区", "arrival_date": "2022-06-20",
                     "visited": [{"place": "上海市浦东新区", "from": "2022-06-10", "to": "2022-06-19"},
                                 {"place": "", "from": "", "to": ""}]})
    save(d, person, {"destination": "尧都区", "compound": "锦悦小区", "building": "3", "entrance": "2",
                     "room": "401", "dwelling_type": "own", "cohabitants": "3"})
    ver = save(d, person, {"health_status": "healthy", "symptoms": ["fever", "咳嗽"], "vaccine_doses": "3",
                           "tests": [{"date": "2022-06-19", "result": "negative"}, {"date": "", "result": ""}]})
    assert ver.arrival_date == dt.date(2022, 6, 20) and ver.visited == [
        {"place": "上海市浦东新区", "from": "2022-06-10", "to": "2022-06-19"}]
    assert (ver.compound, ver.building, ver.entrance, ver.room, ver.cohabitants) == ("锦悦小区", "3", "2", "401", 3)
    assert ver.symptoms == ["fever", "咳嗽"] and ver.tests == [{"date": "2022-06-19", "result": "negative"}]
    assert ver.vaccine_doses == 3 and ver.origin == "上海市浦东新区" and ver.outcome == Outcome.VERIFYING
    assert loop_of(person).state == LoopState.IN_PROGRESS  # saving data starts it, it does not report it


@pytest.mark.parametrize("data, field", [
    ({"arrival_date": "2022-13-01"}, "arrival_date"),
    ({"arrival_date": "2099-01-01"}, "arrival_date"),
    ({"cohabitants": "many"}, "cohabitants"),
    ({"vaccine_doses": "9"}, "vaccine_doses"),
    ({"building": "x" * 21}, "building"),
    ({"visited": [{"place": "", "from": "2022-06-01", "to": ""}]}, "visited[0].place"),
    ({"visited": [{"place": "北京", "from": "2022-06-05", "to": "2022-06-01"}]}, "visited[0].to"),
    ({"tests": [{"date": "2022-06-01", "result": "maybe"}]}, "tests[0].result"),
    ({"tests": [{"date": "", "result": "negative"}]}, "tests[0].date"),
])
def test_invalid_fields_are_refused_naming_the_field(district, person, data, field):
    with pytest.raises(VerifyError) as err:
        save(district, person, data)
    assert err.value.field == field and str(err.value).startswith(f"{field}:")


# outcome -> (incomplete data: the field its error names, complete data)
OUTCOMES = {
    Outcome.NEW_CONTROL: ({}, "measure", {"measure": Measure.HOME_ISOLATION}),
    Outcome.OUTSIDE_DISTRICT: ({"destination_address": "太原市某小区"}, "destination_city",
                               {"destination_city": "太原市"}),
    Outcome.LEFT: ({"left_to": "北京"}, "left_date", {"left_date": "2022-06-21", "left_to": "北京"}),
    Outcome.ALREADY_CONTROLLED: ({"where": "某隔离酒店"}, "since", {"where": "某隔离酒店", "since": "2022-06-20"}),
    Outcome.ALREADY_RELEASED: ({"since": "2022-06-20"}, "where", {"where": "某隔离酒店", "since": "2022-06-20"}),
    Outcome.NO_CONTROL_NEEDED: ({}, "basis", {"basis": "低风险地区，已两次核酸阴性"}),
    Outcome.OTHER: ({}, "note", {"note": "其他情况"}),
    Outcome.ELSEWHERE_IN_DISTRICT: ({"transfer_reason": "住在东羊村"}, "target_unit", None),
    Outcome.NO_SUCH_PERSON: ({}, "call_attempts", None),
}


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_each_outcome_requires_its_fields_and_completing_reports_the_loop(district, person, outcome, no_policy):
    d = district
    missing, field, complete = OUTCOMES[outcome]
    with pytest.raises(VerifyError) as err:
        save(d, person, {"outcome": outcome, **missing})
    assert err.value.field == field
    assert ver_of(person).outcome == Outcome.VERIFYING and loop_of(person).state == LoopState.ISSUED
    if complete is None:
        return
    ver = save(d, person, {"outcome": outcome, **complete})
    assert ver.outcome == outcome and ver.verified_by == d.users["grid_a"] and ver.verified_at
    assert all(ver.outcome_detail[k] == v for k, v in complete.items())
    loop = loop_of(person)
    assert loop.state == LoopState.REPORTED and loop.data["outcome"] == outcome and loop.next_reminder_at is None


def test_no_such_person_needs_a_failed_call(district, person):
    d = district
    do_record_call(ver_of(person), "reached", acting_user=d.users["grid_a"])
    with pytest.raises(VerifyError, match="^call_attempts:"):
        save(d, person, {"outcome": Outcome.NO_SUCH_PERSON})
    do_record_call(ver_of(person), "wrong_number", acting_user=d.users["grid_a"])
    assert save(d, person, {"outcome": Outcome.NO_SUCH_PERSON}).outcome == Outcome.NO_SUCH_PERSON
    assert loop_of(person).state == LoopState.REPORTED


def test_elsewhere_in_the_district_transfers_the_person(district, person, no_policy):
    d = district
    ver = save(d, person, {"outcome": Outcome.ELSEWHERE_IN_DISTRICT, "target_unit": str(d.village_b.pk),
                           "transfer_reason": "实际住在东羊村"})
    t = Transfer.objects.get(person=person)
    assert (t.from_unit, t.to_unit, t.reason, t.state) == (d.grid_a, d.village_b, "实际住在东羊村", "pending")
    assert ver.outcome_detail["transfer"] == t.pk and ver.outcome_detail["target_unit_name"] == "东羊村"
    assert loop_of(person).state == LoopState.REPORTED
    with pytest.raises(VerifyError, match="^outcome:"):  # nothing else while the transfer waits
        save(d, person, {"outcome": Outcome.OTHER, "note": "改主意"})
    with pytest.raises(VerifyError, match="^target_unit:"):
        [q] = routed(d, {"resident": d.resident_a2})
        save(d, q, {"outcome": Outcome.ELSEWHERE_IN_DISTRICT, "target_unit": str(d.grid_a.pk)})  # already there
    assert_one_owner(person)


def test_the_recommendation_is_confirmed_or_overridden_with_a_reason(district, person, policy_says_home_isolation):
    d = district
    ver = save(d, person, {"outcome": Outcome.NEW_CONTROL, "measure": Measure.HOME_ISOLATION})
    assert (ver.recommended_measure, ver.recommendation_basis) == (Measure.HOME_ISOLATION, "第九版：中风险区")
    assert ver.measure == Measure.HOME_ISOLATION and ver.override_reason == ""
    assert not AuditEntry.objects.filter(action="push.verification.override").exists()
    with pytest.raises(VerifyError, match="^override_reason:"):
        save(d, person, {"outcome": Outcome.NEW_CONTROL, "measure": Measure.CENTRALIZED_QUARANTINE})
    ver = save(d, person, {"outcome": Outcome.NEW_CONTROL, "measure": Measure.CENTRALIZED_QUARANTINE,
                           "override_reason": "家中有孕妇，无法居家隔离"})
    assert ver.measure == Measure.CENTRALIZED_QUARANTINE and ver.override_reason == "家中有孕妇，无法居家隔离"
    entry = AuditEntry.objects.get(action="push.verification.override")
    assert entry.changes["recommended"] == Measure.HOME_ISOLATION
    assert entry.changes["chosen"] == Measure.CENTRALIZED_QUARANTINE and entry.actor == d.users["grid_a"]


def test_a_failing_policy_leaves_the_recommendation_empty_and_the_save_goes_through(district, person, monkeypatch):
    from bihuan.policy import rules as policy

    def broken(person, ver=None):
        raise RuntimeError("policy bug")

    monkeypatch.setattr(policy, "recommend", broken)
    ver = save(district, person, {"outcome": Outcome.NEW_CONTROL, "measure": Measure.HOME_MONITORING})
    assert ver.recommended_measure == "" and ver.recommendation_basis == ""
    assert ver.measure == Measure.HOME_MONITORING


def test_going_back_to_verifying_reopens_the_loop(district, person, no_policy):
    d = district
    save(d, person, {"outcome": Outcome.OTHER, "note": "先记一笔"})
    ver = save(d, person, {"outcome": Outcome.VERIFYING})
    loop = loop_of(person)
    assert ver.verified_at is None and loop.state == LoopState.IN_PROGRESS
    assert loop.next_reminder_at == loop.due_at


def test_only_the_owning_side_may_verify(district, person):
    d = district
    with pytest.raises(Http404):
        save(d, person, {"origin": "北京"}, user="village_b")
    with pytest.raises(PermissionDenied):
        save(d, person, {"origin": "北京"}, user="department")
    assert save(d, person, {"origin": "北京"}, user="township_a").origin == "北京"  # above the grid


def test_the_handoff_export_lists_people_living_outside_the_district(district, person, no_policy):
    d = district
    save(d, person, {"outcome": Outcome.OUTSIDE_DISTRICT, "destination_city": "太原市",
                     "destination_address": "小店区某小区", "handoff_note": "已电话告知"})
    data, n = handoff_xlsx(d.community_a, timezone.localdate())
    assert n == 1
    ws = load_workbook(io.BytesIO(data)).active
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    assert len(rows) == 1 and rows[0][1] == "王建国" and rows[0][8] == "太原市" and rows[0][9] == "小店区某小区"
    assert rows[0][4] == "138****5678"  # masked unless revealed
    revealed = load_workbook(io.BytesIO(handoff_xlsx(d.community_a, timezone.localdate(), reveal=True)[0])).active
    assert revealed.cell(3, 5).value == "13812345678"
    empty = load_workbook(io.BytesIO(handoff_xlsx(d.village_b, timezone.localdate())[0])).active
    assert empty.max_row == 2


def test_unreachable_takes_a_preset_reason_defaulting_to_the_last_failed_call(district, person):
    d = district
    do_record_call(ver_of(person), "powered_off", acting_user=d.users["grid_a"])
    assert save(d, person, {"outcome": Outcome.NO_SUCH_PERSON}).outcome_detail["reason"] == "powered_off"
    with pytest.raises(VerifyError, match="^reason:"):
        save(d, person, {"outcome": Outcome.NO_SUCH_PERSON, "reason": "made_up"})
    with pytest.raises(VerifyError, match="^note:"):
        save(d, person, {"outcome": Outcome.NO_SUCH_PERSON, "reason": "other"})
    ver = save(d, person, {"outcome": Outcome.NO_SUCH_PERSON, "reason": "other", "note": "在外地住院"})
    assert ver.outcome_detail == {"reason": "other", "note": "在外地住院"}


def test_a_completed_report_is_amended_with_the_earlier_version_kept(district, person, no_policy, client):
    d = district
    save(d, person, {"health_status": "healthy", "outcome": Outcome.NO_CONTROL_NEEDED, "basis": "低风险地区"})
    first = ver_of(person)
    assert first.amendments == []
    save(d, person, {"health_status": "symptoms", "outcome": Outcome.OTHER, "note": "复核后发现有症状"})
    ver = ver_of(person)
    assert ver.outcome == Outcome.OTHER and ver.health_status == "symptoms"
    [old] = ver.amendments
    assert old["outcome"] == Outcome.NO_CONTROL_NEEDED and old["detail"] == {"basis": "低风险地区"}
    assert old["fields"] == {"health_status": "healthy"} and old["by"] and old["verified_at"]
    assert LoopEvent.objects.filter(loop_id=ver.loop_id, action="amended").count() == 1
    save(d, person, {"outcome": Outcome.OTHER, "note": "复核后发现有症状"})  # nothing changed: no amendment
    assert len(ver_of(person).amendments) == 1
    client.force_login(d.users["grid_a"])
    page = client.get(reverse("pushes:person", args=[person.pk])).content.decode()
    assert 'data-testid="amendments"' in page and "无需管控" in page and "健康状况" in page
