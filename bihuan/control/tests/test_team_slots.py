"""五包一 slots offer the staff whose role fits, the household's own grid worker first (and suggested)."""

from __future__ import annotations

from django.urls import reverse

from bihuan.control import selectors
from bihuan.control.models import TeamSlot
from bihuan.core.roles import Role
from bihuan.register.models import Staff

from .helpers import make_case


def test_the_grid_worker_slot_offers_the_households_grid_worker_first_and_only_grid_roles(district):
    d = district
    case = make_case(d.grid_a, resident=d.resident_a)
    offer = selectors.slot_candidates(case)
    grid = offer[TeamSlot.GRID_WORKER]
    own = Staff.objects.get(user=d.users["grid_a"])
    assert grid[0]["staff"] == own and grid[0]["own"]
    assert all(o["staff"].role in (Role.GRID_WORKER, Role.BUILDING_LEADER, Role.VILLAGER_REP) for o in grid)
    cadres = offer[TeamSlot.CADRE]
    assert cadres and all(o["staff"].role in (Role.COMMUNITY_STAFF, Role.TOWNSHIP_STAFF, Role.PROPERTY_MANAGER)
                          for o in cadres)
    assert not any(o["own"] for o in cadres)


def test_the_case_page_suggests_the_own_grid_worker_and_refuses_a_misfit_for_a_slot(client, district):
    d = district
    case = make_case(d.grid_a, resident=d.resident_a)
    client.force_login(d.users["community_a"])
    page = client.get(reverse("control:case", args=[case.pk])).content.decode()
    team = page[page.index('data-testid="team-grid_worker"'):]
    team = team[:team.index("</select>")]
    assert "本户网格员" in team and " selected>" in team
    community = Staff.objects.get(user=d.users["community_a"])
    response = client.post(reverse("control:team", args=[case.pk]),
                           {"slot": TeamSlot.GRID_WORKER, "user": community.user_id})
    assert response.status_code == 404
    response = client.post(reverse("control:team", args=[case.pk]),
                           {"slot": TeamSlot.CADRE, "user": community.user_id})
    assert response.status_code == 302 and case.team.get().user_id == community.user_id
