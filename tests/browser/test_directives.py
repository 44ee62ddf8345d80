"""The closed loop in a browser: the commander issues a directive on a desktop, a grid worker marks households on
a phone (one tap, a whole building, one undo), a resident confirms through their link with no login, and the
commander's tree shows the change."""

import pytest

from bihuan.directives import links
from bihuan.directives.models import Directive, Reach, ReachStatus
from bihuan.testing import PASSWORD, create_household

from .conftest import ARTIFACTS, DESKTOP, PHONE, login

pytestmark = pytest.mark.browser


def fits_phone(page):
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_directive_reaches_households_through_grid_marks_and_a_resident_link(browser, live_server, live_district,
                                                                              shot):
    d = live_district
    b3 = [create_household(d.grid_a, f"锦悦小区3号楼1单元{r}", building="3", entrance="1", room=str(r))
          for r in (101, 102, 201)]
    b5 = [create_household(d.grid_a, f"锦悦小区5号楼2单元{r}", building="5", entrance="2", room=str(r))
          for r in (501, 502)]

    # The commander issues a directive on a desktop.
    desk = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    cp = desk.new_page()
    login(cp, live_server.url, "commander", PASSWORD)
    cp.click("[data-testid=nav-directives]")
    cp.click("[data-testid=new-directive]")
    cp.fill("input[name=title]", "关于开展全员核酸检测的紧急通知")
    cp.fill("textarea[name=body]", "请各级于 30 分钟内签收，24 小时内通知到每一户。检测时间：明日 7:00–12:00，地点：各小区广场。")
    cp.check("input[name=urgency][value=urgent]")
    # the feedback form, one row per item (no syntax to learn)
    cp.fill("input[name=fb_label_0]", "核酸检测人数")
    cp.fill("input[name=fb_label_1]", "是否封闭管理")
    cp.select_option("select[name=fb_type_1]", "bool")
    shot(cp, "directive-issue-desktop")
    cp.click("[data-testid=issue]")
    cp.wait_for_load_state("networkidle")
    directive = Directive.objects.get(title="关于开展全员核酸检测的紧急通知")
    assert cp.locator("[data-testid=kpi-reached]").inner_text() == "0 / 7"
    assert "紧急" in cp.locator("[data-testid=directive-title]").inner_text()

    # A grid worker on a phone: their list, sign, then mark households.
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                locale="zh-CN")
    gp = phone.new_page()
    login(gp, live_server.url, "grid_a", PASSWORD)
    gp.goto(f"{live_server.url}/directives/")
    card = gp.locator(f"[data-testid=directive-{directive.pk}]")
    assert "待签收" in card.inner_text()
    assert fits_phone(gp)
    shot(gp, "directive-list-phone")
    card.locator("[data-testid=sign]").click()
    card.locator("text=已签收").wait_for()
    card.locator(f"[data-testid=mark-{directive.pk}]").click()
    gp.wait_for_load_state("networkidle")
    assert gp.locator("[data-testid=sum-pending]").inner_text() == "6"
    assert fits_phone(gp)
    shot(gp, "directive-mark-phone-before")

    # One tap on one household of building 5.
    row = gp.locator(f"#hh-{b5[0].id}")
    row.locator("[data-testid=tap-phone]").tap()
    row.locator("[data-testid=undo]").wait_for()
    assert "电话" in gp.locator(f"#hh-{b5[0].id} [data-testid=row-status]").inner_text()
    assert gp.locator("[data-testid=sum-reached]").inner_text() == "1"

    # The whole of building 3, then one undo.
    # the way they were told is chosen on purpose (no default): without it nothing is sent
    gp.locator("[data-testid=bulk-b-3]").tap()
    assert gp.locator("#grp-b-3 [data-testid=undo]").count() == 0
    gp.select_option("[data-testid=bulk-method-b-3]", "wechat")
    gp.once("dialog", lambda dialog: dialog.accept())
    gp.locator("[data-testid=bulk-b-3]").tap()
    gp.locator(f"#hh-{b3[1].id} [data-testid=undo]").wait_for()
    assert gp.locator("#grp-b-3 [data-testid=undo]").count() == 4
    assert gp.locator("[data-testid=sum-reached]").inner_text() == "5"
    gp.locator(f"#hh-{b3[1].id} [data-testid=undo]").tap()
    gp.locator(f"#hh-{b3[1].id} [data-testid=tap-phone]").wait_for()
    assert gp.locator("[data-testid=sum-reached]").inner_text() == "4"
    assert fits_phone(gp)
    shot(gp, "directive-mark-phone-after")

    # An unreachable household needs a reason.
    row = gp.locator(f"#hh-{b3[1].id}")
    row.locator("[data-testid=unreachable-open]").tap()
    row.locator("[data-testid=reason]").fill("长期在外地工作")
    row.locator("[data-testid=unreachable-save]").tap()
    gp.locator(f"#hh-{b3[1].id} [data-testid=undo]").wait_for()
    assert "长期在外地工作" in gp.locator(f"#hh-{b3[1].id}").inner_text()
    assert gp.locator("[data-testid=sum-unreachable]").inner_text() == "1"

    # The printable QR sheet of building 5.
    qr = phone.new_page()
    qr.set_viewport_size(DESKTOP)
    qr.goto(f"{live_server.url}/directives/{directive.pk}/qr/?unit={d.grid_a.id}&building=5")
    assert qr.locator("[data-testid=qr-card]").count() == 2
    shot(qr, "directive-qr-sheet")
    qr.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    qr.emulate_media(media="print")
    shot(qr, "directive-qr-sheet-print")
    qr.close()
    phone.close()

    # A resident opens their link on a phone, with no login, and confirms.
    reach = Reach.objects.get(directive=directive, household=b5[1])
    resident = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                   locale="zh-CN")
    rp = resident.new_page()
    rp.goto(live_server.url + links.confirm_path(reach.pk))
    assert rp.locator("[data-testid=confirm-address]").inner_text() == b5[1].address
    assert fits_phone(rp)
    shot(rp, "directive-confirm-phone-before")
    rp.locator("[data-testid=confirm-button]").tap()
    rp.locator("[data-testid=confirmed]").wait_for()
    assert fits_phone(rp)
    shot(rp, "directive-confirm-phone-after")
    rp.goto(f"{live_server.url}/r/{reach.pk}-forgedforgedforgedfo/")
    assert 'data-testid="not-found"' in rp.content()  # the friendly 404 page
    resident.close()
    reach.refresh_from_db()
    assert reach.status == ReachStatus.REACHED and reach.method == "self"

    # The commander's view of the tree shows the change, down to the grid.
    cp.reload()
    cp.wait_for_load_state("networkidle")
    assert cp.locator("[data-testid=kpi-reached]").inner_text() == "5 / 7"
    cp.locator("#coverage-chart[data-ready='1']").wait_for()
    shot(cp, "directive-detail-desktop")
    for unit in (d.office, d.township_a, d.community_a, d.compound_a):
        cp.click(f"[data-testid=child-{unit.id}] a")
        cp.wait_for_load_state("networkidle")
    assert cp.locator(f"[data-testid=child-reached-{d.grid_a.id}]").inner_text() == "5 / 6"
    cp.click(f"[data-testid=child-{d.grid_a.id}] a")
    cp.wait_for_load_state("networkidle")
    households = cp.locator("[data-testid=households]").inner_text()
    assert "居民自行确认" in households and "长期在外地工作" in households
    shot(cp, "directive-grid-desktop")
    desk.close()


def test_commander_detail_fits_a_phone(browser, live_server, live_district, shot):
    from bihuan.directives.actions import do_issue_directive

    d = live_district
    directive = do_issue_directive(title="独居老人走访", body="请逐户走访独居老人，了解生活需求。",
                                   acting_user=d.users["commander"], urgency="extra_urgent", is_exercise=True,
                                   feedback_form=[{"key": "visited", "label": "已走访", "type": "number"}])
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                locale="zh-CN")
    page = phone.new_page()
    login(page, live_server.url, "commander", PASSWORD)
    page.goto(f"{live_server.url}/directives/{directive.pk}/?unit={d.office.id}")
    page.locator("#coverage-chart[data-ready='1']").wait_for()
    assert fits_phone(page)
    shot(page, "directive-detail-phone")
    page.screenshot(path=str(ARTIFACTS / "directive-detail-phone-top.png"))  # the first screen, full size
    page.locator("[data-testid=children]").screenshot(path=str(ARTIFACTS / "directive-detail-phone-children.png"))
    page.goto(f"{live_server.url}/directives/new/")
    assert fits_phone(page)
    shot(page, "directive-issue-phone")
    phone.close()
