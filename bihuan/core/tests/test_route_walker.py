"""Bad input never gives a 500: every URL pattern of the project, walked anonymously and as a user of every role,
fed the inputs an attacker tries first — a non-ASCII digit in a link (``/r/²-x/``), ids beyond 64 bits and
``1e20``, dates outside any sane window (9999-12-31, 0001-01-01), words where numbers belong, NUL characters —
in the path, the query string and a posted form. Whatever the page says (400, 403, 404, a form error), it is
never a server error."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

HUGE = "9223372036854775808"  # one beyond a signed 64-bit column
E20 = "1e20"
# every parameter name a view reads, fed each bad value at once
PARAMS = (
    "unit page q note date next reason resident week all within type token title status state start row result "
    "report place phone name method level kind id_number household group end done day confirm concentration codes "
    "case building at_home area_m2 agent action website vehicle_type value username user unit_id to_level text task "
    "source skills site_room site_address since shift sha256 service seed section save_mapping role query plate "
    "party_member other opens on language label key item inactive home_unit home_org home helper effective_to "
    "duty done_by directive days closes clear_phone cancel body b availability approve active offset limit from to "
    "id ids households units deadline due period date_from date_to month year count size"
).split()
# "²" is a digit to str.isdigit() yet not to int(); 1e20 and 2**63 overflow a 64-bit column; the dates overflow
# the calendar as soon as a day or a year is added to or taken from them
BAD_VALUES = {
    "superscript": "²",
    "huge": HUGE,
    "e20": E20,
    "far_future": "9999-12-31",
    "far_past": "0001-01-01",
}
FEW = ("superscript", "far_future")  # what the other roles are fed (the commander gets every case)
INT_KWARGS = (HUGE, "100000000000000000000")
STR_KWARGS = ("²-x", HUGE + "-x")


def _patterns(resolver=None, prefix: str = ""):
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            yield from _patterns(p, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _urls(route: str) -> list[str]:
    """Concrete paths for a route: each converter filled with every bad value of its kind (others with 1)."""
    if route.startswith("api/v1/"):
        route = re.sub(r"<(\w+)>", r"<int:\1>", route)  # the API's path parameters are ids
    slots = CONVERTER.findall(route)
    if not slots:
        return ["/" + route]
    urls = []
    for i, (kind, _) in enumerate(slots):
        values = STR_KWARGS if kind in ("str", "slug", "path", "") else INT_KWARGS
        for value in values:
            n = iter(range(len(slots)))

            def fill(m, value=value, i=i, n=n):
                j = next(n)
                if j == i:
                    return value
                return "abc" if (m.group(1) or "str") in ("str", "slug", "path") else "1"

            urls.append("/" + CONVERTER.sub(fill, route))
    return sorted(set(urls))


ROUTES = sorted(set(_patterns()))
USERS = [None, "commander", "department", "township_a", "community_a", "grid_a"]


def _api_methods() -> dict[str, set[str]]:
    from bihuan.api import api

    return {path.lstrip("/"): {m for m in ops if m != "get"} for path, ops in api.get_openapi_schema()["paths"].items()}


def _query(value: str) -> dict:
    return {name: value for name in PARAMS}


def _check(response, what: str, failures: list) -> None:
    if response.status_code >= 500:
        error = response.exc_info[1] if getattr(response, "exc_info", None) else ""
        failures.append(f"{what}: {response.status_code} {error!r}"[:300])


@pytest.mark.parametrize("username", [u if u in (None, "commander") else pytest.param(u, marks=pytest.mark.slow)
                                      for u in USERS], ids=lambda u: u or "anonymous")
def test_no_route_answers_bad_input_with_a_server_error(client, district, username):
    from django.db import connection

    if username not in (None, "commander") and connection.vendor != "sqlite":
        # what the database itself refuses (ids beyond 64 bits, NUL) is walked as anonymous and as the commander,
        # every case, on both databases; the other roles add their own permission branches, which are Python
        # and the same on either, so they are walked once, on SQLite
        pytest.skip("the other roles are walked on SQLite")
    client.raise_request_exception = False
    user = district.users[username] if username else None
    cases = BAD_VALUES if username in (None, "commander") else {k: BAD_VALUES[k] for k in FEW}
    api_methods = _api_methods()
    failures: list[str] = []
    token = {}
    if user is not None:
        from bihuan.testing import bearer

        token = bearer(user)
        client.force_login(user)
    for route in ROUTES:
        if user is not None and ("logout" in route or "password" in route):
            client.force_login(user)  # the last route may have ended the session
        api = route.startswith("api/v1/")
        headers = token if api else {}
        for url in _urls(route):
            _check(client.get(url, **headers), f"GET {url}", failures)
        # the query and the form: every parameter name a view reads, each bad value in turn (path ids are 1)
        url = "/" + CONVERTER.sub(lambda m: "abc" if m.group(1) in ("str", "slug", "path") else "1",
                                  re.sub(r"<(\w+)>", r"<int:\1>", route) if api else route)
        methods = {"post", "put", "patch", "delete"} & api_methods.get(url.removeprefix("/api/v1"), set()) if api \
            else {"post"}
        for case, value in cases.items():
            _check(client.get(url, _query(value), **headers), f"GET {url} ?{case}", failures)
            if not api:
                _check(client.post(url, _query(value)), f"POST {url} {case}", failures)
        if api:
            for method in methods:
                for case in ("huge", "e20") if username in (None, "commander") else ("e20",):
                    number = 1e20 if case == "e20" else int(HUGE)
                    body = {name: number for name in PARAMS}
                    _check(getattr(client, method)(url, body, content_type="application/json", **headers),
                           f"{method.upper()} {url} json {case}", failures)
    assert not failures, "\n".join(failures)


def test_nul_characters_are_refused_before_any_view(client, district):
    client.force_login(district.users["commander"])
    assert client.get("/residents/", {"q": "a\x00b"}).status_code == 400
    assert client.post("/search/", {"q": "a\x00b"}).status_code == 400
    assert client.get("/r/1-a%00b/").status_code in (400, 404)
    from bihuan.testing import bearer

    response = client.post("/api/v1/directives", '{"title": "a\\u0000b"}', content_type="application/json",
                           **bearer(district.users["commander"]))
    assert response.status_code == 400


def test_ids_beyond_64_bits_in_the_path_are_not_found(client, district):
    client.force_login(district.users["commander"])
    assert client.get(f"/control/cases/{HUGE}/").status_code == 404
    assert client.get("/units/100000000000000000000/").status_code == 404
    assert client.get(f"/r/{HUGE}-x/").status_code == 404
