"""The commander skips the office layer on every table of units: a directive's units, the push and the control
dashboards list the townships directly (one rule, ``register.drill``), ranked, each with its responsible person."""

from __future__ import annotations

import re

from django.urls import reverse

from bihuan.directives.models import Directive
from bihuan.register.drill import drill_rows, responsible_people
from bihuan.register.models import Unit, UnitKind


def _row_ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-testid="child-(\d+)"', page)]


def _check_rows(page: str) -> None:
    ids = _row_ids(page)
    assert ids, "the table of units is missing"
    office = Unit.objects.get(kind=UnitKind.COMMAND_OFFICE)
    townships = set(Unit.objects.filter(level=3).values_list("id", flat=True))
    levels = [Unit.objects.get(pk=i).level for i in ids]
    # the townships come first (directly, not under the office); the office and departments come after them
    assert set(ids) & townships and levels[0] == 3
    first_apart = next((n for n, lv in enumerate(levels) if lv == 2), len(levels))
    assert all(lv == 3 for lv in levels[:first_apart]) and all(lv == 2 for lv in levels[first_apart:])
    assert office.pk not in ids[:first_apart]
    people = responsible_people(ids[:first_apart])
    named = [p.name for p in people.values()]
    assert named and all(name in page for name in named)


def test_a_directive_page_of_the_district_lists_the_townships_directly(client, demo_day):
    client.force_login(demo_day["commander"])
    directive = Directive.objects.order_by("pk").first()
    page = client.get(reverse("directives:detail", args=[directive.pk])).content.decode()
    _check_rows(page)


def test_the_push_dashboard_of_the_district_lists_the_townships_directly(client, demo_day):
    client.force_login(demo_day["commander"])
    _check_rows(client.get(reverse("pushes:dashboard")).content.decode())


def test_the_control_dashboard_of_the_district_lists_the_townships_directly(client, demo_day):
    client.force_login(demo_day["commander"])
    _check_rows(client.get(reverse("control:dashboard")).content.decode())


def test_rows_are_ranked_most_behind_first_and_the_office_keeps_only_its_own_work(demo_day):
    from bihuan.register.coverage import UnitRow

    district = UnitRow(1, None, 1, "0001", "区", "district")
    office = UnitRow(2, 1, 2, "00010001", "办", UnitKind.COMMAND_OFFICE)
    dept = UnitRow(3, 1, 2, "00010002", "部门", UnitKind.DEPARTMENT)
    a = UnitRow(4, 2, 3, "000100010001", "甲", "township")
    b = UnitRow(5, 2, 3, "000100010002", "乙", "township")
    totals = {1: 9, 2: 8, 3: 1, 4: 2, 5: 5}
    rows, apart = drill_rows(district, [district, office, dept, a, b], totals, behind=lambda n: n,
                             own=lambda u: 1, people=False)
    assert [r.unit.name for r in rows] == ["乙", "甲"]
    assert [(r.unit.name, r.counts) for r in apart] == [("办", 1), ("部门", 1)]
    rows, apart = drill_rows(office, [office, a, b], totals, behind=lambda n: (0, -n), people=False)
    assert [r.unit.name for r in rows] == ["甲", "乙"] and apart == []
