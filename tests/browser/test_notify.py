"""A community admin on a phone chooses quiet hours, adds the community's WeCom group robot, sends a test
message and watches it arrive; an inspector reads the audit log on a desktop."""

import pytest

from bihuan.notify.models import Preference, Robot
from bihuan.notify.tasks import deliver
from bihuan.notify.testing import Endpoints
from bihuan.testing import PASSWORD

from .conftest import DESKTOP, PHONE, login

pytestmark = pytest.mark.browser


@pytest.fixture
def wecom():
    server = Endpoints()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_community_admin_sets_quiet_hours_adds_a_robot_and_sees_the_test_message_arrive(
        browser, live_server, live_district, wecom, shot):
    d = live_district
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    page = context.new_page()
    login(page, live_server.url, "community_a", PASSWORD)
    page.click("[data-testid=preferences-link]")
    page.wait_for_load_state("networkidle")
    page.uncheck("input[name=sms]")
    page.fill("input[name=quiet_start]", "22:00")
    page.fill("input[name=quiet_end]", "07:00")
    page.click("[data-testid=save-preferences]")
    page.wait_for_load_state("networkidle")
    assert "通知设置已保存" in page.content()
    p = Preference.objects.get(user=d.users["community_a"])
    assert (p.sms, f"{p.quiet_start:%H:%M}", f"{p.quiet_end:%H:%M}") == (False, "22:00", "07:00")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "notify-preferences-phone-zh")

    page.click("[data-testid=robots-link]")
    page.wait_for_load_state("networkidle")
    page.select_option("select[name=kind]", "wecom")
    page.fill("input[name=name]", "鼓楼社区工作群")
    page.fill("input[name=webhook_url]", wecom.url("/wecom?key=robot-key"))
    page.check("input[name=events][value='directive.issued']")
    page.click("[data-testid=add-robot]")
    page.wait_for_load_state("networkidle")
    robot = Robot.objects.get(name="鼓楼社区工作群")
    assert "robot-key" not in page.content()
    assert "新指令下发" in page.locator(f"[data-testid=robot-{robot.pk}]").inner_text()

    page.click(f"[data-testid=robot-test-{robot.pk}]")
    page.wait_for_selector(f"[data-testid=test-state-{robot.pk}] [data-state=pending]")
    assert deliver("w1") == 1  # a worker round
    page.wait_for_selector(f"[data-testid=test-state-{robot.pk}] [data-state=sent]", timeout=10_000)
    [request] = wecom.to("/wecom")
    assert "测试消息" in request["json"]["markdown"]["content"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "notify-robots-phone-zh")
    context.close()


def test_the_commander_reads_and_filters_the_audit_log(browser, live_server, live_district, shot):
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()
    login(page, live_server.url, "commander", PASSWORD)
    page.click("[data-testid=nav-audit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-testid=audit-row]").count() > 10  # the base district's creation
    page.fill("input[name=action]", "staff.")
    page.click("[data-testid=audit-search]")
    page.wait_for_load_state("networkidle")
    actions = page.locator("[data-testid=audit-rows] code").all_inner_texts()
    assert actions and set(actions) == {"staff.create"}
    shot(page, "audit-log-desktop-zh")
    context.close()
