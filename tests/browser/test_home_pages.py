"""A grid worker on a phone and the commander on a desktop find their own part of the district,
in Chinese and in English."""

import pytest

from bihuan.testing import PASSWORD

from .conftest import DESKTOP, PHONE, login

pytestmark = pytest.mark.browser


def test_grid_worker_on_a_phone_sees_their_households_in_chinese_and_english(browser, live_server, live_district,
                                                                           shot):
    d = live_district
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    page = context.new_page()
    login(page, live_server.url, "grid_a", PASSWORD)
    assert "锦悦小区第1网格" in page.locator("[data-testid=today-title]").inner_text()
    # households by building, the room number only (the address prefix once, above the group)
    row = page.locator(f"[data-testid=household-{d.household_a.pk}]")
    assert d.household_a.room in row.inner_text()
    assert page.locator(f"[data-testid=household-{d.household_b.pk}]").count() == 0
    assert "我的住户" in page.content()
    # The page fits the phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "grid-worker-phone-zh")

    page.click("[data-testid=lang-en]")
    page.wait_for_load_state("networkidle")
    assert "My households" in page.content()
    assert d.household_a.room in page.locator(f"[data-testid=household-{d.household_a.pk}]").inner_text()
    shot(page, "grid-worker-phone-en")

    page.click(f"[data-testid=household-{d.household_a.pk}] a.room")
    page.wait_for_load_state("networkidle")
    assert d.resident_a.id_masked in page.content()
    assert d.resident_a.reveal_id_number() not in page.content()
    shot(page, "grid-worker-household-en")
    context.close()


def test_commander_on_a_desktop_sees_the_whole_district_in_chinese_and_english(browser, live_server, live_district,
                                                                             shot):
    d = live_district
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()
    login(page, live_server.url, "commander", PASSWORD)
    assert page.locator("[data-testid=board]").count() == 1  # the first page is the situation board
    page.click("text=辖区概况")
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-testid=unit-name]").inner_text().startswith("尧都区")
    children = page.locator("[data-testid=children]").inner_text()
    assert d.office.name in children and d.department.name in children
    assert page.locator("[data-testid=kpi-households]").inner_text() == "2"
    assert page.locator("[data-testid=kpi-residents]").inner_text() == "3"
    shot(page, "commander-desktop-zh")

    page.click(f"[data-testid=children] >> text={d.office.name}")
    page.wait_for_load_state("networkidle")
    assert d.township_a.name in page.locator("[data-testid=children]").inner_text()

    page.click("[data-testid=lang-en]")
    page.wait_for_load_state("networkidle")
    assert "Households" in page.content() and "Blind spots" in page.content()
    shot(page, "commander-desktop-en")
    context.close()
