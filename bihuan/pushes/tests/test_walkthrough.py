"""Small defects found walking through the push pages: the transfer list, the route in words, the uploader."""

from __future__ import annotations

import re

from django.urls import reverse

from bihuan.pushes.actions import do_dispatch
from bihuan.register.models import Staff

from .helpers import make_batch, routed


def _options(page: str, select_id: str) -> set[int]:
    start = page.index(f'id="{select_id}"')
    block = page[start:page.index("</select>", start)]
    return {int(v) for v in re.findall(r'<option value="(\d+)"', block)}


def test_the_transfer_list_does_not_offer_ones_own_unit(client, district):
    d = district
    [person] = routed(d, {"name": "王建国", "resident": d.resident_a, "phone": "13812345678"})
    client.force_login(d.users["community_a"])
    page = client.get(reverse("pushes:person", args=[person.pk])).content.decode()
    for select in ("to-unit", "f-elsewhere_in_district__target_unit"):
        offered = _options(page, select)
        assert offered and d.community_a.pk not in offered and d.village_b.pk in offered


def test_a_dispatched_person_says_manual_dispatch_once(client, district):
    d = district
    [person] = routed(d, {"address": "某某路88号"})
    do_dispatch(person, d.community_a, acting_user=d.users["office"])
    client.force_login(d.users["community_a"])
    page = client.get(reverse("pushes:person", args=[person.pk])).content.decode()
    assert "人工分派：鼓楼社区" in page and "人工分派：人工分派" not in page


def test_the_uploader_is_named_as_people_write_their_names(client, district):
    d = district
    user = d.users["office"]
    user.first_name, user.last_name = "长卫", "张"
    user.save()
    Staff.objects.filter(user=user).update(name="张长卫")
    batch = make_batch(d.office, user)
    client.force_login(user)
    for url in (reverse("pushes:batches"), reverse("pushes:batch", args=[batch.pk])):
        page = client.get(url).content.decode()
        assert "张长卫" in page and "长卫 张" not in page
