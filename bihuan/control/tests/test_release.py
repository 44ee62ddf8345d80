"""Release: proposing cases whose period is over with every test negative (or advancing them to their next
phase), releasing by community staff, and the release notice as HTML and as a PDF that renders in Chinese."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from bihuan.core.models import AuditEntry
from bihuan.notify.models import Message

from .. import release
from ..actions import ControlError, advance_phase, do_set_team_member
from ..models import CaseState, ControlCase, TeamSlot
from ..models import TestResult as Result
from ..release import do_release, propose_releases, release_notice_html, release_notice_pdf
from .helpers import HOTEL, days_ago, open_case, sample_days, set_results, today


def state(case: ControlCase) -> str:
    return ControlCase.objects.values_list("state", flat=True).get(pk=case.pk)


def proposed(d, type_code: str = "home_isolation", **kw) -> ControlCase:
    """A case whose seven days ended yesterday with every test negative, proposed for release."""
    case = open_case(d, type_code, start=days_ago(7), **kw)
    set_results(case)
    assert propose_releases(today()) == 1
    return ControlCase.objects.get(pk=case.pk)


# --- proposing -------------------------------------------------------------------------------------------

def test_a_case_over_with_every_test_negative_is_proposed_and_its_releasers_told(district):
    d = district
    case = open_case(d, "home_isolation", start=days_ago(7))  # ended yesterday
    set_results(case)
    assert propose_releases(today()) == 1
    assert state(case) == CaseState.RELEASE_PROPOSED
    assert propose_releases(today()) == 0  # idempotent
    entry = AuditEntry.objects.get(action="control.case.propose_release", target_id=str(case.pk))
    assert entry.actor is None and entry.changes["state"] == ["active", "release_proposed"]
    told = Message.objects.filter(user=d.users["community_a"], idempotency_key__startswith="control.release_proposed:")
    assert told.count() == 1 and "1 人" in told.get().subject
    assert not Message.objects.filter(user=d.users["village_b"], idempotency_key__startswith="control.release").exists()


def test_a_case_ending_today_is_proposed_once_its_last_test_is_negative(district):
    d = district
    case = open_case(d, "home_isolation", start=days_ago(6))  # day 7 is today
    set_results(case, days=[1, 4])
    assert propose_releases(today()) == 0 and state(case) == CaseState.ACTIVE
    set_results(case, days=[7])
    assert propose_releases(today()) == 1 and state(case) == CaseState.RELEASE_PROPOSED


@pytest.mark.parametrize("result", [Result.POSITIVE, Result.PENDING, Result.MISSED, ""])
def test_a_positive_pending_missed_or_missing_result_blocks_the_proposal(district, result):
    d = district
    case = open_case(d, "centralized_quarantine", start=days_ago(8))
    set_results(case)
    set_results(case, result, days=[5])
    assert propose_releases(today()) == 0 and state(case) == CaseState.ACTIVE


def test_a_case_still_running_is_not_proposed(district):
    d = district
    case = open_case(d, "home_isolation", start=days_ago(3))
    set_results(case, days=[1, 4])
    assert propose_releases(today()) == 0 and state(case) == CaseState.ACTIVE


def test_a_chained_case_advances_to_its_next_phase_instead_of_being_proposed(district):
    d = district
    case = open_case(d, "centralized_quarantine", start=days_ago(14), protocol_name="第八版")  # 14 + 7
    do_set_team_member(case, TeamSlot.GRID_WORKER, user=d.users["grid_a"], acting_user=d.users["community_a"])
    set_results(case)
    assert propose_releases(today()) == 1
    assert state(case) == CaseState.PHASE_ENDED
    nxt = ControlCase.objects.get(previous=case)
    assert nxt.state == CaseState.ACTIVE and nxt.type.code == "home_monitoring" and nxt.phase_index == 1
    assert nxt.start_date == today() and nxt.end_date == today() + dt.timedelta(days=6)  # 14 ended yesterday
    assert (nxt.site_kind, nxt.site_address, nxt.site_room) == ("home", d.household_a.address, "")
    assert [day for day, _ in sample_days(nxt)] == [2, 7] and nxt.protocol_name == "第八版"
    assert nxt.team.get().user == d.users["grid_a"] and nxt.phone_hash == case.phone_hash
    assert AuditEntry.objects.filter(action="control.case.phase_ended", target_id=str(case.pk)).count() == 1
    assert Message.objects.filter(user=d.users["grid_a"], idempotency_key__startswith="control.phase:").count() == 1
    assert propose_releases(today()) == 0  # nothing twice
    assert ControlCase.objects.filter(previous=case).count() == 1
    assert advance_phase(case) is None


def test_the_next_phase_starts_the_day_after_when_the_phase_ends_today(district):
    d = district
    case = open_case(d, "centralized_quarantine", start=days_ago(13), protocol_name="第八版")
    set_results(case)
    assert propose_releases(today()) == 1
    assert ControlCase.objects.get(previous=case).start_date == today() + dt.timedelta(days=1)


# --- releasing -------------------------------------------------------------------------------------------

def test_community_staff_release_a_proposed_case(district):
    d = district
    case = proposed(d)
    with pytest.raises(PermissionDenied):
        do_release(case, acting_user=d.users["grid_a"])
    with pytest.raises(Http404):
        do_release(case, acting_user=d.users["village_b"])
    case = do_release(case, acting_user=d.users["community_a"])
    case.refresh_from_db()
    assert case.state == CaseState.RELEASED and case.released_by == d.users["community_a"]
    assert case.released_at is not None
    entry = AuditEntry.objects.get(action="control.case.release", target_id=str(case.pk))
    assert entry.actor == d.users["community_a"] and entry.changes["state"] == ["release_proposed", "released"]
    with pytest.raises(ControlError, match="^state:"):
        do_release(case, acting_user=d.users["community_a"])


def test_a_ready_case_can_be_released_before_the_worker_proposes_it_but_not_earlier(district):
    d = district
    early = open_case(d, "home_isolation", start=days_ago(3))
    set_results(early, days=[1, 4])
    with pytest.raises(ControlError, match="^state:"):
        do_release(early, acting_user=d.users["community_a"])
    ready = open_case(d, "home_monitoring", resident=d.resident_a2, start=days_ago(7))
    set_results(ready)
    assert do_release(ready, acting_user=d.users["community_a"]).state == CaseState.RELEASED


def test_a_result_corrected_to_positive_after_the_proposal_blocks_the_release(district):
    d = district
    case = proposed(d)
    set_results(case, Result.POSITIVE, days=[7])
    with pytest.raises(ControlError, match="^state:"):
        do_release(case, acting_user=d.users["community_a"])


def test_a_chained_case_is_not_released_before_its_last_phase(district):
    d = district
    case = open_case(d, "centralized_quarantine", start=days_ago(14), protocol_name="第八版")
    set_results(case)
    with pytest.raises(ControlError, match="^state:.*下一管控阶段"):
        do_release(case, acting_user=d.users["community_a"])


# --- the notice ------------------------------------------------------------------------------------------

def test_the_notice_in_html_names_the_person_masked_the_period_the_tests_and_the_unit(district):
    d = district
    case = do_release(proposed(d, "centralized_quarantine"), acting_user=d.users["community_a"])
    page = release_notice_html(case)
    assert "<title>解除集中隔离告知书" in page and "<h1>解除集中隔离告知书</h1>" in page
    assert "王建国" in page and d.resident_a.id_masked in page and d.resident_a.reveal_id_number() not in page
    assert HOTEL in page and "1203室" in page
    start, end = days_ago(7), days_ago(1)
    assert f"{start.year}年{start.month}月{start.day}日至{end.year}年{end.month}月{end.day}日" in page
    assert page.count("阴性</td>") == 5 and "结果均为阴性" in page
    assert "锦悦小区第1网格" not in page and "鼓楼社区（盖章）" in page  # released by the community's staff
    assert f"{today().year}年{today().month}月{today().day}日" in page
    assert "中华人民共和国传染病防治法" in page and "第九版" in page
    assert "预览" not in page


def test_the_notice_is_chinese_whatever_the_staff_members_language(client, district):
    from django.urls import reverse
    from django.utils import translation

    from bihuan.register.models import Staff

    d = district
    case = do_release(proposed(d, "centralized_quarantine"), acting_user=d.users["community_a"])
    with translation.override("en"):
        page = release_notice_html(case)
    assert "阴性</td>" in page and "Negative" not in page and "Released" not in page
    Staff.objects.filter(user=d.users["community_a"]).update(language="en")
    client.force_login(d.users["community_a"])
    with translation.override("zh-hans"):  # the request activates English; leave the language as it was after it
        page = client.get(reverse("control:notice", args=[case.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "阴性" in page and "Negative" not in page


def test_a_notice_before_release_is_marked_as_a_preview(district):
    d = district
    page = release_notice_html(open_case(d, "home_monitoring"))
    assert "解除居家健康监测告知书" in page and "预览：尚未解除" in page


def test_the_notice_of_a_chained_case_shows_the_earlier_phase(district):
    d = district
    first = open_case(d, "centralized_quarantine", start=days_ago(21), protocol_name="第八版")
    set_results(first)
    propose_releases(days_ago(7))
    second = ControlCase.objects.get(previous=first)
    set_results(second)
    assert propose_releases(today()) == 1
    page = release_notice_html(do_release(second, acting_user=d.users["community_a"]))
    assert "解除居家健康监测告知书" in page and "此前管控</th><td>集中隔离" in page and "已转入下一阶段" in page


def _pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def test_the_notice_as_pdf_is_a4_with_the_chinese_text_and_renders(district, tmp_path):
    d = district
    case = do_release(proposed(d, "centralized_quarantine"), acting_user=d.users["community_a"])
    pdf = release_notice_pdf(case)
    assert pdf.startswith(b"%PDF-") and b"/MediaBox [ 0 0 595.2756 841.8898 ]" in pdf  # A4
    if not shutil.which("pdftoppm"):
        pytest.skip("poppler-utils (pdftoppm, pdftotext) not installed: the PDF was built but not rendered")
    text = _pdf_text(pdf, tmp_path)
    for expected in ("解除集中隔离告知书", "王建国", d.resident_a.id_masked, "鼓楼社区（盖章）", "阴性", "传染病防治法"):
        assert expected in text
    (tmp_path / "notice.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(tmp_path / "notice.pdf"),
                    str(tmp_path / "page")], check=True)
    [png] = list(tmp_path.glob("page*.png"))
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000


def test_the_pdf_falls_back_to_the_built_in_song_font_without_the_font_file(district, tmp_path, monkeypatch):
    d = district
    monkeypatch.setattr(release, "CJK_FONT_FILE", str(tmp_path / "missing.ttc"))
    release.cjk_font.cache_clear()
    try:
        pdf = release_notice_pdf(open_case(d, "home_isolation"))
    finally:
        release.cjk_font.cache_clear()
    assert pdf.startswith(b"%PDF-") and b"STSong-Light" in pdf
    if shutil.which("pdftotext"):
        assert "解除居家隔离告知书" in _pdf_text(pdf, tmp_path)
