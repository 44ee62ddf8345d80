"""Every checkpoints page in an access matrix: insiders see branch A, outsiders get 404 (units below a
checkpoint's unit too), a role without the permission 403; the public pages need no login."""

from types import SimpleNamespace

import pytest
from django.urls import reverse

from bihuan.checkpoints.actions import do_register, do_start_campaign, do_submit_self_report
from bihuan.checkpoints.models import RegisterChange
from bihuan.core.roles import Perm
from bihuan.testing import assert_route_access, url_names

from .conftest import person, today


@pytest.fixture
def world(ctx):
    d = ctx
    do_register(d.checkpoint, token="p", vehicle_type="car", plate="晋L12345", people=[person("王一")],
                acting_user=d.users["community_a"])
    campaign = do_start_campaign(title="排查", since=today(), acting_user=d.users["commander"])
    from bihuan.checkpoints.actions import do_answer_screening

    do_answer_screening(campaign, d.household_a, {"present": "5", "member_change": "新住进一人"},
                        acting_user=d.users["grid_a"])
    do_submit_self_report({"name": "孙立", "phone": "13900008888", "origin": "太原市", "transport": "car",
                           "arrival_date": today().isoformat(), "destination": "锦悦小区"})
    return SimpleNamespace(d=d, campaign=campaign, change=RegisterChange.objects.get())


ROUTES = {
    "checkpoints:list": ("get", lambda c: reverse("checkpoints:list"), None, Perm.REGISTER_CHECKPOINT, 200, "unscoped"),
    "checkpoints:create": ("post", lambda c: reverse("checkpoints:create"),
                           lambda c: {"unit": c.d.compound_a.pk, "name": "新卡口", "kind": "compound_gate"},
                           Perm.EDIT_REGISTER, 302, "compound"),
    "checkpoints:register": ("get", lambda c: reverse("checkpoints:register", args=[c.d.checkpoint.pk]), None,
                             Perm.REGISTER_CHECKPOINT, 200, "community"),
    "checkpoints:registrations": ("get", lambda c: reverse("checkpoints:registrations", args=[c.d.checkpoint.pk]),
                                  None, Perm.REGISTER_CHECKPOINT, 200, "community"),
    "checkpoints:destinations": ("get", lambda c: reverse("checkpoints:destinations") + "?q=锦悦", None,
                                 Perm.REGISTER_CHECKPOINT, 200, "unscoped"),
    "checkpoints:report": ("get", lambda c: reverse("checkpoints:report"), None, Perm.REGISTER_CHECKPOINT, 200,
                           "unscoped"),
    "checkpoints:campaigns": ("get", lambda c: reverse("checkpoints:campaigns"), None, Perm.MARK_REACH, 200,
                              "unscoped"),
    "checkpoints:campaign": ("get", lambda c: reverse("checkpoints:campaign", args=[c.campaign.pk]), None,
                             Perm.MARK_REACH, 200, "unscoped"),
    "checkpoints:campaign_xlsx": ("get", lambda c: reverse("checkpoints:campaign_xlsx", args=[c.campaign.pk]), None,
                                  Perm.MARK_REACH, 200, "unscoped"),
    "checkpoints:screen": ("get", lambda c: reverse("checkpoints:screen", args=[c.campaign.pk, c.d.household_a.pk]),
                           None, Perm.MARK_REACH, 200, "scoped"),
    "checkpoints:decide_change": ("post", lambda c: reverse("checkpoints:decide_change", args=[c.change.pk]),
                                  {"confirm": "0"}, Perm.EDIT_REGISTER, 302, "scoped"),
}
PUBLIC = {"self_report", "self_report_receipt", "screen_link"}  # no login (tested in test_views)


def test_every_checkpoints_page_is_in_the_access_matrix():
    names = {n for n in url_names() if n.startswith("checkpoints:") or n in PUBLIC}
    assert names == set(ROUTES) | PUBLIC


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_insiders_see_branch_a_and_outsiders_get_404(client, world, route):
    d = world.d

    def refused(username):  # a community's checkpoint (a compound's unit): the units below it get 404 as well
        level = {"community": d.community_a.level, "compound": d.compound_a.level}.get(ROUTES[route][5])
        return 404 if level is not None and d.users[username].staff.unit.level > level else None

    assert_route_access(client, world, route, ROUTES[route], secrets=("王一", d.household_a.address),
                        refused=refused)


def test_an_outsiders_campaign_page_and_ledger_show_none_of_branch_a(client, world):
    d = world.d
    client.force_login(d.users["township_b"])
    page = client.get(reverse("checkpoints:campaign", args=[world.campaign.pk])).content.decode()
    assert d.household_a.address not in page and "新住进一人" not in page
    client.force_login(d.users["community_a"])
    page = client.get(reverse("checkpoints:campaign", args=[world.campaign.pk])).content.decode()
    assert "新住进一人" in page
