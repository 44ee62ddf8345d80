"""/api/v1/ for the register: the access matrix over every route, masking, reveal, edits, search, counts."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bihuan.core.models import AuditEntry
from bihuan.core.roles import PERMISSIONS, Perm, Role
from bihuan.register.api import MAX_LIMIT
from bihuan.register.coverage import rollup
from bihuan.register.models import Resident
from bihuan.testing import (
    api_call,
    api_routes,
    assert_list_queries_fixed,
    bearer,
    create_household,
    create_resident,
    create_unit,
    route_id,
)

BASE = "/api/v1"


def branch_a_records(d) -> set[tuple[str, int]]:
    units = {("unit", u.id) for u in (d.township_a, d.community_a, d.compound_a, d.grid_a)}
    return units | {("household", d.household_a.id)} | {("resident", r.id) for r in (d.resident_a, d.resident_a2)}


def unit_ids(j) -> set:
    return {("unit", u["id"]) for u in [j["parent"], *j["items"]]}


def household_ids(j) -> set:
    return {("household", h["id"]) for h in j["items"]}


def resident_ids(j) -> set:
    return {("resident", r["id"]) for r in j["items"]} | {("household", r["household_id"]) for r in j["items"]}


@dataclass(frozen=True)
class Case:
    """How one route is tried. ``url`` names a branch-A object that every insider's scope holds (the grid
    and what hangs on it). List routes also give ``everything`` (the unfiltered list) and ``seen`` (the
    records a response shows); routes about the caller themselves set ``own``."""

    perm: str | None
    url: Callable
    body: dict | None = None
    everything: str | None = None
    seen: Callable | None = None
    own: bool = False


MATRIX: dict[tuple[str, str], Case] = {
    ("GET", "/me"): Case(None, lambda d: f"{BASE}/me", own=True),
    ("GET", "/units"): Case(Perm.VIEW_REGISTER, lambda d: f"{BASE}/units?parent={d.grid_a.id}",
                            everything=f"{BASE}/units?limit={MAX_LIMIT}", seen=unit_ids),
    ("GET", "/units/{id}"): Case(Perm.VIEW_REGISTER, lambda d: f"{BASE}/units/{d.grid_a.id}"),
    ("GET", "/units/{id}/blind-spots"): Case(Perm.VIEW_REGISTER, lambda d: f"{BASE}/units/{d.grid_a.id}/blind-spots"),
    ("GET", "/households"): Case(Perm.VIEW_REGISTER, lambda d: f"{BASE}/households?unit={d.grid_a.id}",
                                 everything=f"{BASE}/households?limit={MAX_LIMIT}", seen=household_ids),
    ("GET", "/households/{id}"): Case(Perm.VIEW_REGISTER, lambda d: f"{BASE}/households/{d.household_a.id}"),
    ("GET", "/residents"): Case(Perm.VIEW_REGISTER, lambda d: f"{BASE}/residents?unit={d.grid_a.id}",
                                everything=f"{BASE}/residents?limit={MAX_LIMIT}", seen=resident_ids),
    ("POST", "/residents/{id}/reveal"): Case(Perm.REVEAL_PERSONAL,
                                             lambda d: f"{BASE}/residents/{d.resident_a.id}/reveal",
                                             body={"reason": "access matrix"}),
    ("PATCH", "/residents/{id}"): Case(Perm.EDIT_REGISTER, lambda d: f"{BASE}/residents/{d.resident_a.id}",
                                       body={"status": "away"}),
}


def test_every_api_route_is_in_the_access_matrix():
    assert api_routes("register") == set(MATRIX), "a route without an access test (or a test for a route that is gone)"


@pytest.mark.parametrize("route", sorted(MATRIX), ids=route_id)
def test_insiders_reach_branch_a_and_outsiders_get_404(district, as_user, route):
    case = MATRIX[route]
    method, url = route[0], case.url(district)
    outcomes = set()
    for name in district.insiders:
        role = district.users[name].staff.role
        expected = 200 if case.perm is None or case.perm in PERMISSIONS[role] else 403
        response = as_user(name, method, url, case.body)
        assert response.status_code == expected, (name, role, response.content)
        outcomes.add(expected)
        if expected == 200 and case.seen:
            assert case.seen(response.json()) & branch_a_records(district), name
        if expected == 200 and case.own:
            assert response.json()["username"] == name
    for name in district.outsiders:
        response = as_user(name, method, url, case.body)
        if case.own:
            assert response.status_code == 200 and response.json()["username"] == name
            continue
        assert response.status_code == 404, (name, response.content)
        assert response.json() == {"detail": response.json()["detail"]}
    assert 200 in outcomes


@pytest.mark.parametrize("route", sorted(k for k, c in MATRIX.items() if c.everything), ids=route_id)
def test_an_outsiders_list_never_contains_branch_a_records(district, as_user, route):
    case = MATRIX[route]
    for name in district.outsiders:
        response = as_user(name, "GET", case.everything)
        assert response.status_code == 200
        seen = case.seen(response.json())
        assert seen, f"{name} sees nothing at all: the test would prove nothing"
        assert not seen & branch_a_records(district), name
    # ... while an insider's unfiltered list does contain them.
    assert case.seen(as_user("township_a", "GET", case.everything).json()) & branch_a_records(district)


def test_the_matrix_includes_a_role_that_is_refused(district):
    refused = [(name, key) for key, case in MATRIX.items() for name in district.insiders
               if case.perm and case.perm not in PERMISSIONS[district.users[name].staff.role]]
    assert ("department", ("POST", "/residents/{id}/reveal")) in refused


def test_outsiders_walking_the_unit_tree_never_meet_branch_a(district, as_user):
    a_units = {i for kind, i in branch_a_records(district) if kind == "unit"}
    for name in district.outsiders:
        todo, seen = [None], set()
        while todo:
            parent = todo.pop()
            url = f"{BASE}/units" + (f"?parent={parent}" if parent else "")
            j = as_user(name, "GET", url).json()
            for item in j["items"]:
                seen.add(item["id"])
                todo.append(item["id"])
            seen.add(j["parent"]["id"])
        assert seen and not seen & a_units, name


@pytest.mark.parametrize("route", sorted(MATRIX), ids=route_id)
def test_every_route_refuses_a_request_without_credentials(district, client, route):
    case = MATRIX[route]
    response = api_call(client, {}, route[0], case.url(district), case.body)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_missing_object_is_a_404_like_an_outsiders(district, as_user):
    assert as_user("commander", "GET", f"{BASE}/households/999999").status_code == 404
    assert as_user("commander", "PATCH", f"{BASE}/residents/999999", {"status": "away"}).status_code == 404


# ---------------------------------------------------------------------------------------- personal data


def clear_values() -> list[str]:
    values = []
    for r in Resident.objects.all():
        values += [v for v in (r.reveal_id_number(), r.reveal_phone()) if v]
    return values


def test_lists_and_details_never_show_clear_id_numbers_or_phones(district, as_user):
    d = district
    urls = [
        f"{BASE}/households", f"{BASE}/households?q=王", f"{BASE}/households/{d.household_a.id}",
        f"{BASE}/households/{d.household_b.id}", f"{BASE}/residents", f"{BASE}/residents?q=5678",
        f"{BASE}/units", f"{BASE}/units/{d.grid_a.id}", f"{BASE}/units/{d.district.id}/blind-spots", f"{BASE}/me",
    ]
    secrets = clear_values()
    assert "13812345678" in secrets
    for url in urls:
        response = as_user("commander", "GET", url)
        assert response.status_code == 200, url
        text = response.content.decode()
        for secret in secrets:
            assert secret not in text, (url, secret)
    detail = as_user("commander", "GET", f"{BASE}/households/{d.household_a.id}").json()
    assert {r["phone_masked"] for r in detail["residents"]} >= {"138****5678"}
    assert all("*" in r["id_masked"] for r in detail["residents"])
    # A PATCH answers with the masked record too.
    patched = as_user("grid_a", "PATCH", f"{BASE}/residents/{d.resident_a.id}", {"phone": "13900001111"})
    assert patched.status_code == 200 and "13900001111" not in patched.content.decode()


def test_reveal_writes_an_audit_row_and_returns_the_full_values(district, as_user):
    r = district.resident_a
    response = as_user("grid_a", "POST", f"{BASE}/residents/{r.id}/reveal", {"reason": "phone verification"})
    assert response.status_code == 200
    assert response.json() == {"id": r.id, "id_number": r.reveal_id_number(), "phone": "13812345678"}
    entry = AuditEntry.objects.filter(action="resident.reveal").get()
    assert entry.actor == district.users["grid_a"]
    assert entry.target_id == str(r.id) and entry.changes["reason"] == "phone verification"
    assert "13812345678" not in json.dumps(entry.changes)


def test_reveal_needs_a_reason(district, as_user):
    url = f"{BASE}/residents/{district.resident_a.id}/reveal"
    assert as_user("grid_a", "POST", url, {"reason": ""}).status_code == 422
    assert as_user("grid_a", "POST", url, {}).status_code == 422
    assert not AuditEntry.objects.filter(action="resident.reveal").exists()


def test_department_staff_may_see_but_not_reveal(district, as_user):
    url = f"{BASE}/residents/{district.resident_a.id}/reveal"
    response = as_user("department", "POST", url, {"reason": "curious"})
    assert response.status_code == 403 and "reveal_personal" in response.json()["detail"]
    assert not AuditEntry.objects.filter(action="resident.reveal").exists()


# ---------------------------------------------------------------------------------------------- edits


def test_patch_changes_status_flags_and_phone_with_one_audit_row(district, as_user):
    r = district.resident_a
    body = {"status": "away", "flags": {"chronic_illness": True}, "phone": "13900001111"}
    response = as_user("grid_a", "PATCH", f"{BASE}/residents/{r.id}", body)
    assert response.status_code == 200, response.content
    j = response.json()
    assert j["status"] == "away" and j["flags"]["chronic_illness"] is True and j["phone_masked"] == "139****1111"
    r.refresh_from_db()
    assert r.status == "away" and r.chronic_illness and r.reveal_phone() == "13900001111"
    entry = AuditEntry.objects.filter(action="resident.update").get()
    assert entry.changes["status"] == ["present", "away"]
    assert "13900001111" not in json.dumps(entry.changes)


def test_patch_sends_only_what_is_given(district, as_user):
    r = district.resident_a2
    response = as_user("grid_a", "PATCH", f"{BASE}/residents/{r.id}", {"flags": {"disabled": True}})
    assert response.status_code == 200
    r.refresh_from_db()
    assert r.disabled and r.relation == "spouse" and r.reveal_phone()  # phone untouched


def test_patch_refuses_a_bad_phone_naming_the_field(district, as_user):
    response = as_user("grid_a", "PATCH", f"{BASE}/residents/{district.resident_a.id}", {"phone": "12345"})
    assert response.status_code == 422  # the schema's pattern
    assert response.json()["detail"][0]["loc"] == ["body", "body", "phone"]
    # the schema names the plain forms: a mobile (+86 or 0086 before it), a landline with its area code
    response = as_user("grid_a", "PATCH", f"{BASE}/residents/{district.resident_a.id}", {"phone": "0086 0351-1234567"})
    assert response.status_code == 422
    response = as_user("grid_a", "PATCH", f"{BASE}/residents/{district.resident_a.id}", {"phone": "0351-1234567"})
    assert response.status_code == 200


@pytest.mark.parametrize("body", [{"status": "vanished"}, {"name_initials": "x"}, {"flags": {"vip": True}}])
def test_patch_rejects_unknown_values_and_fields(district, as_user, body):
    response = as_user("grid_a", "PATCH", f"{BASE}/residents/{district.resident_a.id}", body)
    assert response.status_code == 422


def test_department_staff_may_not_edit(district, as_user):
    response = as_user("department", "PATCH", f"{BASE}/residents/{district.resident_a.id}", {"status": "away"})
    assert response.status_code == 403


# ---------------------------------------------------------------------------------------- units, search


def test_me_names_the_unit_the_scope_and_the_permissions(district, as_user):
    j = as_user("department", "GET", f"{BASE}/me").json()
    assert j["username"] == "department" and j["role"] == "department"
    assert j["unit"]["id"] == district.department.id
    assert j["scope_root"]["id"] == district.district.id  # departments serve the whole district
    assert j["permissions"] == sorted(PERMISSIONS[Role.DEPARTMENT])


def test_units_default_to_the_scope_root_and_its_children_with_rollup_counts(district, as_user):
    j = as_user("township_a", "GET", f"{BASE}/units").json()
    assert j["parent"]["id"] == district.township_a.id
    assert [u["id"] for u in j["items"]] == [district.community_a.id] and j["total"] == 1
    _, totals = rollup(district.township_a)
    assert j["parent"]["counts"] == totals[district.township_a.id].as_dict()
    assert j["items"][0]["counts"] == totals[district.community_a.id].as_dict()
    assert j["items"][0]["counts"]["residents"] == 2


def test_units_are_paginated(district, as_user):
    for i in range(3):
        create_unit(district.community_a, f"扩展小区{i}", "compound")
    j = as_user("community_a", "GET", f"{BASE}/units?limit=2&offset=1").json()
    assert j["total"] == 4 and j["limit"] == 2 and j["offset"] == 1 and len(j["items"]) == 2
    assert as_user("community_a", "GET", f"{BASE}/units?limit={MAX_LIMIT + 1}").status_code == 422


def test_unit_breadcrumb_stops_at_the_top_of_the_scope(district, as_user):
    d = district
    j = as_user("community_a", "GET", f"{BASE}/units/{d.grid_a.id}").json()
    assert [u["id"] for u in j["breadcrumb"]] == [d.community_a.id, d.compound_a.id, d.grid_a.id]
    j = as_user("commander", "GET", f"{BASE}/units/{d.grid_a.id}").json()
    assert [u["id"] for u in j["breadcrumb"]][:2] == [d.district.id, d.office.id]
    assert j["counts"]["households"] == 1 and j["counts"]["responsible"] == 1


def test_blind_spots_list_households_without_a_grid_and_grids_without_a_responsible_person(district, as_user):
    d = district
    stray = create_household(d.compound_a, "锦悦小区无网格户")
    empty_grid = create_unit(d.compound_a, "锦悦小区第2网格", "grid")
    j = as_user("community_a", "GET", f"{BASE}/units/{d.community_a.id}/blind-spots").json()
    assert [h["id"] for h in j["households_without_grid"]] == [stray.id]
    assert [u["id"] for u in j["grids_without_responsible"]] == [empty_grid.id]
    assert as_user("township_b", "GET", f"{BASE}/units/{d.community_a.id}/blind-spots").status_code == 404


@pytest.mark.parametrize("q", ["锦悦", "王建", "wjg", "5678"])
def test_households_are_found_by_address_head_name_initials_and_phone_tail(district, as_user, q):
    j = as_user("commander", "GET", f"{BASE}/households?q={q}").json()
    assert [h["id"] for h in j["items"]] == [district.household_a.id]


def test_households_are_found_by_the_end_of_a_residents_id_number(district, as_user):
    tail = district.resident_a2.reveal_id_number()[-4:]
    j = as_user("commander", "GET", f"{BASE}/households?q={tail}").json()
    assert district.household_a.id in [h["id"] for h in j["items"]]


def test_residents_search_and_unit_filter(district, as_user):
    d = district
    j = as_user("commander", "GET", f"{BASE}/residents?q=lxy").json()
    assert [r["id"] for r in j["items"]] == [d.resident_a2.id]
    assert j["items"][0]["address"] == d.household_a.address
    j = as_user("commander", "GET", f"{BASE}/residents?unit={d.township_b.id}").json()
    assert [r["id"] for r in j["items"]] == [d.resident_b.id]
    # A search never widens the scope.
    assert as_user("rep_b", "GET", f"{BASE}/residents?q=王建国").json()["total"] == 0


# ---------------------------------------------------------------------------------------- query counts


@pytest.fixture
def many_households(district):
    for i in range(25):
        h = create_household(district.grid_a, f"锦悦小区9号楼{i}室")
        create_resident(h, f"测试{i}")
    return district


@pytest.mark.parametrize("path", ["/households", "/residents", "/units"])
def test_lists_run_a_fixed_number_of_queries_whatever_the_page_size(many_households, client, path):
    d = many_households
    unit = f"?parent={d.community_a.id}" if path == "/units" else f"?unit={d.grid_a.id}"
    for i in range(3):
        create_unit(d.community_a, f"扩展小区{i}", "compound")
    assert_list_queries_fixed(client, d.users["commander"], lambda limit: f"{BASE}{path}{unit}&limit={limit}",
                              most=10)


def test_household_detail_runs_a_fixed_number_of_queries(many_households, client, django_assert_max_num_queries):
    d = many_households
    for i in range(10):
        create_resident(d.household_a, f"家人{i}", relation="child")
    auth = bearer(d.users["grid_a"])
    api_call(client, auth, "GET", f"{BASE}/me")
    with django_assert_max_num_queries(6):
        assert api_call(client, auth, "GET", f"{BASE}/households/{d.household_a.id}").status_code == 200


# ---------------------------------------------------------------------------------------------- OpenAPI


def test_openapi_document_lists_every_route_and_the_bearer_scheme(client):
    response = client.get(f"{BASE}/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"] == {"title": "Bihuan API", "version": "1", "description": doc["info"]["description"]}
    assert {(m.upper(), p.removeprefix(BASE)) for p, ops in doc["paths"].items() for m, op in ops.items()
            if "register" in op["tags"]} == set(MATRIX)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["BearerToken"] == {"type": "http", "scheme": "bearer"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["security"], (method, path)
            assert any(code.startswith("2") for code in op["responses"]) and "401" in op["responses"]


def test_openapi_document_is_valid_openapi_3(client):
    try:
        from openapi_spec_validator import validate
    except ImportError:  # pragma: no cover - a dev dependency
        if os.environ.get("CI"):
            raise
        pytest.skip("openapi-spec-validator is not installed (requirements-dev.txt)")
    validate(client.get(f"{BASE}/openapi.json").json())


def test_the_docs_page_is_off(client):
    assert client.get(f"{BASE}/docs").status_code == 404
