"""The first five minutes of every demo login, on the real demo: ``bihuan demo`` serving the generated demo district
and its day in progress (one server for the whole module, as a newcomer starts it), walked in Chromium.

Every main page of each role: real content, nothing scrolls sideways on a 360-px phone, no serious or critical
axe-core violation (the vendored axe, injected here), in Chinese and English. Taps are counted: marking one
household reached is one tap from the grid worker's home, and a mark made offline waits on the phone and is sent
when the connection returns. The screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import ARTIFACTS, DESKTOP, login

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "bihuan" / "static" / "vendor" / "axe-4.10.2.min.js"
PASSWORD = "bihuan2022"
PHONE = {"width": 360, "height": 760}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory, browser):
    """``bihuan demo`` on a fresh SQLite file: migrate, generate the demo district and its day, serve with gunicorn
    and a worker. Stopped with SIGTERM at the end (which must stop its children too)."""
    folder = tmp_path_factory.mktemp("demo")
    port = _free_port()
    env = {**os.environ, "BIHUAN_DEMO": "1", "DATABASE_URL": f"sqlite:///{folder / 'demo.sqlite3'}",
           "BIHUAN_DEBUG": "0"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = open(folder / "demo.log", "w")  # noqa: SIM115 - closed at the end of the module
    proc = subprocess.Popen([sys.executable, "-m", "bihuan", "demo", "--bind", f"127.0.0.1:{port}"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(base + "/login/", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            pytest.fail("bihuan demo did not start:\n" + (folder / "demo.log").read_text()[-3000:])
        time.sleep(1)
    yield {"url": base, "db": folder / "demo.sqlite3", "proc": proc}
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    log.close()


def _query(site, sql: str, *params):
    with sqlite3.connect(site["db"]) as conn:
        return conn.execute(sql, params).fetchall()


def axe_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa"]}});
        return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => v.id + ": " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
    }""")
    return result


def check_page(page, name: str, *, phone: bool) -> None:
    """Real content, no sideways scroll on a phone, no serious or critical axe violation; a screenshot."""
    page.wait_for_load_state("networkidle")
    assert page.locator("main").inner_text().strip(), name
    assert "Traceback" not in page.content()
    if phone:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} scrolls sideways: {width}px"
    assert axe_violations(page) == [], name
    page.screenshot(path=str(ARTIFACTS / f"first5-{name}.png"), full_page=True)


def in_english(page, site, who: str, paths, *, phone: bool) -> None:
    """The same main pages in English (remembered for the person), axe-checked too; then back to Chinese."""
    page.goto(site["url"] + "/")
    page.click("[data-testid=lang-en]")
    page.wait_for_load_state("networkidle")
    try:
        for path in ("/", *paths):
            page.goto(site["url"] + path)
            check_page(page, f"{who}{path.split('?')[0].replace('/', '-').rstrip('-') or '-home'}-en", phone=phone)
    finally:
        page.goto(site["url"] + "/")
        page.click("[data-testid=lang-zh]")
        page.wait_for_load_state("networkidle")


def _context(browser, *, phone: bool, locale: str = "zh-CN"):
    ARTIFACTS.mkdir(exist_ok=True)
    # bypass_csp: the vendored axe-core is injected as a script tag, which the site's CSP rightly refuses; the
    # policy itself is proven page by page in test_csp.py
    if phone:
        return browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale=locale, bypass_csp=True)
    return browser.new_context(viewport=DESKTOP, locale=locale, bypass_csp=True)


def test_commander_sees_what_is_behind_and_where_then_the_wall(browser, demo_site):
    ctx = _context(browser, phone=False)
    page = ctx.new_page()
    login(page, demo_site["url"], "commander", PASSWORD)
    overdue = int(page.locator("[data-testid='fig-directives.overdue_units'] b").inner_text().replace(",", ""))
    assert overdue > 0
    rows = page.locator("[data-testid=board-rows] tbody tr")
    assert rows.count() >= 4 and "区疫情防控指挥部办公室" not in rows.first.inner_text()  # the townships directly
    check_page(page, "commander-board", phone=False)
    # one tap on the worst township: its own board, its communities ranked
    rows.first.locator("a").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-testid=board]").count() == 1
    page.goto(demo_site["url"] + "/today/wall/")
    page.wait_for_selector("#chart-wall-curve[data-ready='1']")
    page.set_viewport_size({"width": 1600, "height": 900})
    page.screenshot(path=str(ARTIFACTS / "first5-commander-wall.png"), full_page=True)
    paths = ("/directives/", "/pushes/", "/pushes/dashboard/", "/pushes/report/", "/control/dashboard/",
             "/inbox/", "/me/")
    for path in paths:
        page.goto(demo_site["url"] + path)
        check_page(page, "commander" + path.replace("/", "-").rstrip("-"), phone=False)
    in_english(page, demo_site, "commander", paths, phone=False)
    ctx.close()


