"""Going live in a browser: a register imported with no staff and a 人员 sheet; the community's leader signs in
with the first password (and must change it), appoints a grid person on the staff page and adds the community's
WeCom group robot; the commander issues an urgent directive on the page; the worker tells everyone at once
(inbox, SMS gateway, the robot's group); the grid worker, on a phone, finds it in the inbox, signs, reaches the
households and reports; the commander's page shows every household reached."""

import pytest
from django.core.management import call_command

from bihuan.core.worker import run_tick
from bihuan.directives.models import RECEIPT, Directive
from bihuan.loops.models import Loop, LoopState
from bihuan.register.models import Unit
from bihuan.register.tests.helpers import HOUSEHOLDS, STAFF, UNITS, write
from bihuan.register.workbook import HOUSEHOLD_COLUMNS, STAFF_COLUMNS, UNIT_COLUMNS, import_workbook

from .conftest import DESKTOP, PHONE, login

pytestmark = pytest.mark.browser
TITLE = "关于立即开展全员核酸检测的紧急通知"


def first_login(page, base_url: str, username: str, password: str) -> None:
    login(page, base_url, username, password)
    page.locator("[data-testid=forced]").wait_for()  # a first password must be changed before anything else
    page.fill("[data-testid=old]", password)
    page.fill("[data-testid=new]", f"{username}-Changed-2022")
    page.fill("input[name=new_password2]", f"{username}-Changed-2022")
    page.click("[data-testid=change]")
    page.wait_for_load_state("networkidle")


def fits_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_district_goes_live_and_its_first_directive_reaches_every_household(
        browser, live_server, transactional_db, tmp_path, shot, notify_env, endpoints):
    from openpyxl import load_workbook

    result = import_workbook(write(tmp_path / "register.xlsx", {"单位": (UNIT_COLUMNS, UNITS),
                                                                 "户": (HOUSEHOLD_COLUMNS, HOUSEHOLDS)}),
                             acting_user=None)
    assert result.ok, result.errors
    call_command("import_staff", write(tmp_path / "staff.xlsx", {"人员": (STAFF_COLUMNS, STAFF)}), "--system",
                 "--logins", str(tmp_path / "logins.xlsx"))
    first = {r[0]: r[1] for r in load_workbook(tmp_path / "logins.xlsx").active.iter_rows(min_row=2, values_only=True)
             if r[0]}
    base = live_server.url
    community = Unit.objects.get(code="141002010101")
    grid2 = Unit.objects.get(code="1410020101010102")

    # The community's leader: first password, then a grid person appointed on the staff page, then the robot.
    desk = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    cp = desk.new_page()
    first_login(cp, base, "shequ", first["shequ"])
    cp.goto(f"{base}/units/{grid2.id}/staff/new/")
    cp.fill("[data-testid=username]", "zhou")
    cp.fill("[data-testid=name]", "周网格")
    cp.fill("[data-testid=phone]", "13700000009")
    cp.select_option("[data-testid=role]", "grid_worker")
    shot(cp, "going-live-appoint-desktop")
    cp.click("[data-testid=save]")
    cp.locator("[data-testid=first-password]").wait_for()
    zhou_password = cp.locator("[data-testid=password]").inner_text().strip()
    shot(cp, "going-live-appointed-desktop")
    cp.goto(f"{base}/notify/robots/?unit={community.id}")
    cp.select_option("select[name=kind]", "wecom")
    cp.fill("input[name=name]", "鼓楼社区防控群")
    cp.fill("input[name=webhook_url]", endpoints.url("/wecom?key=robot-key"))
    cp.click("[data-testid=add-robot]")
    cp.wait_for_load_state("networkidle")
    assert "鼓楼社区防控群" in cp.locator("[data-testid=robots]").inner_text()
    assert "robot-key" not in cp.content()  # the webhook's key is sealed, never shown again
    desk.close()

    # The commander issues an urgent directive on the page.
    desk = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    cp = desk.new_page()
    first_login(cp, base, "zhihui", first["zhihui"])
    cp.goto(f"{base}/directives/new/")
    cp.fill("input[name=title]", TITLE)
    cp.fill("textarea[name=body]", "请各级于 30 分钟内签收，今日内通知到每一户。")
    cp.check("input[name=urgency][value=extra_urgent]")
    cp.click("details.fb-text summary")  # 更多反馈项: items with codes of one's own, as a text box
    cp.fill("textarea[name=feedback_form]", "tested*|核酸检测人数|number")
    cp.click("[data-testid=issue]")
    cp.wait_for_load_state("networkidle")
    directive = Directive.objects.get(title=TITLE)
    for _ in range(3):
        run_tick("browser-going-live")  # the worker: notices, then delivery on every channel
    assert any(TITLE in r["json"]["markdown"]["content"] for r in endpoints.to("/wecom"))
    assert "13700000009" in {r["json"]["phone"] for r in endpoints.to("/sms") if TITLE in r["json"]["text"]}

    # The new grid worker, on a phone: the inbox says it, one tap signs, a tap per household, the report.
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                locale="zh-CN")
    gp = phone.new_page()
    first_login(gp, base, "zhou", zhou_password)
    gp.goto(f"{base}/inbox/")
    assert TITLE in gp.content()
    assert fits_phone(gp)
    shot(gp, "going-live-inbox-phone")
    gp.goto(f"{base}/directives/")
    card = gp.locator(f"[data-testid=directive-{directive.pk}]")
    card.locator("[data-testid=sign]").click()
    card.locator("text=已签收").wait_for()
    card.locator(f"[data-testid=mark-{directive.pk}]").click()
    gp.wait_for_load_state("networkidle")
    for household in grid2.households.all():
        gp.locator(f"#hh-{household.id} [data-testid=tap-phone]").tap()
        gp.locator(f"#hh-{household.id} [data-testid=undo]").wait_for()
    assert gp.locator("[data-testid=sum-reached]").inner_text() == "2"
    shot(gp, "going-live-marked-phone")
    gp.goto(f"{base}/directives/{directive.pk}/")
    gp.click("[data-testid=report]")
    gp.fill("input[name=a_tested]", "5")
    gp.click("[data-testid=report-submit]")
    gp.wait_for_load_state("networkidle")
    assert "已反馈" in gp.content()  # back on the directive's page, with the report sent
    assert Loop.objects.get(kind=RECEIPT, subject_id=directive.pk, owner_unit=grid2).state == LoopState.REPORTED
    assert fits_phone(gp)
    shot(gp, "going-live-reported-phone")
    phone.close()

    cp.goto(f"{base}/directives/{directive.pk}/?unit={grid2.id}")
    assert cp.locator("[data-testid=kpi-reached]").inner_text() == "2 / 2"
    shot(cp, "going-live-commander-desktop")
    desk.close()
