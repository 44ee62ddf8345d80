"""create_* helpers and the base district used by the tests (see conftest.py)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from datetime import datetime, timedelta
from types import SimpleNamespace

from django.utils import timezone

from bihuan.core.personal import id_checksum
from bihuan.core.roles import Role

from .register.actions import do_create_household, do_create_resident, do_create_unit
from .register.models import HouseholdKind, Unit, UnitKind
from .register.staff_actions import do_create_staff

PASSWORD = "bihuan-test-pass"
_seq = itertools.count(1)


def make_id_number(birth: dt.date, sex: str = "M", region: str = "141002") -> str:
    """A valid ID number (GB 11643) for the birth date and sex, unique within a test run."""
    serial = next(_seq) % 500 * 2 + (1 if sex == "M" else 0)
    body = f"{region}{birth:%Y%m%d}{serial:03d}"
    return body + id_checksum(body)


def create_unit(parent: Unit | None, name: str, kind: str, code: str | None = None) -> Unit:
    code = code or f"T{next(_seq):06d}"
    return do_create_unit(parent=parent, code=code, name=name, kind=kind, acting_user=None)


def create_household(unit: Unit, address: str | None = None, kind: str = HouseholdKind.URBAN, **parts):
    n = next(_seq)
    return do_create_household(unit=unit, code=f"H{n:08d}", kind=kind, address=address or f"{unit.name}{n}号",
                               acting_user=None, **parts)


def create_resident(household, name: str = "张三", birth: dt.date = dt.date(1980, 5, 17), sex: str = "M",
                    phone: str | None = None, **kw):
    return do_create_resident(household=household, name=name, id_number=make_id_number(birth, sex),
                              phone=phone if phone is not None else f"138{next(_seq):08d}", acting_user=None, **kw)


def create_staff(unit: Unit, username: str, role: str, name: str | None = None, **kw):
    return do_create_staff(unit=unit, username=username, name=name or username, role=role, password=PASSWORD,
                           phone=f"139{next(_seq):08d}", acting_user=None, **kw)[0]


def build_base_district() -> SimpleNamespace:
    """Two branches of the tree, A and B, with a named staff account at every level of each.

    Records under branch A are seen by ``insiders`` and never by ``outsiders``.
    """
    d = SimpleNamespace()
    d.district = create_unit(None, "尧都区", UnitKind.DISTRICT, code="141002")
    d.office = create_unit(d.district, "区疫情防控指挥部办公室", UnitKind.COMMAND_OFFICE)
    d.department = create_unit(d.district, "区卫健局", UnitKind.DEPARTMENT)
    d.township_a = create_unit(d.office, "解放路街道", UnitKind.SUBDISTRICT)
    d.township_b = create_unit(d.office, "屯里镇", UnitKind.TOWN)
    d.community_a = create_unit(d.township_a, "鼓楼社区", UnitKind.COMMUNITY)
    d.village_b = create_unit(d.township_b, "东羊村", UnitKind.VILLAGE)
    d.compound_a = create_unit(d.community_a, "锦悦小区", UnitKind.COMPOUND)
    d.group_b = create_unit(d.village_b, "东羊一组", UnitKind.VILLAGER_GROUP)
    d.grid_a = create_unit(d.compound_a, "锦悦小区第1网格", UnitKind.GRID)
    d.grid_b = create_unit(d.group_b, "东羊一组网格", UnitKind.GRID)

    d.household_a = create_household(d.grid_a, "锦悦小区3号楼2单元401", building="3", entrance="2", room="401")
    d.resident_a = create_resident(d.household_a, "王建国", dt.date(1975, 3, 9), "M", phone="13812345678")
    d.resident_a2 = create_resident(d.household_a, "李秀英", dt.date(1978, 11, 2), "F", relation="spouse")
    d.household_b = create_household(d.grid_b, "东羊村一组12号", kind=HouseholdKind.RURAL, house_number="12")
    d.resident_b = create_resident(d.household_b, "赵桂兰", dt.date(1941, 6, 30), "F",
                                   flags={"elderly_alone": True})

    users = {
        "commander": (d.district, Role.DISTRICT_COMMANDER),
        "office": (d.office, Role.COMMAND_OFFICE),
        "department": (d.department, Role.DEPARTMENT),
        "township_a": (d.township_a, Role.TOWNSHIP_STAFF),
        "township_b": (d.township_b, Role.TOWNSHIP_STAFF),
        "community_a": (d.community_a, Role.COMMUNITY_STAFF),
        "village_b": (d.village_b, Role.COMMUNITY_STAFF),
        "property_a": (d.compound_a, Role.PROPERTY_MANAGER),
        "group_head_b": (d.group_b, Role.PROPERTY_MANAGER),
        "grid_a": (d.grid_a, Role.GRID_WORKER),
        "rep_b": (d.grid_b, Role.VILLAGER_REP),
    }
    d.users = {}
    for username, (unit, role) in users.items():
        d.users[username] = create_staff(unit, username, role).user
    d.insiders = ["commander", "office", "department", "township_a", "community_a", "property_a", "grid_a"]
    d.outsiders = ["township_b", "village_b", "group_head_b", "rep_b"]
    return d


# --- access matrices: the pages ---------------------------------------------------------------------------

HX = {"HTTP_HX_REQUEST": "true"}  # an htmx request


def url_names(resolver=None, prefix: str = ""):
    """Every named URL of the project, with its namespace (``control:case``): what a page matrix must cover."""
    from django.urls import URLPattern, URLResolver, get_resolver

    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            yield from url_names(p, prefix + (p.namespace + ":" if p.namespace else ""))
        elif isinstance(p, URLPattern) and p.name:
            yield prefix + p.name


def assert_page_access(client, d, route: str, *, perm, request, ok: int = 200, scoped: bool = True,
                       secrets: tuple[str, ...] = (), refused=None) -> None:
    """Log in as every insider and outsider of the base district ``d`` in turn, ``request(client)`` the page and
    assert its status: 403 without ``perm``; 404 for an outsider if the page is ``scoped`` (shows a branch-A
    object); else what ``refused(username)`` says if it says anything (a page's own refusal); else ``ok``. A
    page an outsider gets (200) must show none of the branch-A ``secrets``."""
    from bihuan.core.roles import PERMISSIONS

    for username in d.insiders + d.outsiders:
        user = d.users[username]
        client.force_login(user)
        response = request(client)
        if perm not in PERMISSIONS[user.staff.role]:
            expected = 403
        elif username in d.outsiders and scoped:
            expected = 404
        else:
            expected = (refused(username) if refused else None) or ok
        assert response.status_code == expected, f"{route} as {username}: {response.status_code}"
        if response.status_code == 200 and username in d.outsiders:
            for secret in secrets:
                assert secret.encode() not in response.content


def assert_route_access(client, ctx, route: str, entry: tuple, **kw) -> None:
    """``assert_page_access`` for an entry of a ROUTES table ``(method, url_of(ctx), data, permission, status when
    allowed, kind)``: data may be a function of ``ctx``; a POST answered with a fragment (200) is an htmx one;
    every kind but "unscoped" is scoped."""
    method, url_of, data, perm, ok, kind = entry

    def request(client):
        payload = data(ctx) if callable(data) else (data or {})
        headers = HX if method == "post" and ok == 200 else {}
        return getattr(client, method)(url_of(ctx), payload, **headers)

    assert_page_access(client, ctx.d, route, perm=perm, request=request, ok=ok, scoped=kind != "unscoped", **kw)


# --- access matrices: the API -----------------------------------------------------------------------------

API_BASE = "/api/v1"


def bearer(user) -> dict:
    """Request headers with a fresh API token of ``user``."""
    from bihuan.core.actions import do_create_api_token

    _, key = do_create_api_token(user=user, name="test", acting_user=user, write=True)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def api_call(client, auth: dict, method: str, url: str, body: dict | None = None, multipart: bool = False):
    """One API request: ``body`` as JSON (or as a multipart form)."""
    if body is None:
        return getattr(client, method.lower())(url, **auth)
    if multipart:
        return client.post(url, data=body, **auth)
    return getattr(client, method.lower())(url, data=json.dumps(body), content_type="application/json", **auth)


def token_requester(d, client):
    """``request(name, method, url, body, multipart)``: one API request with a bearer token of the named user of
    the base district ``d`` (one token per user). The ``as_user`` fixture."""
    tokens: dict[str, dict] = {}

    def request(name: str, method: str, url: str, body: dict | None = None, multipart: bool = False):
        if name not in tokens:
            tokens[name] = bearer(d.users[name])
        return api_call(client, tokens[name], method, url, body, multipart)

    return request


def api_routes(tag: str) -> set[tuple[str, str]]:
    """The routes ``(METHOD, path below /api/v1)`` of one router, by its OpenAPI tag: what its matrix must cover."""
    from bihuan.api import api

    return {(method.upper(), path.removeprefix(API_BASE))
            for path, operations in api.get_openapi_schema()["paths"].items()
            for method, operation in operations.items() if tag in operation.get("tags", [])}


def route_id(key) -> str:
    return f"{key[0]} {key[1]}"


def assert_list_queries_fixed(client, user, url_of, most: int) -> None:
    """A list of the API runs as many queries for a page of 20 as for a page of 1 (no query per item), at most
    ``most``; ``url_of(limit)`` is the list's URL for a page size, and the list must hold more than one item."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    auth = bearer(user)
    api_call(client, auth, "GET", f"{API_BASE}/me")  # the token's first use writes last_used_at; not counted
    counts = {}
    for limit in (1, 20):
        with CaptureQueriesContext(connection) as ctx:
            response = api_call(client, auth, "GET", url_of(limit))
        assert response.status_code == 200, response.content
        j = response.json()
        assert len(j["items"]) == min(limit, j["total"]) and j["total"] > 1
        counts[limit] = len(ctx.captured_queries)
    assert counts[1] == counts[20], counts
    assert counts[20] <= most, [q["sql"] for q in ctx.captured_queries]


# --- the clock --------------------------------------------------------------------------------------------

class Clock:
    """A frozen ``timezone.now``: call it for the time, move it with ``advance`` or ``set_local``."""

    def __init__(self, at: datetime):
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def set_local(self, date: dt.date, hour: int, minute: int = 0) -> None:
        self.now = timezone.make_aware(datetime.combine(date, dt.time(hour, minute)))

    def advance(self, seconds: float = 0, **kw) -> None:
        self.now += timedelta(seconds=seconds, **kw)


def freeze_clock(monkeypatch, at: datetime | None = None) -> Clock:
    """Freeze ``django.utils.timezone.now`` (read by actions, the outbox, the worker's claims and tasks)."""
    clock = Clock(at or timezone.now())
    monkeypatch.setattr(timezone, "now", clock)
    return clock
