"""Control and care in a browser: a five-for-one member on a phone records a check-in and closes a service
request; the person, through their own link with no login, checks in and confirms the service; the community's
"today" page and the commander's dashboard show it."""

import datetime as dt

import pytest
from django.utils import timezone

from bihuan.control import links
from bihuan.control.actions import do_open_case, do_set_team_member
from bihuan.control.checkins import do_record_checkin
from bihuan.control.models import CheckIn, ServiceRequest
from bihuan.control.services import do_request_service
from bihuan.testing import PASSWORD, create_household, create_resident

from .conftest import DESKTOP, PHONE, login

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def control_types(live_district):
    """A transactional test database is flushed between tests, data migrations included: seed the types again."""
    import importlib

    from django.apps import apps

    importlib.import_module("bihuan.control.migrations.0002_control_types").add_types(apps, None)


def fits_phone(page):
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def phone_context(browser):
    return browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN")


def open_case(unit, resident, type_code="home_isolation", days_ago=3, **kw):
    hotel = type_code == "centralized_quarantine"
    return do_open_case(type_code=type_code, unit=unit, name="", resident=resident,
                        start_date=timezone.localdate() - dt.timedelta(days=days_ago),
                        site_kind="hotel" if hotel else "home", site_address="尧都宾馆" if hotel else "",
                        site_room="312" if hotel else "", acting_user=None, **kw)


