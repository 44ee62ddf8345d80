"""The demo looks alive whatever hour ``generate`` runs: built at 00:30 and at 23:30 local time, the commander's
board has something behind in every part of the work, and the grid worker has tasks."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from bihuan.demo.day import build_day
from bihuan.demo.generate import generate_district
from bihuan.register.models import Unit
from bihuan.today.board import build


@pytest.mark.parametrize("hour, minute", [(0, 30), (14, 0), (23, 30)])
def test_the_demo_day_built_at_any_hour_shows_figures(clock, client, db, hour, minute):
    clock.set_local(timezone.localdate(), hour, minute)
    generate_district("tiny", seed=1, out=lambda line: None)
    build_day(seed=1, out=lambda line: None)
    board = build(Unit.objects.get(level=1))
    counts = {f.key: f.count for f in board.figures}
    empty = [key for key, n in counts.items() if n == 0]
    assert empty == [], f"at {hour:02d}:{minute:02d} nothing behind in {empty}: {counts}"
    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.all()}
    client.force_login(users["grid1"])
    page = client.get(reverse("home")).content.decode()
    assert 'data-testid="task-' in page or 'data-testid="verify-' in page
