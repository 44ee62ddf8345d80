"""End to end, for each control type through to release: open (from a verification or directly) → measures
checklist → five-for-one team → check-ins → door-to-door test results → ``propose_releases`` → release →
notice. And the "14 + 7" chain: centralized quarantine, then home monitoring as its own case, then release."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest

from bihuan.core.models import AuditEntry
from bihuan.notify.models import Message
from bihuan.policy.models import Measure, RiskArea

from ..actions import (
    cases_for_member,
    do_open_case,
    do_open_case_from_verification,
    do_set_team_member,
    team_of,
)
from ..checkins import do_record_checkin
from ..models import CaseState, ControlCase, TeamSlot
from ..models import TestResult as Result
from ..release import do_release, propose_releases, release_notice_html, release_notice_pdf
from ..sampling import do_record_result
from .helpers import HOTEL, days_ago, mark_all_measures, today, verified


@pytest.fixture
def risk_areas(db):
    RiskArea.objects.create(level="high", name="上海市浦东新区", effective_from=days_ago(60))
    RiskArea.objects.create(level="medium", name="北京市朝阳区", effective_from=days_ago(60))
    RiskArea.objects.create(level="high", name="西安市雁塔区", effective_from=dt.date(2021, 12, 1),
                            effective_to=dt.date(2022, 2, 1))


def opened(d, type_code: str) -> ControlCase:
    """Open a case whose seventh day is today: centralized from a verification (high risk), home isolation
    from a verification (medium risk), home monitoring directly by community staff."""
    start = days_ago(6)
    by = d.users["community_a"]
    if type_code == "centralized_quarantine":
        ver = verified(d, Measure.CENTRALIZED_QUARANTINE, arrival=start.isoformat(), origin="上海市浦东新区")
        assert ver.recommended_measure == Measure.CENTRALIZED_QUARANTINE
        return do_open_case_from_verification(ver, acting_user=by, start_date=start, site_address=HOTEL,
                                              site_room="0612")
    if type_code == "home_isolation":
        ver = verified(d, Measure.HOME_ISOLATION, arrival=start.isoformat(), origin="北京市朝阳区")
        assert ver.recommended_measure == Measure.HOME_ISOLATION
        return do_open_case_from_verification(ver, acting_user=by, start_date=start)
    return do_open_case(type_code="home_monitoring", unit=d.grid_a, name=d.resident_a.name, resident=d.resident_a,
                        start_date=start, site_kind="home", site_address="", reason="高风险岗位人员",
                        acting_user=by)


def fill_team(d, case: ControlCase) -> None:
    by = d.users["community_a"]
    do_set_team_member(case, TeamSlot.CADRE, user=d.users["community_a"], acting_user=by)
    do_set_team_member(case, TeamSlot.GRID_WORKER, user=d.users["grid_a"], acting_user=by)
    do_set_team_member(case, TeamSlot.DOCTOR, name="社区医生刘敏", phone="13700001111", acting_user=by)
    do_set_team_member(case, TeamSlot.POLICE, name="片警孙强", phone="13700002222", acting_user=by)
    do_set_team_member(case, TeamSlot.VOLUNTEER, name="志愿者陈静", phone="13700003333", acting_user=by)


def record_all(d, case: ControlCase, result: str = Result.NEGATIVE, *, but_last: bool = False) -> None:
    samples = list(case.tests.order_by("day"))
    for sample in samples[:-1] if but_last else samples:
        do_record_result(sample, result, acting_user=d.users["grid_a"])


@pytest.mark.parametrize("type_code", ["centralized_quarantine", "home_isolation", "home_monitoring"])
def test_each_type_goes_from_opening_to_a_printed_release_notice(district, risk_areas, type_code, tmp_path,
                                                                settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    d = district
    case = opened(d, type_code)
    assert case.type.code == type_code and case.end_date == today() and case.state == CaseState.ACTIVE

    mark_all_measures(d, case)
    assert not case.measure_items.filter(done_at__isnull=True).exists()
    fill_team(d, case)
    assert all(member for _, _, member in team_of(case))
    assert case in cases_for_member(d.users["grid_a"])

    do_record_checkin(case, date=today(), slot="am", temperature="36.5", symptoms=[], acting_user=d.users["grid_a"])

    record_all(d, case, but_last=True)
    assert propose_releases(today()) == 0  # the last test has no result yet
    record_all(d, case)
    assert propose_releases(today()) == 1
    case.refresh_from_db()
    assert case.state == CaseState.RELEASE_PROPOSED
    assert Message.objects.filter(user=d.users["community_a"],
                                  idempotency_key__startswith="control.release_proposed:").exists()

    case = do_release(case, acting_user=d.users["community_a"])
    assert case.state == CaseState.RELEASED and case not in cases_for_member(d.users["grid_a"])

    page = release_notice_html(case)
    assert f"解除{case.type.name_zh}告知书" in page and case.name in page and case.id_masked in page
    assert page.count("阴性</td>") == len(case.phases[0]["tests"]) and "鼓楼社区（盖章）" in page
    pdf = release_notice_pdf(case)
    assert pdf.startswith(b"%PDF-")
    if shutil.which("pdftotext"):
        (tmp_path / "n.pdf").write_bytes(pdf)
        text = subprocess.run(["pdftotext", str(tmp_path / "n.pdf"), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert f"解除{case.type.name_zh}告知书" in text and case.name in text

    trail = set(AuditEntry.objects.filter(target_type="control.controlcase", target_id=str(case.pk))
                .values_list("action", flat=True))
    assert {"control.case.open", "control.team.set", "control.case.propose_release", "control.case.release"} <= trail
    assert AuditEntry.objects.filter(action="control.measure.done", changes__case=case.pk).count() == len(
        case.type.measures)


def test_a_positive_result_keeps_the_case_under_control(district, risk_areas):
    d = district
    case = opened(d, "home_isolation")
    record_all(d, case, but_last=True)
    do_record_result(case.tests.order_by("day").last(), Result.POSITIVE, acting_user=d.users["grid_a"])
    assert propose_releases(today()) == 0
    assert ControlCase.objects.get(pk=case.pk).state == CaseState.ACTIVE


def test_the_fourteen_plus_seven_chain_runs_to_release(district, risk_areas, settings, tmp_path):
    """第八版 (2022-01): a high-risk arrival gets 14 days centralized, then 7 days home monitoring."""
    settings.MEDIA_ROOT = tmp_path / "media"
    d = district
    ver = verified(d, Measure.CENTRALIZED_QUARANTINE, arrival="2022-01-10", origin="西安市雁塔区")
    start = days_ago(20)  # day 14 was a week ago; the home phase ends today
    first = do_open_case_from_verification(ver, acting_user=d.users["community_a"], start_date=start,
                                           site_address=HOTEL)
    assert first.protocol_name == "第八版" and first.end_date == days_ago(7)
    mark_all_measures(d, first)
    fill_team(d, first)
    record_all(d, first)
    assert propose_releases(days_ago(6)) == 1  # the worker's round the day after day 14
    first.refresh_from_db()
    assert first.state == CaseState.PHASE_ENDED
    second = ControlCase.objects.get(previous=first)
    assert (second.type.code, second.start_date, second.end_date) == ("home_monitoring", days_ago(6), today())
    assert second.site_kind == "home" and second.site_address == d.household_a.address
    assert len(second.team.all()) == 5 and second in cases_for_member(d.users["grid_a"])
    mark_all_measures(d, second)
    record_all(d, second)
    assert propose_releases(today()) == 1
    second = do_release(ControlCase.objects.get(pk=second.pk), acting_user=d.users["community_a"])
    page = release_notice_html(second)
    assert "解除居家健康监测告知书" in page and "此前管控</th><td>集中隔离" in page and "第八版" in page