def test_a_team_member_and_the_person_close_the_loop_on_phones(browser, live_server, live_district, shot):
    d = live_district
    case = open_case(d.grid_a, d.resident_a)
    do_set_team_member(case, "grid_worker", user=d.users["grid_a"], acting_user=None)
    do_set_team_member(case, "doctor", name="刘医生", phone="13700001111", acting_user=None)
    groceries = do_request_service(case, "groceries", "大米一袋、青菜两把、鸡蛋一盒", acting_user=None)
    medicine = do_request_service(case, "medicine", "硝苯地平缓释片", acting_user=None)
    # Others in the grid: a neighbour under home monitoring with a fever this morning, an elderly resident.
    h = create_household(d.grid_a, "锦悦小区3号楼2单元402", building="3", entrance="2", room="402")
    neighbour = open_case(d.grid_a, create_resident(h, "孙志强"), type_code="home_monitoring", days_ago=1)
    do_record_checkin(neighbour, date=timezone.localdate(), slot="am", temperature="37.8", symptoms=["咳嗽"],
                      acting_user=None)
    create_resident(create_household(d.grid_a, "锦悦小区3号楼1单元101", building="3", entrance="1", room="101"),
                    "周桂芳", dt.date(1938, 2, 1), "F", flags={"elderly_alone": True})
    hotel = open_case(d.grid_a, d.resident_a2, type_code="centralized_quarantine", days_ago=0)

    # The grid worker's phone: their cases, then one case.
    phone = phone_context(browser)
    gp = phone.new_page()
    login(gp, live_server.url, "grid_a", PASSWORD)
    gp.goto(f"{live_server.url}/control/")
    gp.locator(f"[data-testid=case-{case.pk}]").wait_for()
    assert "第 4 / 7 天" in gp.locator(f"[data-testid=case-{case.pk}]").inner_text()
    assert fits_phone(gp)
    shot(gp, "control-mine-phone")
    with gp.expect_navigation():
        gp.locator(f"[data-testid=case-{case.pk}] a").tap()
    assert gp.locator("[data-testid=case-name]").inner_text().startswith(case.name)
    assert fits_phone(gp)
    shot(gp, "control-case-phone-before")

    # Record the morning check-in: temperature and no symptoms.
    gp.locator("[data-testid=temperature]").fill("36.6")
    gp.locator("[data-testid=slot]").select_option("am")
    gp.locator("[data-testid=checkin-submit]").tap()
    gp.locator("[data-testid=slot-am].slot-done").wait_for()
    assert "36.6" in gp.locator("[data-testid=slot-am]").inner_text()
    checkin = CheckIn.objects.get(case=case, date=timezone.localdate(), slot="am")
    assert checkin.entered_by == d.users["grid_a"]

    # Close the groceries request: take it, then mark it done.
    row = gp.locator(f"[data-testid=service-{groceries.pk}]")
    row.locator("[data-testid=assign]").tap()
    gp.locator(f"[data-testid=service-{groceries.pk}] [data-testid=service-state]:has-text('办理中')").wait_for()
    gp.locator(f"[data-testid=service-{groceries.pk}] [data-testid=service-done]").tap()
    gp.locator(f"[data-testid=service-{groceries.pk}] [data-testid=service-state]:has-text('待本人确认')").wait_for()
    groceries.refresh_from_db()
    assert groceries.done_at and groceries.assigned_to == d.users["grid_a"] and not groceries.confirmed_at
    assert fits_phone(gp)
    shot(gp, "control-case-phone-after")

    # The grid's today page: the fever first, the sampling list, the service still waiting, the care visits.
    gp.goto(f"{live_server.url}/control/today/?unit={d.grid_a.id}")
    gp.wait_for_load_state("networkidle")
    first = gp.locator("[data-testid=checkin-list] li").first
    assert first.get_attribute("data-testid") == f"checkin-{neighbour.pk}" and "37.8" in first.inner_text()
    assert gp.locator(f"[data-testid=service-{medicine.pk}]").count() == 1
    assert gp.locator("[data-testid=care] li").count() >= 2
    assert fits_phone(gp)
    shot(gp, "control-today-phone")
    sample = hotel.tests.get(date=timezone.localdate())
    gp.locator(f"[data-testid=sample-{sample.pk}] [data-testid=result-negative]").tap()
    gp.locator(f"[data-testid=sample-{sample.pk}] [data-testid=sample-result]:has-text('阴性')").wait_for()
    gp.locator(f"[data-testid=service-{medicine.pk}] [data-testid=service-done]").tap()
    gp.locator(f"[data-testid=service-{medicine.pk}] [data-testid=service-state]:has-text('待本人确认')").wait_for()
    assert fits_phone(gp)
    shot(gp, "control-today-phone-after")
    phone.close()

    # The person opens their own link on their phone, with no login: checks in and confirms the groceries.
    person = phone_context(browser)
    pp = person.new_page()
    pp.goto(live_server.url + links.person_path(case.pk))
    assert case.name in pp.locator("[data-testid=person-head]").inner_text()
    assert "36.6" in pp.locator("[data-testid=slot-am]").inner_text()
    assert fits_phone(pp)
    shot(pp, "control-person-phone-before")
    pp.locator("[data-testid=temperature]").fill("36.5")
    pp.locator("[data-testid=checkin-submit]").tap()
    pp.locator("[data-testid=checkin-done]").wait_for()
    assert CheckIn.objects.get(case=case, date=timezone.localdate(), slot="pm").entered_by is None
    pp.locator(f"[data-testid=confirm-{groceries.pk}]").tap()
    pp.locator(f"[data-testid=request-{groceries.pk}] [data-testid=request-confirmed]").wait_for()
    groceries.refresh_from_db()
    assert groceries.confirmed_at is not None
    # And asks for something new.
    pp.locator("label.kind-pick:has-text('垃圾清运')").tap()
    with pp.expect_navigation():
        pp.locator("[data-testid=service-submit]").tap()
    assert ServiceRequest.objects.filter(case=case, kind="rubbish", requested_by=None).exists()
    assert fits_phone(pp)
    shot(pp, "control-person-phone-after")
    pp.goto(f"{live_server.url}/p/{case.pk}-forgedforgedforgedfo/")
    assert 'data-testid="not-found"' in pp.content()  # the friendly 404 page
    person.close()

    # The commander's dashboard shows the district's figures, drills down, and fits a phone too.
    desk = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    cp = desk.new_page()
    login(cp, live_server.url, "commander", PASSWORD)
    cp.goto(f"{live_server.url}/control/dashboard/")
    cp.locator("#chart-under[data-ready='1']").wait_for()
    assert cp.locator("[data-testid=kpi-open]").inner_text() == "3"
    assert cp.locator("[data-testid=kpi-abnormal]").inner_text() == "1"
    shot(cp, "control-dashboard-desktop")
    for unit in (d.office, d.township_a):
        with cp.expect_navigation():
            cp.click(f"[data-testid=child-{unit.id}] a")
    assert cp.locator(f"[data-testid=child-open-{d.community_a.id}]").inner_text() == "3"
    shot(cp, "control-dashboard-township-desktop")
    desk.close()
    phone = phone_context(browser)
    mp = phone.new_page()
    login(mp, live_server.url, "commander", PASSWORD)
    mp.goto(f"{live_server.url}/control/dashboard/?unit={d.township_a.id}")
    mp.locator("#chart-today[data-ready='1']").wait_for()
    assert fits_phone(mp)
    shot(mp, "control-dashboard-phone")
    phone.close()


