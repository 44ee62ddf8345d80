"""Staff of every level, managed where they work: appoint, edit, move, deactivate; 包保; the address book."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bihuan.core.errors import Refused
from bihuan.core.models import AuditEntry
from bihuan.core.roles import PERMISSIONS, Perm, Role, may_grant
from bihuan.register.coverage import rollup
from bihuan.register.models import Staff, UnitLeader
from bihuan.register.staff_actions import (
    do_appoint_leader,
    do_create_staff,
    do_deactivate_staff,
    do_move_staff,
    do_set_no_property_management,
    do_update_staff,
)
from bihuan.testing import PASSWORD, bearer, create_household, create_staff, create_unit


def test_unit_leaders_hold_manage_staff_and_field_roles_do_not():
    holders = {role for role, perms in PERMISSIONS.items() if Perm.MANAGE_STAFF in perms}
    assert holders == {Role.DISTRICT_COMMANDER, Role.COMMAND_OFFICE, Role.TOWNSHIP_STAFF, Role.COMMUNITY_STAFF,
                       Role.PROPERTY_MANAGER}


def test_a_role_is_given_only_by_one_with_at_least_its_power():
    assert may_grant(Role.COMMUNITY_STAFF, Role.GRID_WORKER)
    assert may_grant(Role.PROPERTY_MANAGER, Role.BUILDING_LEADER)
    assert not may_grant(Role.PROPERTY_MANAGER, Role.COMMUNITY_STAFF)
    assert not may_grant(Role.TOWNSHIP_STAFF, Role.COMMAND_OFFICE)


def test_a_community_admin_appoints_a_grid_worker_with_a_first_password(district):
    staff, password = do_create_staff(unit=district.grid_a, username="wang", name="王网格", role=Role.GRID_WORKER,
                                      phone="139 0000 1111", household_ids=[district.household_a.id],
                                      acting_user=district.users["community_a"])
    assert staff.must_change_password and staff.phone_masked == "139****1111"
    assert len(password) >= 12 and staff.user.check_password(password)
    assert list(staff.households.all()) == [district.household_a]
    entry = AuditEntry.objects.get(action="staff.create", target_id=str(staff.pk))
    assert entry.actor == district.users["community_a"] and "13900001111" not in str(entry.changes)


@pytest.mark.parametrize("role", [Role.TOWNSHIP_STAFF, Role.COMMUNITY_STAFF, Role.COMMAND_OFFICE])
def test_a_role_must_fit_the_units_level(district, role):
    with pytest.raises(Refused) as refused:
        do_create_staff(unit=district.grid_a, username="x", name="某", role=role,
                        acting_user=district.users["community_a"])
    assert refused.value.field == "role"


def test_a_unit_admin_cannot_touch_a_siblings_or_an_ancestors_staff(district):
    from django.http import Http404

    sibling = district.users["grid_a"].staff
    for actor, target in (("township_b", sibling), ("village_b", sibling), ("community_a",
                          district.users["township_a"].staff), ("property_a", district.users["community_a"].staff)):
        with pytest.raises(Http404):
            do_update_staff(staff=target, changes={"name": "改名"}, acting_user=district.users[actor])
        with pytest.raises(Http404):
            do_move_staff(staff=target, unit=district.grid_a, acting_user=district.users[actor])
        with pytest.raises(Http404):
            do_deactivate_staff(staff=target, acting_user=district.users[actor])
    with pytest.raises(Http404):  # nor place anyone in a sibling's unit
        do_create_staff(unit=district.grid_a, username="x", name="某", role=Role.GRID_WORKER,
                        acting_user=district.users["township_b"])
    assert Staff.objects.get(pk=sibling.pk).name == "grid_a"


def test_a_grid_worker_may_not_appoint_anyone(district):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        do_create_staff(unit=district.grid_a, username="x", name="某", role=Role.BUILDING_LEADER,
                        acting_user=district.users["grid_a"])


def test_moving_a_person_within_the_subtree_changes_unit_and_role(district):
    other_grid = create_unit(district.compound_a, "锦悦小区第2网格", "grid")
    staff = district.users["grid_a"].staff
    do_move_staff(staff=staff, unit=other_grid, acting_user=district.users["community_a"])
    staff.refresh_from_db()
    assert staff.unit == other_grid and staff.role == Role.GRID_WORKER
    with pytest.raises(Refused):  # a grid worker cannot sit at a compound: a new role is needed
        do_move_staff(staff=staff, unit=district.compound_a, acting_user=district.users["community_a"])
    do_move_staff(staff=staff, unit=district.compound_a, role=Role.PROPERTY_MANAGER,
                  acting_user=district.users["community_a"])
    assert Staff.objects.get(pk=staff.pk).role == Role.PROPERTY_MANAGER


def test_nobody_deactivates_or_moves_themselves(district):
    me = district.users["community_a"]
    with pytest.raises(Refused):
        do_move_staff(staff=me.staff, unit=district.grid_a, role=Role.GRID_WORKER, acting_user=me)
    with pytest.raises(Refused):
        do_deactivate_staff(staff=me.staff, acting_user=me)


def test_households_belong_to_the_persons_own_grid(district):
    with pytest.raises(Refused) as refused:
        do_create_staff(unit=district.grid_a, username="x", name="某", role=Role.GRID_WORKER,
                        household_ids=[district.household_b.id], acting_user=None)
    assert refused.value.field == "households"


def test_a_deactivated_person_loses_session_login_and_api_at_once(district, client):
    user = district.users["grid_a"]
    headers = bearer(user)
    assert client.get("/api/v1/me", **headers).status_code == 200
    client.force_login(user)
    assert client.get(reverse("home")).status_code == 200
    do_deactivate_staff(staff=user.staff, reason="调离", acting_user=district.users["community_a"])
    assert client.get(reverse("home")).status_code == 302  # the session no longer resolves to anyone
    assert client.get("/api/v1/me", **headers).status_code == 401
    client.logout()
    assert not client.login(username="grid_a", password=PASSWORD)
    assert AuditEntry.objects.filter(action="staff.deactivate", target_id=str(user.staff.pk)).exists()


def test_a_deactivated_grid_worker_leaves_the_grid_a_blind_spot(district):
    _, totals = rollup(district.grid_a)
    assert totals[district.grid_a.id].grids_without_responsible == 0
    do_deactivate_staff(staff=district.users["grid_a"].staff, acting_user=district.users["community_a"])
    _, totals = rollup(district.grid_a)
    assert totals[district.grid_a.id].grids_without_responsible == 1


def test_a_grid_without_a_responsible_person_is_a_blind_spot_until_one_is_appointed(district, client):
    grid = create_unit(district.compound_a, "锦悦小区第3网格", "grid")
    create_household(grid)
    _, totals = rollup(district.community_a)
    assert totals[grid.id].grids_without_responsible == 1
    client.force_login(district.users["property_a"])
    response = client.post(reverse("register:staff_create", args=[grid.id]), {
        "username": "li3", "name": "李网格", "phone": "13700001234", "role": Role.GRID_WORKER, "language": ""})
    assert response.status_code == 200 and b'data-testid="password"' in response.content
    _, totals = rollup(district.community_a)
    assert totals[grid.id].grids_without_responsible == 0
    page = client.get(reverse("register:blind_spots", args=[district.community_a.id])).content.decode()
    assert grid.name not in page


def test_a_compound_with_no_property_management_is_a_blind_spot_until_a_cadre_answers_for_it(district):
    do_set_no_property_management(unit=district.compound_a, value=True, acting_user=district.users["community_a"])
    _, totals = rollup(district.district)
    assert totals[district.compound_a.id].compounds_without_cadre == 1
    assert totals[district.district.id].compounds_without_cadre == 1
    do_appoint_leader(unit=district.compound_a, staff=district.users["community_a"].staff, duty="包保干部",
                      acting_user=district.users["township_a"])
    _, totals = rollup(district.district)
    assert totals[district.district.id].compounds_without_cadre == 0
    assert UnitLeader.objects.get().duty == "包保干部"


def test_a_cadre_must_be_someone_the_appointer_can_see(district):
    from django.http import Http404

    with pytest.raises(Http404):
        do_appoint_leader(unit=district.compound_a, staff=district.users["township_b"].staff,
                          acting_user=district.users["community_a"])


def test_the_unit_page_is_the_address_book_masked_or_one_tap_to_call(client, district):
    grid_worker = district.users["grid_a"].staff
    clear = grid_worker.reveal_phone()
    client.force_login(district.users["department"])  # no REVEAL_PERSONAL: masked, no button
    page = client.get(reverse("register:unit", args=[district.grid_a.id])).content.decode()
    assert grid_worker.phone_masked in page and clear not in page and f"call-{grid_worker.id}" not in page
    client.force_login(district.users["community_a"])
    page = client.get(reverse("register:unit", args=[district.grid_a.id])).content.decode()
    assert f'data-testid="call-{grid_worker.id}"' in page and clear not in page
    response = client.post(reverse("register:staff_reveal", args=[grid_worker.id]), HTTP_HX_REQUEST="true")
    assert f'href="tel:{clear}"' in response.content.decode()
    assert AuditEntry.objects.filter(action="staff.reveal", target_id=str(grid_worker.id),
                                     actor=district.users["community_a"]).exists()


def test_the_staff_list_runs_a_fixed_number_of_queries(client, district):
    client.force_login(district.users["commander"])
    url = reverse("register:staff", args=[district.district.id])
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for i in range(30):
        create_staff(district.grid_a, f"extra{i}", Role.BUILDING_LEADER)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.status_code == 200 and "extra29" in response.content.decode()
    assert len(many) == len(few)


def test_the_staff_list_filters_by_role_and_shows_masked_phones(client, district):
    client.force_login(district.users["township_a"])
    url = reverse("register:staff", args=[district.township_a.id])
    page = client.get(url, {"role": Role.GRID_WORKER}).content.decode()
    grid_worker = district.users["grid_a"].staff
    assert grid_worker.phone_masked in page and grid_worker.reveal_phone() not in page
    assert 'data-testid="staff-property_a"' not in page and 'data-testid="staff-grid_a"' in page
    page = client.get(url, {"within": district.compound_a.id}).content.decode()
    assert 'data-testid="staff-property_a"' in page and 'data-testid="staff-community_a"' not in page


def test_a_first_password_must_be_changed_before_any_page_opens(client, district):
    staff, password = do_create_staff(unit=district.grid_a, username="newbie", name="新人", role=Role.GRID_WORKER,
                                      acting_user=district.users["community_a"])
    assert client.login(username="newbie", password=password)
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("register:change_password"))
    response = client.post(reverse("register:change_password"), {
        "old_password": password, "new_password": "Grid-worker-2022!", "new_password2": "Grid-worker-2022!",
        "next": "/"})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    staff.refresh_from_db()
    assert not staff.must_change_password


def test_a_persons_language_wins_over_the_browser(client, district):
    do_update_staff(staff=district.users["grid_a"].staff, changes={"language": "en"}, acting_user=None)
    client.force_login(district.users["grid_a"])
    page = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'lang="en"' in page or "Households" in page


def test_editing_through_the_page_changes_role_and_households(client, district, extra_grid_worker):
    client.force_login(district.users["property_a"])
    response = client.post(reverse("register:staff_edit", args=[extra_grid_worker.id]), {
        "name": "楼长乙", "role": Role.GRID_WORKER, "language": "", "households": [district.household_a.id],
        "unit_id": district.grid_a.id})
    assert response.status_code == 302, response.content.decode()
    extra_grid_worker.refresh_from_db()
    assert extra_grid_worker.name == "楼长乙" and extra_grid_worker.role == Role.GRID_WORKER
    assert list(extra_grid_worker.households.values_list("id", flat=True)) == [district.household_a.id]
    response = client.post(reverse("register:staff_edit", args=[extra_grid_worker.id]), {
        "name": "楼长乙", "role": Role.COMMUNITY_STAFF, "language": "", "unit_id": district.grid_a.id})
    assert response.status_code == 400 and b'data-field="role"' in response.content
