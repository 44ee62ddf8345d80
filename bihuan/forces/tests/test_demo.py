"""The generated district's field force: helpers, teams with leaders, posts with a week of roster that has a few
gaps, disinfection places with logs, tasks that name their households and places — and the pages show it."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from bihuan.demo.generate import generate_district
from bihuan.forces import links, roster, selectors
from bihuan.forces.models import DisinfectionLog, Helper, Place, Post, Shift, Task, Team
from bihuan.register.models import Unit


@pytest.fixture
def tiny(db):
    return generate_district("tiny", seed=1, out=lambda *_: None)


def test_the_tiny_demo_has_a_field_force_with_targets_gaps_and_hours(tiny, client):
    assert Helper.objects.count() >= 20 and Team.objects.filter(leader__isnull=False).exists()
    assert Post.objects.exists() and Shift.objects.exists() and Place.objects.exists()
    assert DisinfectionLog.objects.exists()
    delivery = Task.objects.filter(kind="delivery").exclude(households=[]).first()
    sweep = Task.objects.filter(kind="disinfection").exclude(places=[]).first()
    assert delivery is not None and sweep is not None
    district = Unit.objects.get(level=1)
    _, totals = roster.rollup(district)
    assert totals[district.pk].posts_with_gaps > 0 and totals[district.pk].hours_served > 0
    now = timezone.now()
    assert selectors.hours_served(now - dt.timedelta(days=7), now, district, by="team")
    # The helper's own page names what the delivery targets.
    page = client.get(links.helper_path(delivery.helper_id)).content.decode()
    assert f'data-testid="task-households-{delivery.pk}"' in page
    from bihuan.register.models import Staff

    commander = Staff.objects.filter(unit=district).select_related("user").first().user
    client.force_login(commander)
    for name in ("forces:teams", "forces:posts", "forces:tasks", "forces:places", "forces:hours"):
        assert client.get(reverse(name)).status_code == 200, name
