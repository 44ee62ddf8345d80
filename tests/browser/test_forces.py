"""The field force in a browser, on phones: a volunteer scans the community's poster link and reports in with no
account, the community approves and puts them on a shift, the volunteer taps on and off duty and logs a
disinfection job with a photo."""

import pytest
from django.utils import timezone

from bihuan.forces.models import DisinfectionLog, Helper, HelperStatus, Place, Post, Shift
from bihuan.testing import PASSWORD

from .conftest import PHONE, login

pytestmark = pytest.mark.browser


def phone_context(browser):
    return browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN")


def fits_phone(page):
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_volunteer_reports_in_is_approved_goes_on_duty_and_logs_disinfection(browser, live_server, live_district,
                                                                                shot, settings, tmp_path):
    from PIL import Image

    settings.MEDIA_ROOT = tmp_path
    settings.PUBLIC_URL = live_server.url  # the poster's QR names the public address
    d = live_district
    photo = tmp_path / "job.jpg"
    Image.new("RGB", (320, 240), (30, 120, 200)).save(photo, "JPEG")

    staff = phone_context(browser).new_page()
    login(staff, live_server.url, "community_a", PASSWORD)
    # The community adds the compound's gate post and a disinfection place on its phone (htmx forms).
    staff.goto(f"{live_server.url}/forces/posts/?unit={d.community_a.pk}")
    staff.get_by_test_id("post-new").click()
    staff.locator("#posts select[name=unit]").select_option(str(d.compound_a.pk))
    staff.get_by_test_id("post-name").fill("锦悦小区大门")
    staff.get_by_test_id("post-kind").select_option("gate")
    staff.get_by_test_id("post-submit").click()
    staff.locator("#posts .messages").wait_for()
    assert "已添加岗位" in staff.locator("#posts .messages").inner_text()
    assert fits_phone(staff)
    shot(staff, "forces-posts")
    post = Post.objects.get(name="锦悦小区大门")
    assert post.unit_id == d.compound_a.pk and (post.start_hour, post.end_hour, post.required) == (0, 24, 1)
    staff.goto(f"{live_server.url}/forces/places/?unit={d.community_a.pk}")
    staff.get_by_test_id("place-new").click()
    staff.locator("#places select[name=unit]").select_option(str(d.compound_a.pk))
    staff.get_by_test_id("place-name").fill("锦悦小区垃圾收集点")
    staff.get_by_test_id("place-kind").select_option("garbage")
    staff.get_by_test_id("place-submit").click()
    staff.locator("#places .messages").wait_for()
    assert Place.objects.filter(name="锦悦小区垃圾收集点", unit=d.compound_a).exists()
    staff.goto(f"{live_server.url}/forces/units/{d.community_a.pk}/poster/")
    join_url = staff.get_by_test_id("join-url").inner_text().strip()
    shot(staff, "forces-poster")

    volunteer = phone_context(browser).new_page()
    volunteer.goto(join_url)
    volunteer.get_by_test_id("name").fill("孙晓燕")
    volunteer.get_by_test_id("phone").fill("13912340001")
    volunteer.get_by_test_id("kind").select_option("youth")
    assert fits_phone(volunteer)
    shot(volunteer, "forces-join")
    volunteer.get_by_test_id("join-submit").click()
    volunteer.wait_for_load_state("networkidle")
    assert "报到已提交" in volunteer.get_by_test_id("receipt").inner_text()
    my_page = volunteer.url.split("?")[0]
    shot(volunteer, "forces-receipt")
    helper = Helper.objects.get(name="孙晓燕")
    assert helper.status == HelperStatus.PENDING

    staff.goto(f"{live_server.url}/forces/?unit={d.community_a.pk}")
    staff.get_by_test_id(f"approve-{helper.pk}").click()
    staff.wait_for_load_state("networkidle")
    helper.refresh_from_db()
    assert helper.status == HelperStatus.ACTIVE
    staff.goto(f"{live_server.url}/forces/posts/{post.pk}/")
    now = timezone.localtime()
    staff.get_by_test_id("assign-date").fill(now.date().isoformat())
    staff.get_by_test_id("assign-start").fill(str(now.hour))
    staff.get_by_test_id("assign-end").fill(str(min(now.hour + 2, 24)))
    staff.get_by_test_id("assign-helper").select_option(str(helper.pk))
    staff.get_by_test_id("assign-submit").click()
    staff.wait_for_load_state("networkidle")
    shot(staff, "forces-roster")
    shift = Shift.objects.get(helper=helper)

    volunteer.goto(my_page)
    volunteer.get_by_test_id("on-duty").click()
    volunteer.wait_for_load_state("networkidle")
    assert "已上岗" in volunteer.locator(".messages").inner_text()
    shot(volunteer, "forces-on-duty")
    volunteer.get_by_test_id("off-duty").click()
    volunteer.wait_for_load_state("networkidle")
    shift.refresh_from_db()
    assert shift.on_at and shift.off_at and shift.off_at >= shift.on_at

    volunteer.get_by_test_id("agent").fill("含氯消毒液")
    volunteer.get_by_test_id("concentration").fill("500mg/L")
    volunteer.get_by_test_id("area").fill("120")
    volunteer.get_by_test_id("photo").set_input_files(str(photo))
    volunteer.get_by_test_id("log-submit").click()
    volunteer.wait_for_load_state("networkidle")
    assert "消杀记录已保存" in volunteer.locator(".messages").inner_text()
    assert fits_phone(volunteer)
    shot(volunteer, "forces-disinfection")
    log = DisinfectionLog.objects.get()
    assert log.done_by == "孙晓燕" and log.area_m2 == 120 and log.photo.name.endswith(".jpg")
    assert (tmp_path / log.photo.name).exists()


