"""Checkpoints in a browser, on a phone: a car with a driver and three passengers registered at a checkpoint; a
returning person's self-report on the public page, then its receipt code pulled in at the checkpoint with one
tap; a grid worker's screening answer at the door of one household."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from bihuan.checkpoints.actions import do_create_checkpoint, do_start_campaign, push_pending
from bihuan.checkpoints.models import Registration, ScreeningAnswer, SelfReport, Traveller
from bihuan.policy.models import RiskArea, RiskLevel
from bihuan.pushes.models import Evidence, PushedPerson
from bihuan.testing import PASSWORD, make_id_number

from .conftest import PHONE, login

pytestmark = pytest.mark.browser


def phone_context(browser):
    return browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN")


def fits_phone(page):
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.fixture
def checkpoint(live_district):
    from bihuan.checkpoints import matching

    matching.forget_policy()
    RiskArea.objects.create(level=RiskLevel.HIGH, name="上海市浦东新区", effective_from=dt.date(2020, 1, 1))
    return do_create_checkpoint(unit=live_district.community_a, name="鼓楼社区东卡口", kind="compound_gate",
                                acting_user=live_district.users["community_a"])


def test_a_car_with_a_driver_and_three_passengers_is_registered_on_a_phone(browser, live_server, live_district,
                                                                           checkpoint, shot):
    d = live_district
    context = phone_context(browser)
    page = context.new_page()
    login(page, live_server.url, "community_a", PASSWORD)
    page.goto(f"{live_server.url}/checkpoints/")
    page.click(f"[data-testid=checkpoint-{checkpoint.pk}]")
    page.select_option("[data-testid=vehicle_type]", "new_energy")
    page.fill("[data-testid=plate]", "晋ld12345")
    page.fill("[data-testid=p0-name]", "王建国")
    page.fill("[data-testid=p0-id]", d.resident_a.reveal_id_number())
    page.fill("[data-testid=p0-origin]", "上海浦东")
    assert "上海市浦东新区" in page.text_content("#origin-hint-0")  # the risk areas in force, shown as typed
    page.fill("[data-testid=p0-origin]", "")
    # province → city → district picker: a municipality's one "city" is chosen by itself
    picker = page.locator("[data-testid=p0-origin-picker] select")
    picker.nth(0).select_option("上海市")
    picker.nth(2).select_option("浦东新区")
    assert page.input_value("[data-testid=p0-origin]") == "上海市浦东新区"
    assert "高风险" in page.text_content("#origin-hint-0")
    page.fill("[data-testid=p0-destination]", "锦悦小区3号楼2单元401")
    page.fill("[data-testid=p0-temperature]", "36.5")
    for i, (name, birth) in enumerate((("李秀英", dt.date(1978, 11, 2)), ("王小明", dt.date(2005, 1, 9)),
                                       ("王奶奶", dt.date(1945, 3, 3))), start=1):
        page.fill(f"[data-testid=p{i}-name]", name)
        page.fill(f"[data-testid=p{i}-id]", make_id_number(birth, "F"))
        page.fill(f"[data-testid=p{i}-temperature]", "36.6" if i != 3 else "38.1")
    assert fits_phone(page)
    shot(page, "checkpoint-register-filled")
    page.click("[data-testid=register]")
    page.wait_for_selector("[data-testid=result]")
    shot(page, "checkpoint-register-result")
    result = page.inner_text("[data-testid=result]")
    assert "已登记 4 人" in result and "晋LD12345" in result and "高风险区" in result
    assert "已立即通知" in result  # the fever alerted the checkpoint's unit and the destination community
    push_pending()  # the worker's checkpoints.push task
    reg = Registration.objects.get()
    assert reg.persons == 4 and reg.abnormal == 1 and reg.plate == "晋LD12345"
    assert [t.seat for t in Traveller.objects.order_by("id")] == ["driver", "passenger", "passenger", "passenger"]
    assert PushedPerson.objects.count() == 4
    context.close()


def test_a_self_report_then_its_receipt_code_pulled_in_at_the_checkpoint_with_one_tap(browser, live_server,
                                                                                       live_district, checkpoint,
                                                                                       shot):
    context = phone_context(browser)
    resident = context.new_page()
    resident.goto(f"{live_server.url}/report/")
    resident.fill("[data-testid=name]", "孙立")
    resident.fill("[data-testid=id_number]", make_id_number(dt.date(1979, 9, 9)))
    resident.fill("[data-testid=phone]", "13900008888")
    resident.fill("[data-testid=origin]", "上海市浦东新区")
    resident.select_option("[data-testid=transport]", "train")
    resident.fill("[data-testid=destination]", "锦悦小区3号楼2单元401")
    resident.fill("[data-testid=companions]", "孙小立 儿子")
    assert fits_phone(resident)
    shot(resident, "self-report-form")
    resident.click("[data-testid=submit]")
    resident.wait_for_selector("[data-testid=code]")
    code = resident.inner_text("[data-testid=code]").strip()
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{8}", code) and resident.locator("[data-testid=qr] svg").count() == 1
    shot(resident, "self-report-receipt")

    staff = context.new_page()
    login(staff, live_server.url, "community_a", PASSWORD)
    staff.goto(f"{live_server.url}/checkpoints/{checkpoint.pk}/register/")
    staff.fill("[data-testid=codes]", code.lower())
    staff.click("[data-testid=pull]")  # the one tap
    staff.wait_for_selector("[data-testid=pulled-0]")
    assert staff.input_value("[data-testid=p0-name]") == "孙立"
    staff.select_option("[data-testid=vehicle_type]", "")
    staff.fill("[data-testid=p0-temperature]", "36.4")
    shot(staff, "checkpoint-pulled-in")
    staff.click("[data-testid=register]")
    staff.wait_for_selector("[data-testid=result]")
    shot(staff, "checkpoint-pulled-in-result")
    assert "已报备" in staff.inner_text("[data-testid=result]")
    push_pending()
    report = SelfReport.objects.get()
    assert report.status == "arrived"
    person = PushedPerson.objects.get(name="孙立")
    assert sorted(Evidence.objects.filter(person=person).values_list("source", flat=True)) == ["卡口", "报备"]
    resident.reload()
    assert "已到达" in resident.inner_text("[data-testid=status]")
    context.close()


def test_a_grid_worker_answers_the_screening_at_the_door(browser, live_server, live_district, shot):
    d = live_district
    c = do_start_campaign(title="第一轮拉网式排查", since=timezone.localdate() - dt.timedelta(days=7),
                          acting_user=d.users["commander"])
    context = phone_context(browser)
    page = context.new_page()
    login(page, live_server.url, "grid_a", PASSWORD)
    page.goto(f"{live_server.url}/checkpoints/campaigns/{c.pk}/")
    shot(page, "screening-list")
    page.click(f"[data-testid=household-{d.household_a.pk}]")
    page.fill("[data-testid=present]", "3")
    page.fill("[data-testid=arrived-name-0]", "王小军")
    page.fill("[data-testid=arrived-from-0]", "上海市浦东新区")
    page.fill("[data-testid=arrived-phone-0]", "13900002468")
    page.fill("[data-testid=member-change]", "儿子王小军从上海回来住")
    assert fits_phone(page)
    shot(page, "screening-door")
    page.click("[data-testid=save-screen]")
    page.wait_for_selector("[data-testid=totals]")
    shot(page, "screening-after")
    assert "已排查 1 / 1 户" in page.inner_text("[data-testid=totals]")
    assert ScreeningAnswer.objects.get().via == "door"
    assert PushedPerson.objects.get(name="王小军").sources == "排查"
    context.close()
