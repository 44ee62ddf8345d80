"""Every register page, for an insider and an outsider at every level."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bihuan.core.models import AuditEntry
from bihuan.core.roles import Perm, Role
from bihuan.register.models import Staff, UnitLeader
from bihuan.testing import assert_page_access, create_household, create_resident, create_staff, url_names


def _extra(d):
    """A second responsible person on branch A's grid, made once: the staff pages act on them."""
    staff = Staff.objects.filter(user__username="grid_a2").first()
    return staff or create_staff(d.grid_a, "grid_a2", Role.BUILDING_LEADER)


def _fresh_leader(d):
    """A new 包保 post on branch A's grid for every request (removing it is the request)."""
    staff = _extra(d)
    UnitLeader.objects.filter(unit=d.grid_a, staff=staff).delete()
    return UnitLeader.objects.create(unit=d.grid_a, staff=staff).id


# route name -> (method, url for a branch-A object (made per request), permission needed[, status when allowed])
ROUTES = {
    "home": ("get", lambda d: reverse("home"), Perm.VIEW_REGISTER),
    "register:unit": ("get", lambda d: reverse("register:unit", args=[d.grid_a.id]), Perm.VIEW_REGISTER),
    "register:blind_spots": ("get", lambda d: reverse("register:blind_spots", args=[d.grid_a.id]),
                             Perm.VIEW_REGISTER),
    "register:export": ("get", lambda d: reverse("register:export", args=[d.grid_a.id]), Perm.EXPORT_REGISTER),
    "register:households": ("get", lambda d: reverse("register:households") + f"?unit={d.grid_a.id}",
                            Perm.VIEW_REGISTER),
    "register:household": ("get", lambda d: reverse("register:household", args=[d.household_a.id]),
                           Perm.VIEW_REGISTER),
    "register:residents": ("get", lambda d: reverse("register:residents") + f"?unit={d.grid_a.id}",
                           Perm.VIEW_REGISTER),
    "register:reveal": ("post", lambda d: reverse("register:reveal", args=[d.resident_a.id]), Perm.REVEAL_PERSONAL),
    "register:import": ("get", lambda d: reverse("register:import"), Perm.IMPORT_REGISTER),
    "register:template": ("get", lambda d: reverse("register:template"), Perm.VIEW_REGISTER),
    "register:staff": ("get", lambda d: reverse("register:staff", args=[d.grid_a.id]), Perm.VIEW_REGISTER),
    "register:staff_create": ("get", lambda d: reverse("register:staff_create", args=[d.grid_a.id]),
                              Perm.MANAGE_STAFF),
    "register:staff_edit": ("get", lambda d: reverse("register:staff_edit", args=[_extra(d).id]), Perm.MANAGE_STAFF),
    "register:staff_deactivate": ("post", lambda d: reverse("register:staff_deactivate", args=[_extra(d).id]),
                                  Perm.MANAGE_STAFF, 302),
    "register:staff_reset_password": ("post", lambda d: reverse("register:staff_reset_password", args=[_extra(d).id]),
                                      Perm.MANAGE_STAFF),
    "register:staff_unlock": ("post", lambda d: reverse("register:staff_unlock", args=[_extra(d).id]),
                              Perm.MANAGE_STAFF, 302),
    "register:staff_reset_2fa": ("post", lambda d: reverse("register:staff_reset_2fa", args=[_extra(d).id]),
                                 Perm.MANAGE_STAFF, 302),
    "register:staff_reveal": ("post", lambda d: reverse("register:staff_reveal", args=[_extra(d).id]),
                              Perm.REVEAL_PERSONAL),
    "register:leader_appoint": ("post", lambda d: reverse("register:leader_appoint", args=[d.grid_a.id]),
                                Perm.MANAGE_STAFF, 302),
    "register:leader_remove": ("post", lambda d: reverse("register:leader_remove", args=[_fresh_leader(d)]),
                               Perm.MANAGE_STAFF, 302),
    "register:no_property": ("post", lambda d: reverse("register:no_property", args=[d.grid_a.id]),
                             Perm.EDIT_REGISTER, 302),
    "register:change_password": ("get", lambda d: reverse("register:change_password"), Perm.VIEW_REGISTER),
}
# Pages that show no branch-A object, so an outsider is refused only by permission.
UNSCOPED = {"home", "register:import", "register:template", "register:change_password"}


def test_every_register_page_is_in_the_access_matrix():
    names = {n for n in url_names() if n.startswith("register:") or n == "home"}
    assert names == set(ROUTES), "add new pages to ROUTES"


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_insiders_see_branch_a_and_outsiders_get_404(client, district, route):
    method, url_of, perm, *status = ROUTES[route]
    assert_page_access(client, district, route, perm=perm, request=lambda c: getattr(c, method)(url_of(district)),
                       ok=status[0] if status else 200, scoped=route not in UNSCOPED,
                       secrets=(district.resident_a.name, district.household_a.address))


def test_anonymous_users_are_sent_to_login(client, district):
    response = client.get(reverse("register:unit", args=[district.community_a.id]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_home_shows_the_users_own_part_of_the_tree(client, district):
    client.force_login(district.users["township_a"])
    page = client.get(reverse("home")).content.decode()
    assert "解放路街道" in page and "鼓楼社区" in page and "屯里镇" not in page
    client.force_login(district.users["grid_a"])
    page = client.get(reverse("home")).content.decode()
    # the grid worker's home lists their households by building, with the room number only
    assert f'data-testid="household-{district.household_a.pk}"' in page
    assert f'data-testid="household-{district.household_b.pk}"' not in page


def test_lists_show_masked_values_and_reveal_is_audited(client, district):
    client.force_login(district.users["community_a"])
    clear_id, clear_phone = district.resident_a.reveal_id_number(), district.resident_a.reveal_phone()
    page = client.get(reverse("register:household", args=[district.household_a.id])).content.decode()
    assert clear_id not in page and clear_phone not in page
    assert district.resident_a.id_masked in page and "138****5678" in page
    response = client.post(reverse("register:reveal", args=[district.resident_a.id]), {"reason": "核实"})
    assert clear_id in response.content.decode() and clear_phone in response.content.decode()
    entry = AuditEntry.objects.get(action="resident.reveal")
    assert entry.actor == district.users["community_a"] and entry.target_id == str(district.resident_a.id)
    assert entry.actor_unit_id == district.community_a.id


@pytest.mark.parametrize("q, found", [("王建国", True), ("wjg", True), ("5678", True), ("赵", False)])
def test_household_search_by_name_initials_and_phone_tail(client, district, q, found):
    client.force_login(district.users["community_a"])
    page = client.get(reverse("register:households"), {"unit": district.community_a.id, "q": q}).content.decode()
    assert (district.household_a.address in page) is found


def test_resident_search_by_id_tail(client, district):
    client.force_login(district.users["office"])
    tail = district.resident_b.id_tail
    page = client.get(reverse("register:residents"), {"q": tail}).content.decode()
    assert "赵桂兰" in page


def test_household_list_runs_a_fixed_number_of_queries(client, district):
    client.force_login(district.users["community_a"])
    url = reverse("register:households") + f"?unit={district.community_a.id}"
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for i in range(30):
        h = create_household(district.grid_a, f"锦悦小区5号楼{i}室")
        create_resident(h, f"测试{i}")
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few)


def test_staff_binding_is_required(client, district, django_user_model):
    loner = django_user_model.objects.create_user("loner", password="x")
    client.force_login(loner)
    assert client.get(reverse("home")).status_code == 403
    assert not Staff.objects.filter(user=loner).exists()