def test_a_team_gets_a_task_with_targets_and_a_shift_swap_goes_request_accept_approve(browser, live_server,
                                                                                     live_district, shot):
    import datetime as dt

    from bihuan.forces import links
    from bihuan.forces.actions import (
        do_assign_shift,
        do_create_place,
        do_create_post,
        do_decide_report_in,
        do_report_in,
    )
    from bihuan.forces.models import ShiftSwap, SwapState, Task

    d = live_district
    people = []
    for name, phone in (("周卫国", "13912340011"), ("吴建军", "13912340012")):
        h, _ = do_report_in(d.community_a, name=name, phone=phone, kind="veteran")
        people.append(do_decide_report_in(h, approve=True, acting_user=None))
    zhou, wu = people
    post = do_create_post(d.compound_a, name="锦悦小区大门", kind="gate", acting_user=None)
    place = do_create_place(d.compound_a, name="3号楼电梯", kind="lift", acting_user=None)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    shift = do_assign_shift(post, helper=zhou, starts_at=start, ends_at=start + dt.timedelta(hours=4), acting_user=None)

    staff = phone_context(browser).new_page()
    login(staff, live_server.url, "community_a", PASSWORD)
    staff.goto(f"{live_server.url}/forces/teams/?unit={d.community_a.pk}")
    staff.get_by_test_id("team-new").click()
    staff.get_by_test_id("team-name").fill("橄榄绿志愿服务队")
    staff.get_by_test_id("team-leader").select_option(str(zhou.pk))
    staff.get_by_test_id(f"member-{wu.pk}").check()
    staff.get_by_test_id("team-submit").click()
    staff.locator("#teams .messages").wait_for()
    assert fits_phone(staff)
    shot(staff, "forces-teams")
    staff.goto(f"{live_server.url}/forces/tasks/?unit={d.compound_a.pk}")
    staff.get_by_test_id("task-new").click()
    staff.get_by_test_id("task-kind").select_option("disinfection")
    staff.get_by_test_id("task-title").fill("3号楼电梯加密消杀")
    staff.get_by_test_id("task-due").fill((timezone.localtime() + dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M"))
    staff.get_by_test_id("task-helper").select_option(str(wu.pk))
    staff.get_by_test_id(f"task-place-{place.pk}").check()
    staff.get_by_test_id(f"task-household-{d.household_a.pk}").check()
    staff.get_by_test_id("task-submit").click()
    staff.locator("#tasks .messages").wait_for()
    assert fits_phone(staff)
    shot(staff, "forces-tasks")
    task = Task.objects.get()
    assert task.places == [place.pk] and task.households == [d.household_a.pk]

    holder = phone_context(browser).new_page()
    holder.goto(live_server.url + links.helper_path(zhou.pk))
    holder.get_by_test_id(f"swap-open-{shift.pk}").click()
    holder.get_by_test_id(f"swap-to-{shift.pk}").select_option(str(wu.pk))
    holder.get_by_test_id(f"swap-ask-{shift.pk}").click()
    holder.wait_for_load_state("networkidle")
    assert "换班申请已发给 吴建军" in holder.locator(".messages").inner_text()
    swap = ShiftSwap.objects.get()

    other = phone_context(browser).new_page()
    other.goto(live_server.url + links.helper_path(wu.pk))
    assert "3号楼电梯" in other.get_by_test_id(f"task-places-{task.pk}").inner_text()
    assert d.household_a.address in other.get_by_test_id(f"task-households-{task.pk}").inner_text()
    assert fits_phone(other)
    shot(other, "forces-my-duty-swap")
    other.get_by_test_id(f"swap-yes-{swap.pk}").click()
    other.wait_for_load_state("networkidle")
    assert "等待社区审批" in other.locator(".messages").inner_text()

    staff.goto(f"{live_server.url}/forces/?unit={d.community_a.pk}")
    staff.get_by_test_id(f"swap-approve-{swap.pk}").click()
    staff.wait_for_load_state("networkidle")
    swap.refresh_from_db()
    shift.refresh_from_db()
    assert swap.state == SwapState.APPROVED and shift.helper_id == wu.pk
    shot(staff, "forces-swap-approved")
