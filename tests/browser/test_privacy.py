"""A grid worker reveals one resident with a reason from the list, and finds a resident by the full ID number through
the register's search (sent by POST: the number never appears in the address bar)."""

import pytest

from bihuan.testing import PASSWORD

from .conftest import PHONE, login

pytestmark = pytest.mark.browser


def test_reveal_with_a_reason_and_search_by_full_id_number_on_a_phone(browser, live_server, live_district, shot):
    d = live_district
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    page = context.new_page()
    login(page, live_server.url, "grid_a", PASSWORD)
    page.goto(f"{live_server.url}/households/{d.household_a.pk}/")
    clear = d.resident_a.reveal_id_number()
    assert clear not in page.content()
    page.click(f"[data-testid=reveal-{d.resident_a.pk}]")
    page.select_option(f"[data-testid=reveal-reason-{d.resident_a.pk}]", "call")
    shot(page, "reveal-reason-phone")
    page.click(f"[data-testid=reveal-go-{d.resident_a.pk}]")
    page.wait_for_selector("[data-testid=revealed]")
    assert clear in page.locator("[data-testid=revealed]").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.goto(f"{live_server.url}/residents/?unit={d.grid_a.pk}")
    page.fill("[data-testid=search]", clear)
    page.press("[data-testid=search]", "Enter")
    page.wait_for_load_state("networkidle")
    page.wait_for_function("document.querySelector('[data-testid=total]').innerText.includes('1')")
    assert d.resident_a.name in page.locator("[data-testid=residents]").inner_text()
    assert clear not in page.url
    shot(page, "search-full-id-phone")
    context.close()