def test_community_staff_pages_fit_a_phone(browser, live_server, live_district, shot):
    """The community's today page (per-grid care summary), the case page with its management section, the
    list and the form that opens a case — on a phone, nothing overflowing."""
    d = live_district
    case = open_case(d.grid_a, d.resident_a, days_ago=6)  # ends today
    do_set_team_member(case, "grid_worker", user=d.users["grid_a"], acting_user=None)
    do_request_service(case, "other", "帮忙取快递，放在门口即可", acting_user=None)
    for sample in case.tests.all():
        sample.result = "negative"
        sample.save()
    phone = phone_context(browser)
    page = phone.new_page()
    login(page, live_server.url, "community_a", PASSWORD)
    with page.expect_navigation():
        page.locator("[data-testid=nav-control], [data-testid=tab-control]").locator("visible=true").click()
    assert page.locator(f"[data-testid=care-grid-{d.grid_a.id}]").count() == 1
    assert page.locator(f"[data-testid=release-{case.pk}]").count() == 1
    assert fits_phone(page)
    shot(page, "control-today-community-phone")
    page.goto(f"{live_server.url}/control/cases/{case.pk}/")
    page.locator("[data-testid=manage] summary").first.tap()
    page.locator("[data-testid=team-cadre] summary").tap()
    assert fits_phone(page)
    shot(page, "control-case-manage-phone")
    with page.expect_navigation():
        page.locator("[data-testid=release]").tap()
    page.locator("[data-testid=case-state]:has-text('已解除')").wait_for()
    assert page.locator("[data-testid=notice-pdf]").count() == 1
    page.goto(f"{live_server.url}/control/cases/?unit={d.community_a.id}&state=all")
    assert page.locator(f"[data-testid=case-{case.pk}]").count() == 1
    assert fits_phone(page)
    shot(page, "control-cases-phone")
    page.goto(f"{live_server.url}/control/cases/new/?unit={d.grid_a.id}&q=李")
    with page.expect_navigation():
        page.locator(f"[data-testid=pick-{d.resident_a2.id}]").tap()
    page.locator("label.pill:has-text('居家健康监测')").tap()
    assert fits_phone(page)
    shot(page, "control-new-phone")
    with page.expect_navigation():
        page.locator("[data-testid=open-submit]").tap()
    assert page.locator("[data-testid=case-name]").inner_text().startswith("李秀英")
    phone.close()


def test_the_command_office_revises_a_checklist_and_the_case_page_shows_which_version_it_runs_on(
        browser, live_server, live_district, shot):
    from bihuan.control.models import ControlType

    d = live_district
    case = open_case(d.grid_a, d.resident_a)
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()
    login(page, live_server.url, "office", PASSWORD)
    page.goto(f"{live_server.url}/control/types/")
    page.click('[data-testid="type-edit-home_isolation"]')
    assert "1 人在管" in page.inner_text('[data-testid="in-use"]')
    measures = page.locator('[data-testid="measures"]')
    measures.fill(measures.input_value() + "\n每日两次上门测温 | 拍照")
    page.fill("input[name=note]", "增加上门测温")
    shot(page, "control-type-revise")
    page.click('[data-testid="publish"]')
    page.wait_for_load_state("networkidle")
    assert "现行第 2 版" in page.inner_text('[data-testid="type-home_isolation"]')
    shot(page, "control-types")
    assert ControlType.objects.current().get(code="home_isolation").measures[-1] == {
        "key": "measure_1", "label": "每日两次上门测温", "photo": True}
    page.goto(f"{live_server.url}/control/cases/{case.pk}/")
    version = page.inner_text('[data-testid="type-version"]')
    assert "第 1 版" in version and "现行第 2 版" in version
    shot(page, "control-case-type-version")
    context.close()
