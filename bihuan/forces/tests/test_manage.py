"""Staff form teams, add posts and disinfection places and give tasks through the pages and the API, each only in
their own part of the district; shift swaps run request → accept → approve and tell the people who must act; the
group QR image of a compound or grid is checked and printed on the building sheets; a helper sees what a task
targets."""

import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from bihuan.forces import links, photos
from bihuan.forces.actions import (
    do_assign_shift,
    do_create_place,
    do_create_post,
    do_create_task,
    do_publish_notice,
)
from bihuan.forces.models import GroupCode, Place, Post, Shift, ShiftSwap, SwapState, Task, Team
from bihuan.notify.models import Message
from bihuan.testing import HX

from .helpers import active_helper

B = "/api/v1/forces"


def png(size=(40, 30)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (20, 120, 60)).save(out, "PNG")
    return out.getvalue()


def test_community_staff_form_a_team_add_a_post_and_a_place_and_give_a_task_on_their_pages(client, district):
    d = district
    leader = active_helper(d.community_a, "周卫国", kind="veteran")
    member = active_helper(d.community_a, "吴建军", kind="veteran")
    client.force_login(d.users["community_a"])
    url = reverse("forces:teams") + f"?unit={d.community_a.pk}"
    page = client.post(url, {"unit": d.community_a.pk, "name": "橄榄绿志愿服务队", "purpose": "宣传",
                             "leader": leader.pk, "members": [member.pk]}, **HX)
    assert page.status_code == 200 and "<html" not in page.content.decode()  # the list section, for htmx
    team = Team.objects.get()
    assert "橄榄绿志愿服务队" in page.content.decode() and team.leader == leader
    assert set(team.members.values_list("pk", flat=True)) == {leader.pk, member.pk}
    # Edit: a new name, the member as leader, the old leader out.
    response = client.post(reverse("forces:team", args=[team.pk]), {"name": "橄榄绿服务队", "leader": member.pk,
                                                                    "members": [member.pk]})
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.name == "橄榄绿服务队" and list(team.members.all()) == [member]

    response = client.post(reverse("forces:posts") + f"?unit={d.community_a.pk}", {
        "unit": d.compound_a.pk, "name": "锦悦小区南门", "kind": "gate", "start_hour": "20", "end_hour": "8",
        "required": "2"})
    post = Post.objects.get()
    assert response.status_code == 302 and (post.unit, post.start_hour, post.end_hour, post.required) == (
        d.compound_a, 20, 8, 2)
    client.post(reverse("forces:post_edit", args=[post.pk]), {"name": "锦悦小区南门", "kind": "gate", "start_hour": "0",
                                                              "end_hour": "24", "required": "1", "active": "1"})
    post.refresh_from_db()
    assert (post.start_hour, post.end_hour, post.required, post.active) == (0, 24, 1, True)

    client.post(reverse("forces:places") + f"?unit={d.community_a.pk}", {
        "unit": d.compound_a.pk, "name": "3号楼电梯", "kind": "lift", "every_hours": "12"})
    place = Place.objects.get()
    assert (place.unit, place.every_hours) == (d.compound_a, 12)

    due = (timezone.localtime() + dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M")
    page = client.post(reverse("forces:tasks") + f"?unit={d.compound_a.pk}", {
        "unit": d.compound_a.pk, "kind": "disinfection", "title": "3号楼电梯消杀", "due_at": due, "team": team.pk,
        "places": [place.pk], "households": [d.household_a.pk]}, **HX)
    task = Task.objects.get()
    assert (task.team, task.places, task.households) == (team, [place.pk], [d.household_a.pk])
    detail = client.get(reverse("forces:task", args=[task.pk])).content.decode()
    assert d.household_a.address in detail and "3号楼电梯" in detail
    # A bad form says why and writes nothing.
    page = client.post(reverse("forces:posts") + f"?unit={d.community_a.pk}", {
        "unit": d.community_a.pk, "name": "", "kind": "gate"}, **HX).content.decode()
    assert "请填写岗位名称" in page and Post.objects.count() == 1


def test_an_outsider_unit_can_neither_create_in_another_subtree_nor_use_its_people(client, district, as_user):
    d = district
    helper = active_helper(d.community_a, "周卫国")
    mine = active_helper(d.village_b, "赵铁柱")
    client.force_login(d.users["village_b"])
    # Branch A's unit, by the page's unit or by the form's.
    assert client.post(reverse("forces:teams") + f"?unit={d.community_a.pk}", {"name": "队"}).status_code == 404
    assert client.post(reverse("forces:posts") + f"?unit={d.village_b.pk}", {
        "unit": d.compound_a.pk, "name": "门岗", "kind": "gate"}).status_code == 404
    assert client.post(reverse("forces:teams") + f"?unit={d.village_b.pk}", {
        "unit": d.village_b.pk, "name": "东羊村服务队", "members": [helper.pk]}).status_code == 404
    assert client.get(reverse("forces:teams") + f"?unit={d.community_a.pk}").status_code == 404
    # The same through the API.
    assert as_user("village_b", "POST", f"{B}/teams", {"unit": d.community_a.pk, "name": "队"}).status_code == 404
    assert as_user("village_b", "POST", f"{B}/teams", {"unit": d.village_b.pk, "name": "队",
                                                       "member_ids": [helper.pk]}).status_code == 404
    assert as_user("village_b", "POST", f"{B}/places", {"unit": d.compound_a.pk, "name": "电梯",
                                                        "kind": "lift"}).status_code == 404
    due = (timezone.now() + dt.timedelta(hours=2)).isoformat()
    refused = as_user("village_b", "POST", f"{B}/tasks", {"unit": d.village_b.pk, "kind": "visit", "title": "走访",
                                                          "helper_id": mine.pk, "due_at": due,
                                                          "household_ids": [d.household_a.pk]})
    assert refused.status_code == 409 and "住户不在本单位范围内" in refused.json()["detail"]
    # A grid worker (no manage_staff) may look but not create.
    assert as_user("grid_a", "POST", f"{B}/posts", {"unit": d.grid_a.pk, "name": "门", "kind": "gate"}).status_code == 403
    assert not Team.objects.exists() and not Post.objects.exists() and not Place.objects.exists()
    assert not Task.objects.exists()
    # And what they make in their own branch, branch A does not see.
    made = as_user("village_b", "POST", f"{B}/teams", {"unit": d.village_b.pk, "name": "东羊村服务队",
                                                       "leader_id": mine.pk})
    assert made.status_code == 201
    assert as_user("community_a", "GET", f"{B}/teams/{made.json()['id']}").status_code == 404
    assert as_user("township_b", "GET", f"{B}/teams/{made.json()['id']}").status_code == 200


def _login_helper(helper, username):
    helper.user = get_user_model().objects.create_user(username, password="x")
    helper.save(update_fields=["user"])
    return helper


def test_a_shift_swap_is_requested_accepted_and_approved_and_each_step_tells_who_must_act(client, district):
    d = district
    holder = _login_helper(active_helper(d.community_a, "周卫国"), "h_zhou")
    other = _login_helper(active_helper(d.community_a, "吴建军"), "h_wu")
    post = do_create_post(d.compound_a, name="锦悦小区大门", kind="gate", acting_user=None)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    shift = do_assign_shift(post, helper=holder, starts_at=start, ends_at=start + dt.timedelta(hours=4),
                            acting_user=None)
    mine = links.helper_path(holder.pk)
    page = client.get(mine).content.decode()
    assert f'data-testid="swap-ask-{shift.pk}"' in page and "吴建军" in page
    client.post(mine, {"action": "swap", "shift": shift.pk, "to_helper": other.pk})
    swap = ShiftSwap.objects.get()
    assert swap.state == SwapState.REQUESTED
    asked = Message.objects.filter(user=other.user, channel="inbox").get()
    assert "请您替班" in asked.body and "锦悦小区大门" in asked.body

    theirs = links.helper_path(other.pk)
    assert f'data-testid="swap-yes-{swap.pk}"' in client.get(theirs).content.decode()
    client.post(theirs, {"action": "swap_yes", "swap": swap.pk})
    swap.refresh_from_db()
    assert swap.state == SwapState.ACCEPTED
    approver = Message.objects.filter(user=d.users["property_a"], subject__contains="换班待审批")
    assert approver.count() == 1  # the post's unit is told at once

    client.force_login(d.users["community_a"])
    home = client.get(reverse("forces:home") + f"?unit={d.community_a.pk}").content.decode()
    assert f'data-testid="swap-approve-{swap.pk}"' in home
    client.post(reverse("forces:swap_decide", args=[swap.pk]), {"approve": "1"})
    swap.refresh_from_db()
    shift.refresh_from_db()
    assert swap.state == SwapState.APPROVED and shift.helper == other
    for person in (holder, other):
        assert Message.objects.filter(user=person.user, subject__contains="换班已批准").count() == 1
    # Deciding again changes nothing and says so.
    again = client.post(reverse("forces:swap_decide", args=[swap.pk]), {"approve": "0"}, follow=True)
    assert "该换班请求已换班" in again.content.decode() and Shift.objects.get().helper == other


def test_a_swap_declined_tells_the_holder_and_one_taken_by_a_clash_is_refused(client, district):
    d = district
    holder = _login_helper(active_helper(d.community_a, "周卫国"), "h_zhou")
    other = active_helper(d.community_a, "吴建军")
    outsider = active_helper(d.village_b, "赵铁柱")
    post = do_create_post(d.compound_a, name="锦悦小区大门", kind="gate", acting_user=None)
    door = do_create_post(d.compound_a, name="3号楼", kind="building", acting_user=None)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    shift = do_assign_shift(post, helper=holder, starts_at=start, ends_at=start + dt.timedelta(hours=4),
                            acting_user=None)
    mine = links.helper_path(holder.pk)
    page = client.post(mine, {"action": "swap", "shift": shift.pk, "to_helper": outsider.pk}).content.decode()
    assert "请选择本社区另一位在岗的志愿者" in page and not ShiftSwap.objects.exists()
    client.post(mine, {"action": "swap", "shift": shift.pk, "to_helper": other.pk})
    client.post(links.helper_path(other.pk), {"action": "swap_no", "swap": ShiftSwap.objects.get().pk})
    assert Message.objects.filter(user=holder.user, body__contains="未接受替班").count() == 1
    # Asked again and accepted, but meanwhile the other person was put on another post at that time.
    client.post(mine, {"action": "swap", "shift": shift.pk, "to_helper": other.pk})
    swap = ShiftSwap.objects.latest("id")
    client.post(links.helper_path(other.pk), {"action": "swap_yes", "swap": swap.pk})
    do_assign_shift(door, helper=other, starts_at=start + dt.timedelta(hours=1), ends_at=start + dt.timedelta(hours=3),
                    acting_user=None)
    client.force_login(d.users["community_a"])
    page = client.post(reverse("forces:swap_decide", args=[swap.pk]), {"approve": "1"}, follow=True).content.decode()
    assert "同一时段已在「3号楼」值班" in page and Shift.objects.get(pk=shift.pk).helper == holder


def test_the_group_qr_image_is_checked_and_printed_on_the_building_sheets(client, district, settings, tmp_path,
                                                                          monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    d = district
    notice = do_publish_notice(d.community_a, title="鼓楼社区核酸检测通知", body="明早八点在广场采样。", acting_user=None)
    client.force_login(d.users["community_a"])
    home = client.get(reverse("forces:home") + f"?unit={d.community_a.pk}").content.decode()
    assert f'data-testid="group-upload-{d.compound_a.pk}"' in home
    url = reverse("forces:group_code", args=[d.compound_a.pk])
    sheets = reverse("forces:notice_sheets", args=[notice.pk]) + f"?unit={d.community_a.pk}"
    for bad in (SimpleUploadedFile("group.png", b"%PDF-1.4 not an image", content_type="image/png"),
                SimpleUploadedFile("group.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", content_type="image/svg+xml"),
                SimpleUploadedFile("group.txt", "群二维码".encode(), content_type="text/plain")):
        page = client.post(url, {"image": bad}, follow=True).content.decode()
        assert "请上传照片（JPEG、PNG、WebP 或 GIF）" in page
    assert "请上传群二维码图片" in client.post(url, {}, follow=True).content.decode()
    monkeypatch.setattr(photos, "MAX_BYTES", 1024)
    big = SimpleUploadedFile("big.png", png((600, 600)) + b"\0" * 2048, content_type="image/png")
    assert "照片不能超过" in client.post(url, {"image": big}, follow=True).content.decode()
    assert not GroupCode.objects.exists() and 'data-testid="group-qr"' not in client.get(sheets).content.decode()
    monkeypatch.setattr(photos, "MAX_BYTES", 8 * 1024 * 1024)

    page = client.post(url, {"image": SimpleUploadedFile("群.png", png(), content_type="image/png"),
                             "next": reverse("forces:home") + f"?unit={d.community_a.pk}"}, follow=True)
    assert "群二维码已上传" in page.content.decode()
    code = GroupCode.objects.get(unit=d.compound_a)
    assert code.image.name.endswith(".png") and (tmp_path / code.image.name).exists()
    sheet = client.get(sheets).content.decode()
    assert f'src="{code.image.url}"' in sheet and "3号楼" in sheet and "扫码加入楼栋群" in sheet
    # A grid's own code, when the building's households are all in that grid, wins over the compound's.
    client.post(reverse("forces:group_code", args=[d.grid_a.pk]),
                {"image": SimpleUploadedFile("g.png", png((50, 50)), content_type="image/png")})
    grid_code = GroupCode.objects.get(unit=d.grid_a)
    assert f'src="{grid_code.image.url}"' in client.get(sheets).content.decode()
    # A grid worker may not upload (manage_staff), an outsider community cannot reach the compound.
    client.force_login(d.users["grid_a"])
    assert client.post(url, {"image": SimpleUploadedFile("g.png", png(), content_type="image/png")}).status_code == 403
    client.force_login(d.users["village_b"])
    assert client.post(url, {"image": SimpleUploadedFile("g.png", png(), content_type="image/png")}).status_code == 404


def test_my_duty_lists_what_a_task_targets_and_takes_its_acknowledgement(client, district):
    d = district
    helper = active_helper(d.community_a, "周卫国")
    place = do_create_place(d.compound_a, name="3号楼电梯", kind="lift", acting_user=None)
    task = do_create_task(d.community_a, kind="visit", title="走访独居老人并送菜", helper=helper,
                          due_at=timezone.now() + dt.timedelta(hours=4), households=[d.household_a.pk],
                          places=[place.pk], acting_user=None)
    page = client.get(links.helper_path(helper.pk)).content.decode()
    assert "走访独居老人并送菜" in page and d.household_a.address in page and "3号楼电梯" in page
    assert f'data-testid="task-households-{task.pk}"' in page
    client.post(links.helper_path(helper.pk), {"action": "ack", "task": task.pk})
    from bihuan.forces.actions import task_loop

    assert task_loop(task).state == "acknowledged"
    assert f'data-testid="task-ack-{task.pk}"' not in client.get(links.helper_path(helper.pk)).content.decode()


@pytest.mark.parametrize("field", ["name", "kind", "every_hours"])
def test_a_place_edit_with_bad_input_changes_nothing(client, district, field):
    d = district
    place = do_create_place(d.compound_a, name="3号楼电梯", kind="lift", every_hours=12, acting_user=None)
    data = {"name": "电梯", "kind": "lift", "every_hours": "24", "active": "1"}
    data[field] = {"name": "", "kind": "rocket", "every_hours": "0"}[field]
    client.force_login(d.users["community_a"])
    response = client.post(reverse("forces:place_edit", args=[place.pk]), data)
    assert response.status_code in (302, 404)
    place.refresh_from_db()
    assert (place.name, place.kind, place.every_hours) == ("3号楼电梯", "lift", 12)


def test_the_new_list_pages_cost_the_same_queries_for_two_rows_as_for_eight(client, district):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bihuan.forces.actions import do_create_team

    d = district
    client.force_login(d.users["community_a"])
    pages = [reverse(n) + f"?unit={d.community_a.pk}" for n in ("forces:teams", "forces:posts", "forces:tasks",
                                                                  "forces:places", "forces:hours")]

    def add(k):
        for i in range(k):
            h = active_helper(d.community_a, f"人{i}{k}")
            team = do_create_team(d.community_a, name=f"队{i}{k}", leader=h, acting_user=None)
            post = do_create_post(d.compound_a, name=f"岗{i}{k}", kind="gate", acting_user=None)
            place = do_create_place(d.compound_a, name=f"点{i}{k}", kind="road", acting_user=None)
            do_create_task(d.community_a, kind="visit", title=f"走访{i}{k}", team=team if i % 2 else None,
                           helper=None if i % 2 else h, places=[place.pk],
                           due_at=timezone.now() + dt.timedelta(hours=2), acting_user=None)
            now = timezone.now()
            Shift.objects.create(post=post, path=post.path, helper=h, starts_at=now - dt.timedelta(hours=1),
                                 ends_at=now + dt.timedelta(hours=1), on_at=now - dt.timedelta(minutes=50))

    def counts():
        out = []
        for url in pages:
            with CaptureQueriesContext(connection) as q:
                assert client.get(url).status_code == 200
            out.append(len(q.captured_queries))
        return out

    add(2)
    few = counts()
    add(6)
    assert counts() == few, pages


def test_a_decision_goes_back_only_to_a_page_of_the_app(client, district):
    from bihuan.forces.actions import do_report_in

    d = district
    helper, _ = do_report_in(d.community_a, name="孙晓燕", phone="13912340001", kind="youth")
    client.force_login(d.users["community_a"])
    response = client.post(reverse("forces:decide", args=[helper.pk]), {"approve": "1", "next": "https://evil.example/"})
    assert response["Location"] == reverse("forces:home")
