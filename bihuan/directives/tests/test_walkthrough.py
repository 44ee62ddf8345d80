"""Small defects found walking through the directive pages: the feedback-form builder, choosing several units,
the building mark's way of telling, the order of rooms."""

from __future__ import annotations

import re
from types import SimpleNamespace

from django.urls import reverse

from bihuan.directives.actions import do_issue_directive
from bihuan.directives.models import Directive
from bihuan.register.ordering import household_key, natural
from bihuan.testing import create_household

BASE = {"title": "走访", "body": "请走访。", "urgency": "normal", "sign_minutes": "30", "reach_hours": "24",
        "reminder_minutes": "30", "reminder_limit": "3"}


def test_the_feedback_form_is_built_row_by_row_without_programmer_syntax(client, district):
    d = district
    client.force_login(d.users["commander"])
    page = client.get(reverse("directives:new")).content.decode()
    # the rows come first; the code|name|type text is only the folded "more items" box for those who want it
    assert page.index('data-testid="fb-row-1"') < page.index('<details class="fb-text"') < page.index("tested*|")
    assert "Ctrl" in page  # choosing several units says how
    response = client.post(reverse("directives:new"), {
        **BASE, "fb_label_0": "已走访人数", "fb_type_0": "number", "fb_required_0": "on",
        "fb_label_1": "风险等级", "fb_type_1": "choice", "fb_choices_1": "低，中,高",
        "feedback_form": "notes|情况说明|text"})
    assert response.status_code == 302
    form = Directive.objects.get(title="走访").feedback_form
    assert [(f["label"], f["type"], f["required"]) for f in form] == [
        ("已走访人数", "number", True), ("风险等级", "choice", False), ("情况说明", "text", False)]
    assert form[1]["choices"] == ["低", "中", "高"] and len({f["key"] for f in form}) == 3


def test_a_choice_row_without_choices_is_refused_beside_the_row(client, district):
    d = district
    client.force_login(d.users["commander"])
    response = client.post(reverse("directives:new"), {**BASE, "fb_label_0": "等级", "fb_type_0": "choice"})
    assert response.status_code == 400 and 'data-testid="error-fb-1"' in response.content.decode()
    assert not Directive.objects.filter(title="走访").exists()


def test_the_building_mark_asks_how_they_were_told(client, district):
    d = district
    directive = do_issue_directive(acting_user=d.users["commander"], title="通知", body="正文")
    client.force_login(d.users["grid_a"])
    page = client.get(reverse("directives:mark", args=[directive.pk]) + f"?unit={d.grid_a.pk}").content.decode()
    select = re.search(r'<select name="method" required[^>]*>(.*?)</select>', page, re.S)
    assert select is not None
    assert re.search(r'<option value="" selected>', select.group(1)) and "wechat\" selected" not in select.group(1)


def test_rooms_come_in_the_order_of_the_building_everywhere(client, district):
    d = district
    assert natural("102室") < natural("1002室") and natural("2号楼") < natural("10号楼")
    for room in ("1002", "102", "201"):
        create_household(d.grid_a, address=f"锦悦小区9号楼1单元{room}室", building="9", entrance="1", room=room)
    client.force_login(d.users["community_a"])
    page = client.get(reverse("register:households") + f"?unit={d.grid_a.pk}").content.decode()
    assert re.findall(r"9号楼1单元(\d+)室", page)[:3] == ["102", "201", "1002"]
    rows = [SimpleNamespace(building="9", entrance="1", room=r, house_number="", id=i)
            for i, r in enumerate(["1002", "102", "201"])]
    assert [r.room for r in sorted(rows, key=household_key)] == ["102", "201", "1002"]
