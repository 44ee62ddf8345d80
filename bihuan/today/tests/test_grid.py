"""The grid worker's first page: tasks first, households by building with room numbers, one-tap marks."""

from __future__ import annotations

from django.urls import reverse

from bihuan.core.models import AuditEntry
from bihuan.directives.models import Reach, ReachStatus


def test_the_grid_worker_sees_tasks_then_households_by_building(client, demo_day):
    client.force_login(demo_day["grid1"])
    page = client.get(reverse("home")).content.decode()
    tasks, households = page.index('data-testid="tasks"'), page.index('data-testid="households"')
    assert tasks < households
    assert "户未通知" in page and 'class="glabel"' in page
    assert 'class="mark-form"' in page


def test_marking_a_household_is_one_tap_and_the_same_mark_twice_is_one_mark(client, demo_day):
    user = demo_day["grid1"]
    client.force_login(user)
    reach = Reach.objects.filter(status=ReachStatus.PENDING, path=user.staff.unit.path,
                                 directive__status="issued").order_by("id").first()
    data = {"directive": reach.directive_id, "household": reach.household_id, "method": "visit"}
    first = client.post(reverse("today:mark"), data, HTTP_ACCEPT="application/json")
    again = client.post(reverse("today:mark"), data, HTTP_ACCEPT="application/json")
    assert first.json() == {"ok": True, "changed": 1, "household": reach.household_id}
    assert again.json()["changed"] == 0
    reach.refresh_from_db()
    assert reach.status == ReachStatus.REACHED and reach.marked_by == user
    assert AuditEntry.objects.filter(action="directive.mark", actor=user).count() == 2


def test_a_household_of_another_grid_cannot_be_marked(client, demo_day):
    user = demo_day["grid1"]
    client.force_login(user)
    other = Reach.objects.exclude(path__startswith=user.staff.unit.path).filter(status=ReachStatus.PENDING).first()
    response = client.post(reverse("today:mark"), {"directive": other.directive_id, "household": other.household_id},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.status == ReachStatus.PENDING
