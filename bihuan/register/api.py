"""/api/v1/ routes of the register: units with their coverage, households, residents.

Every route is scoped through ``bihuan.register.access`` — lists through ``scoped``, single objects
through ``access_*`` — and never filters by unit itself. A single object is looked up *before* the
permission is checked, so an outsider always gets 404 (and learns nothing) while an insider whose role
lacks the permission gets 403. Lists and details show masked ID numbers and phones only; the full values
come from ``POST /residents/{id}/reveal``, which is audited.

Every list runs a fixed number of queries whatever the page size (related rows are joined, coverage is
one rollup per request).
"""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from pydantic import create_model

from bihuan.core import audit, reveal
from bihuan.core.api_errors import RefusedOut
from bihuan.core.http import BIG, PHONE_PATTERN, ApiIn, ApiText
from bihuan.core.roles import Perm, Role

from . import coverage, privacy
from .access import access_household, access_resident, access_unit, require, scope_of, scoped
from .actions import do_reveal_resident, do_update_resident
from .models import KEY_GROUPS, Household, Relation, Resident, ResidentStatus, Staff, Unit
from .search import search_households, search_residents

router = Router(tags=["register"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Columns a list never needs: ciphertexts and lookup hashes stay in the database.
SEALED = ("id_sealed", "id_hash", "phone_sealed", "phone_hash")


# ---------------------------------------------------------------------------------------------- schemas


class PageParams(Schema):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")
    offset: int = Field(0, ge=0, le=BIG)


class UnitRef(Schema):
    id: int
    name: str
    level: int
    kind: str
    path: str


class BlindSpotCounts(Schema):
    households_without_grid: int
    grids_without_responsible: int
    units_without_staff: int
    compounds_without_cadre: int = Field(description="三无小区: compounds with no property management and no 包保 cadre")
    total: int


class CountsOut(Schema):
    units_below: dict[str, int] = Field(description="number of units below, by level")
    grids: int
    households: int
    residents: int = Field(description="residents present or away (not moved out or deceased)")
    groups: dict[str, int] = Field(description="residents in each key group")
    staff: int
    responsible: int
    blind_spots: BlindSpotCounts


class UnitWithCounts(UnitRef):
    parent_id: int | None
    counts: CountsOut


class UnitPage(Schema):
    parent: UnitWithCounts
    total: int
    limit: int
    offset: int
    items: list[UnitWithCounts]


class UnitDetail(UnitWithCounts):
    code: str
    breadcrumb: list[UnitRef] = Field(description="from the top of your scope down to this unit")


class HouseholdRef(Schema):
    id: int
    code: str
    address: str
    unit: UnitRef


class BlindSpotsOut(Schema):
    unit: UnitRef
    limit: int = Field(description="each list holds at most this many entries")
    households_without_grid: list[HouseholdRef]
    grids_without_responsible: list[UnitRef]
    units_without_staff: list[UnitRef]
    compounds_without_cadre: list[UnitRef]


class HouseholdOut(Schema):
    id: int
    code: str
    kind: str
    address: str
    building: str
    entrance: str
    room: str
    house_number: str
    head_name: str
    member_count: int
    has_grid: bool
    unit: UnitRef
    updated_at: dt.datetime


class HouseholdPage(Schema):
    total: int
    limit: int
    offset: int
    items: list[HouseholdOut]


class ResidentOut(Schema):
    id: int
    household_id: int
    unit_id: int
    name: str
    sex: str
    birth_date: dt.date | None = Field(description="only for roles that may reveal personal data; null otherwise")
    birth_year: int | None = Field(description="null for departments (pseudonymised)")
    age: int | None = Field(description="only for roles that may reveal personal data; null otherwise")
    age_band: str = Field(description="ten-year band computed from the birth year (30–39, 80+)")
    relation: str
    status: str
    id_masked: str = Field(description="141002********1234 for roles that may reveal; **************1234 for "
                                       "others; empty for departments")
    phone_masked: str
    flags: dict[str, bool] = Field(description="key groups: " + ", ".join(KEY_GROUPS))


class ResidentListItem(ResidentOut):
    address: str


class ResidentPage(Schema):
    total: int
    limit: int
    offset: int
    items: list[ResidentListItem]


class HouseholdDetail(HouseholdOut):
    residents: list[ResidentOut]


class MeOut(Schema):
    username: str
    name: str
    role: str
    role_label: str
    unit: UnitRef
    acting_unit: UnitRef = Field(description="the unit your writes act as: your own unit, or the top of a token's "
                                             "subtree when the token is narrowed to a unit below yours")
    scope_root: UnitRef
    permissions: list[str]


class RevealIn(ApiIn):
    reason: ApiText(500) = Field(description="why the full values are needed (audited): one of "
                                    + ", ".join(reveal.REASONS) + " or free text; blank is refused")


class RevealOut(Schema):
    id: int
    id_number: str
    phone: str


# One optional boolean per key group, generated from KEY_GROUPS so the two never drift apart.
ResidentFlagsIn = create_model(
    "ResidentFlagsIn", __base__=ApiIn, **{group: (bool | None, None) for group in KEY_GROUPS}
)


class ResidentPatchIn(ApiIn):
    status: ResidentStatus | None = None
    relation: Relation | None = None
    flags: ResidentFlagsIn | None = None  # type: ignore[valid-type]
    phone: str | None = Field(None, max_length=30, pattern=PHONE_PATTERN,
                              description='a Chinese mobile or landline; "" removes the phone')


# ---------------------------------------------------------------------------------------------- helpers


def _user(request: HttpRequest):
    return request.auth  # type: ignore[attr-defined]


def _unit_ref(u) -> dict:
    """Works for Unit objects and coverage.UnitRow alike."""
    return {"id": u.id, "name": u.name, "level": u.level, "kind": u.kind, "path": u.path}


def _unit_with_counts(u, totals: dict[int, coverage.Counts]) -> dict:
    return {**_unit_ref(u), "parent_id": u.parent_id, "counts": totals[u.id].as_dict()}


def _resident(r: Resident, view: str) -> dict:
    """One resident as the caller's view allows (``privacy``: full, masked or pseudonymised)."""
    return {
        "id": r.id, "household_id": r.household_id, "unit_id": r.unit_id, "sex": r.sex,
        "relation": r.relation, "status": r.status, **privacy.resident_fields(r, view),
        "flags": {group: getattr(r, group) for group in KEY_GROUPS},
    }


def _household(h: Household, view: str) -> dict:
    return {
        "id": h.id, "code": h.code, "kind": h.kind, **privacy.household_fields(h, view),
        "member_count": h.member_count, "has_grid": h.has_grid, "unit": _unit_ref(h.unit),
        "updated_at": h.updated_at,
    }


def _view(request: HttpRequest) -> str:
    return privacy.view_of(scope_of(_user(request)))


def _within(request: HttpRequest, unit_id: int | None) -> Unit:
    """The unit a list is restricted to: the given one (if the caller may see it) or the scope's root."""
    user = _user(request)
    unit = access_unit(user, unit_id) if unit_id is not None else None  # outsiders: 404 first
    scope = require(user, Perm.VIEW_REGISTER)
    return unit or scope.root


def _page(qs, page: PageParams) -> tuple[int, list]:
    return qs.count(), list(qs[page.offset: page.offset + page.limit])


# ---------------------------------------------------------------------------------------------- routes


@router.get("/me", response={200: MeOut})
def me(request: HttpRequest):
    """Who the caller is: their unit, the top of what they see, and what their role may do."""
    user = _user(request)
    scope = scope_of(user)
    staff = Staff.objects.filter(user=user).only("name").first()
    name = staff.name if staff else (user.get_full_name() or user.get_username())
    return {
        "username": user.get_username(), "name": name, "role": scope.role,
        "role_label": str(Role(scope.role).label) if scope.role in Role.values else scope.role,
        "unit": _unit_ref(scope.own_unit), "acting_unit": _unit_ref(scope.unit), "scope_root": _unit_ref(scope.root),
        "permissions": sorted(scope.perms),
    }


@router.get("/units", response={200: UnitPage})
def list_units(request: HttpRequest, page: Query[PageParams], parent: int | None = None):
    """The children of ``parent`` (default: the top of your scope), each with its coverage counts."""
    parent_unit = _within(request, parent)
    # One rollup for the whole request. Rolling up the parent's subtree gives the same counts for it and
    # its children as rolling up the whole scope, with less work.
    units, totals = coverage.rollup(parent_unit)
    children = [u for u in units if u.parent_id == parent_unit.id]
    return {
        "parent": _unit_with_counts(parent_unit, totals),
        "total": len(children), "limit": page.limit, "offset": page.offset,
        "items": [_unit_with_counts(u, totals) for u in children[page.offset: page.offset + page.limit]],
    }


@router.get("/units/{id}", response={200: UnitDetail})
def unit_detail(request: HttpRequest, id: int):
    """A unit with its breadcrumb (within your scope) and its coverage counts."""
    user = _user(request)
    unit = access_unit(user, id)
    scope = require(user, Perm.VIEW_REGISTER)
    _, totals = coverage.rollup(unit)
    breadcrumb = [a for a in unit.ancestors() if scope.contains(a.path)]
    return {**_unit_with_counts(unit, totals), "code": unit.code, "breadcrumb": [_unit_ref(a) for a in breadcrumb]}


@router.get("/units/{id}/blind-spots", response={200: BlindSpotsOut})
def unit_blind_spots(request: HttpRequest, id: int):
    """Households without a grid, grids without a responsible person, units without staff, compounds with no
    property management and no 包保 cadre (盲区)."""
    user = _user(request)
    unit = access_unit(user, id)
    require(user, Perm.VIEW_REGISTER)
    limit = 200
    spots = coverage.blind_spot_lists(unit, limit=limit)
    view = _view(request)
    return {
        "unit": _unit_ref(unit), "limit": limit,
        "households_without_grid": [
            {"id": h.id, "code": h.code, "address": privacy.household_fields(h, view)["address"],
             "unit": _unit_ref(h.unit)}
            for h in spots["households_without_grid"]
        ],
        "grids_without_responsible": [_unit_ref(u) for u in spots["grids_without_responsible"]],
        "units_without_staff": [_unit_ref(u) for u in spots["units_without_staff"]],
        "compounds_without_cadre": [_unit_ref(u) for u in spots["compounds_without_cadre"]],
    }


@router.get("/households", response={200: HouseholdPage})
def list_households(request: HttpRequest, page: Query[PageParams], unit: int | None = None, q: str = ""):
    """Households in ``unit``'s subtree (default: your scope). ``q`` searches address, head name, pinyin
    initials, and — given four characters — the end of any resident's phone or ID number."""
    within = _within(request, unit)
    view = _view(request)
    qs = scoped(_user(request), Household.objects.select_related("unit")).filter(within.subtree())
    total, rows = _page(privacy.search(search_households, qs, q, view), page)
    audit.bulk_read(actor=_user(request), what="api.households", count=len(rows),
                    filters={"unit": within.pk, "q": q, "offset": page.offset, "limit": page.limit})
    return {"total": total, "limit": page.limit, "offset": page.offset,
            "items": [_household(h, view) for h in rows]}


@router.get("/households/{id}", response={200: HouseholdDetail})
def household_detail(request: HttpRequest, id: int):
    """A household and its residents (masked)."""
    user = _user(request)
    household = access_household(user, id)
    require(user, Perm.VIEW_REGISTER)
    residents = household.residents.defer(*SEALED).order_by("id")
    view = _view(request)
    return {**_household(household, view), "residents": [_resident(r, view) for r in residents]}


@router.get("/residents", response={200: ResidentPage})
def list_residents(request: HttpRequest, page: Query[PageParams], unit: int | None = None, q: str = ""):
    """Residents in ``unit``'s subtree (default: your scope), masked. ``q`` searches name, pinyin
    initials, and — given four characters — the end of the phone or ID number."""
    within = _within(request, unit)
    view = _view(request)
    qs = scoped(_user(request), Resident.objects.select_related("household").defer(*SEALED)).filter(
        within.subtree()
    )
    total, rows = _page(privacy.search(search_residents, qs, q, view), page)
    audit.bulk_read(actor=_user(request), what="api.residents", count=len(rows),
                    filters={"unit": within.pk, "q": q, "offset": page.offset, "limit": page.limit})
    return {
        "total": total, "limit": page.limit, "offset": page.offset,
        "items": [{**_resident(r, view), "address": privacy.household_fields(r.household, view)["address"]}
                  for r in rows],
    }


@router.post("/residents/{id}/reveal", response={200: RevealOut, 429: RefusedOut})
def reveal_resident(request: HttpRequest, id: int, body: RevealIn):
    """The full ID number and phone of one resident, on purpose: the read is audited with your reason."""
    user = _user(request)
    access_resident(user, id)  # outsiders: 404 before anything else
    values = do_reveal_resident(resident_id=id, acting_user=user, reason=reveal.reason_of(body.reason.strip()))
    return {"id": id, **values}


@router.patch("/residents/{id}", response={200: ResidentOut})
def update_resident(request: HttpRequest, id: int, body: ResidentPatchIn):
    """Change a resident's status, relation, key-group flags and/or phone (audited)."""
    user = _user(request)
    resident = access_resident(user, id)
    sent = body.model_dump(exclude_unset=True)
    changes: dict = {}
    for field in ("status", "relation"):
        if sent.get(field) is not None:
            changes[field] = str(getattr(body, field).value)
    for group, value in (sent.get("flags") or {}).items():
        if value is not None:
            changes[group] = bool(value)
    if "phone" in sent:
        changes["phone"] = sent["phone"] or ""
    resident = do_update_resident(resident=resident, changes=changes, acting_user=user)
    return _resident(resident, _view(request))


# /staff: the people of the caller's subtree (its own module and OpenAPI tag).
from .staff_api import router as staff_router  # noqa: E402

router.add_router("/staff", staff_router)