def test_community_staff_on_a_phone_find_their_work(browser, demo_site):
    ctx = _context(browser, phone=True)
    page = ctx.new_page()
    login(page, demo_site["url"], "community1", PASSWORD)
    assert page.locator("[data-testid=bottom-tabs]").is_visible()
    assert not page.locator("nav.tabs").is_visible()
    check_page(page, "community-home", phone=True)
    for path in ("/pushes/", "/control/today/", "/directives/", "/search/?q=zh", "/me/"):
        page.goto(demo_site["url"] + path)
        check_page(page, "community" + path.split("?")[0].replace("/", "-").rstrip("-"), phone=True)
    # verifying a pushed person: the tab (1), the person (2), the outcome's fields, one save (3)
    page.goto(demo_site["url"] + "/")
    page.locator("[data-testid=bottom-tabs] a", has_text="核查").click()
    page.wait_for_load_state("networkidle")
    page.locator(".pushes li:not(.done) a").first.click()
    page.wait_for_load_state("networkidle")
    page.select_option("#f-health_status", "healthy")
    page.check("input[name=outcome][value=no_control_needed]")
    page.fill("[name=no_control_needed__basis]", "来源地为低风险地区，48小时核酸阴性")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=saved]")
    assert page.locator("[data-testid=outcome]").inner_text() == "无需管控"
    check_page(page, "community-verified", phone=True)
    # English: the same pages in the user's other language, remembered for them, axe-checked on every one
    page.goto(demo_site["url"] + "/")
    page.click("[data-testid=lang-en]")
    page.wait_for_load_state("networkidle")
    assert "situation now" in page.content()
    page.click("[data-testid=lang-zh]")
    page.wait_for_load_state("networkidle")
    in_english(page, demo_site, "community", ("/pushes/", "/control/today/", "/directives/", "/search/?q=zh", "/me/"),
               phone=True)
    ctx.close()


def test_grid_worker_marks_a_household_in_one_tap_even_offline(browser, demo_site):
    ctx = _context(browser, phone=True)
    page = ctx.new_page()
    login(page, demo_site["url"], "grid1", PASSWORD)
    assert "户未通知" in page.locator("[data-testid=tasks]").inner_text()
    check_page(page, "grid-home", phone=True)
    buttons = page.locator("form.mark-form button")
    before = buttons.count()
    assert before > 2
    first = buttons.first.get_attribute("data-testid").split("-")[1]
    buttons.first.click()  # the one tap
    page.wait_for_selector(f"[data-testid=marked-{first}]")
    # no signal: the tap is kept on the phone and counted, then sent when the connection returns
    second = page.locator("form.mark-form button").first.get_attribute("data-testid").split("-")[1]
    ctx.set_offline(True)
    page.locator(f"[data-testid=mark-{second}]").click()
    page.wait_for_selector(f"[data-testid=queued-{second}]")
    assert page.locator("[data-testid=unsent]").is_visible() and "1" in page.locator("[data-testid=unsent]").inner_text()
    page.screenshot(path=str(ARTIFACTS / "first5-grid-offline.png"), full_page=False)
    ctx.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_selector(f"[data-testid=marked-{second}]")
    assert not page.locator("[data-testid=unsent]").is_visible()
    status = dict(_query(demo_site, "SELECT household_id, status FROM directives_reach WHERE household_id IN (?, ?) "
                                    "AND status = 'reached'", int(first), int(second)))
    assert set(status) == {int(first), int(second)}
    page.reload()
    assert page.locator(f"[data-testid=mark-{first}]").count() == 0
    paths = ("/directives/", "/control/today/", "/households/", "/me/")
    for path in paths:
        page.goto(demo_site["url"] + path)
        check_page(page, "grid" + path.replace("/", "-").rstrip("-"), phone=True)
    in_english(page, demo_site, "grid", paths, phone=True)
    ctx.close()


def test_a_resident_link_and_a_mistyped_one(browser, demo_site):
    from bihuan.control.links import person_path

    (case_id,) = _query(demo_site, "SELECT id FROM control_controlcase WHERE state = 'active' ORDER BY id LIMIT 1")[0]
    ctx = _context(browser, phone=True)
    page = ctx.new_page()
    page.goto(demo_site["url"] + person_path(case_id))
    check_page(page, "resident-link", phone=True)
    response = page.goto(demo_site["url"] + "/p/not-a-token/")
    assert response.status == 404
    assert page.locator("[data-testid=not-found]").is_visible() and "URLconf" not in page.content()
    check_page(page, "not-found", phone=True)
    ctx.close()


def test_bihuan_demo_stops_its_server_and_worker_on_sigterm(demo_site):
    """Last in the module: SIGTERM to ``bihuan demo`` ends gunicorn and the worker with it."""
    proc = demo_site["proc"]
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 2
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    time.sleep(0.5)
    alive = [pid for pid in children if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
    assert alive == []
