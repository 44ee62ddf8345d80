"""The Content-Security-Policy holds on every main page: each login of the district (and a resident without one)
opens its pages in chromium, and the browser reports no violation — no inline script, no inline style, nothing
from elsewhere. Violations are caught twice: the page's ``securitypolicyviolation`` events and the console's
"Refused to …" messages."""

import pytest

from bihuan.core.worker import run_tick
from bihuan.directives import links
from bihuan.directives.actions import do_issue_directive
from bihuan.directives.models import Reach
from bihuan.testing import PASSWORD

from .conftest import DESKTOP, PHONE, login

pytestmark = pytest.mark.browser

LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber
                    + ' ' + (e.sample || ''));
});
"""

# the pages every staff member reaches from the header and the tab bar, and the other main pages by role
PAGES = ["/", "/households/", "/residents/", "/directives/", "/inbox/", "/me/", "/password/", "/control/dashboard/",
         "/inspections/", "/inspections/ranking/", "/forces/", "/notify/settings/"]
BY_ROLE = {
    "commander": ["/today/board/", "/today/wall/", "/pushes/", "/pushes/dashboard/", "/pushes/report/", "/audit/",
                  "/pushes/policy/", "/control/cases/", "/checkpoints/", "/checkpoints/report/", "/import/",
                  "/directives/new/", "/forces/helpers/", "/forces/places/"],
    "office": ["/pushes/", "/pushes/report/"],
    "department": [],
    "township_a": ["/pushes/", "/pushes/dashboard/", "/checkpoints/", "/checkpoints/campaigns/"],
    "community_a": ["/control/today/", "/pushes/"],
    "property_a": [],
    "grid_a": ["/control/today/"],
}


def _watch(page, seen: list):
    page.on("console", lambda m: seen.append(m.text) if "Refused to" in m.text or "Content Security" in m.text
            else None)


def _visit(page, url: str, seen: list, problems: list, who: str):
    # a violation by the document (inline script or style, a foreign source) is reported while it is parsed,
    # so "load" is enough; no page loads fragments on load (HTMX fragments come on input or polling)
    response = page.goto(url, wait_until="load")
    events = page.evaluate("window.__csp || []")
    if response is not None and response.status >= 500:
        problems.append(f"{who} {url}: {response.status}")
    for text in events + seen:
        problems.append(f"{who} {url}: {text}")
    seen.clear()


def test_no_page_of_any_login_breaks_the_content_security_policy(browser, live_server, live_district, shot):
    d = live_district
    directive = do_issue_directive(acting_user=d.users["commander"], title="全员核酸检测通知", body="今日完成。")
    run_tick()
    base = live_server.url
    problems: list[str] = []
    for username, extra in BY_ROLE.items():
        context = browser.new_context(viewport=DESKTOP if username in ("commander", "office") else PHONE,
                                      locale="zh-CN")
        context.add_init_script(LISTEN)
        page = context.new_page()
        seen: list[str] = []
        _watch(page, seen)
        login(page, base, username, PASSWORD)
        if username == "commander":
            # the watch itself works: an inline style set on the page is refused and reported
            page.evaluate("document.body.setAttribute('style', 'color: red')")
            page.wait_for_timeout(200)
            assert page.evaluate("window.__csp.length") >= 1
            page.evaluate("window.__csp = []")
            seen.clear()
        pages = PAGES + extra + [f"/directives/{directive.pk}/", f"/units/{d.users[username].staff.unit_id}/"]
        if username == "grid_a":
            pages.append(f"/directives/{directive.pk}/qr/?unit={d.grid_a.id}")
        for url in pages:
            _visit(page, base + url, seen, problems, username)
        # the language switch (a form) and a page in English
        page.goto(base + "/")
        with page.expect_navigation(wait_until="load"):
            page.click("[data-testid=lang-en]")
        _visit(page, base + "/directives/", seen, problems, username)
        if username == "commander":
            shot(page, "csp-commander-directives-en")
        context.close()

    # a resident without an account: their link, a tampered link, the self-report and the sign-in page
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    context.add_init_script(LISTEN)
    page = context.new_page()
    seen = []
    _watch(page, seen)
    reach = Reach.objects.filter(directive=directive).first()
    public = ["/login/", "/report/", "/r/1-forgedforgedforgedfo/", "/p/1-forgedforgedforgedfo/"]
    if reach is not None:
        public.append(links.confirm_path(reach.pk))
    for url in public:
        _visit(page, base + url, seen, problems, "resident")
    shot(page, "csp-resident-link")
    context.close()
    assert not problems, "\n".join(problems)
