"""四不两直: no one in the target unit or above it, except the district command, learns of a planned visit before
it happens — on any route of the project. The walker GETs every named route of the URLconf (pages and the API),
with its ids filled from the objects the plan touches, as each user of the target unit and above, before and
after a plan is drawn: every response must be the same (tokens aside)."""

import re

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from bihuan.inspections.models import Visit, VisitState
from bihuan.testing import API_BASE, bearer

from .helpers import draw_home_visit

pytestmark = pytest.mark.django_db

# The target unit (community A, its compound and grid) and every unit above it that is not the district command.
TARGET_AND_ABOVE = ["department", "township_a", "community_a", "grid_a"]
TOKENS = re.compile(rb'(csrfmiddlewaretoken" value="|X-CSRFToken": "|csrf[-_]token" content=")[^"]+')


def routes(resolver=None, prefix: str = ""):
    """(name, {kwarg: converter class name}) of every named route."""
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            yield from routes(p, prefix + (p.namespace + ":" if p.namespace else ""))
        elif isinstance(p, URLPattern) and p.name:
            yield prefix + p.name, {k: type(c).__name__ for k, c in getattr(p.pattern, "converters", {}).items()}


def urls(ids: dict[str, list[int]]) -> list[str]:
    """Every route, once per id its id argument may take (by the argument's name: ``visit_id`` the visit, ``unit_id``
    the target's units …; any other id the visit's and the plan's); other arguments a value that names nothing."""
    out = set()
    for name, kwargs in routes():
        if name == "logout" or name.endswith("logout_everywhere"):
            continue
        numeric = [k for k, conv in kwargs.items() if name.startswith("api-v1:") or conv == "IntConverter"]
        first = numeric[0] if numeric else ""
        choices = next((v for word, v in ids.items() if word in first), ids["other"]) if numeric else [0]
        for i in choices:
            values = {k: (str(i) if k in numeric else "x") for k in kwargs}
            if "key" in values:
                values["key"] = "card_posted"
            try:
                out.add(reverse(name, kwargs=values))
            except Exception:  # a converter that refuses the value: the route cannot be reached with it
                continue
    return sorted(out)


def fetch_all(client, d, url_list):
    out = {}
    for name in TARGET_AND_ABOVE:
        client.force_login(d.users[name])
        auth = bearer(d.users[name])
        for url in url_list:
            try:
                response = client.get(url, **(auth if url.startswith(API_BASE) else {}))
            except Exception as e:  # a page that fails for its own reasons fails the same way before and after
                out[name, url] = (500, type(e).__name__.encode())
                continue
            body = b"" if getattr(response, "streaming", False) else response.content
            out[name, url] = (response.status_code, TOKENS.sub(rb"\1", body))
    return out


class Undo(Exception):
    pass


def test_a_planned_visit_changes_no_route_for_anyone_in_the_target_unit_or_above(world, client, clock):
    """Drawn, every route read; the plan undone, every route read again: the same answers."""
    d = world.d
    try:
        with transaction.atomic():
            plan, visit = draw_home_visit(world)
            ids = {"visit": [visit.pk], "plan": [plan.pk], "case": [world.case.pk],
                   "unit": [d.community_a.pk, d.grid_a.pk], "household": [d.resident_a.household_id],
                   "resident": [d.resident_a.pk], "other": sorted({visit.pk, plan.pk})}
            url_list = urls(ids)
            assert any(u == f"{API_BASE}/inspections/visits/{visit.pk}" for u in url_list)
            assert any(u == reverse("inspections:visit", args=[visit.pk]) for u in url_list)
            assert len(url_list) > 200
            with_plan = fetch_all(client, d, url_list)
            assert Visit.objects.get(pk=visit.pk).state == VisitState.PLANNED  # nobody started it on the way
            raise Undo
    except Undo:
        pass
    assert not Visit.objects.exists()
    without = fetch_all(client, d, url_list)
    changed = sorted(k for k in without if without[k] != with_plan[k])
    if changed:  # a page that differs from one request to the next is not a leak: ask it again, unchanged
        again = fetch_all(client, d, sorted({url for _n, url in changed}))
        changed = [k for k in changed if again[k] == without[k]]
    assert changed == []
