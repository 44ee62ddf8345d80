"""/api/v1/staff: the people of the caller's subtree — list, read, appoint, change (and move), deactivate.

Mounted under the register's router with its own OpenAPI tag ``staff``. Reads need ``Perm.VIEW_REGISTER`` and
show masked phones; writes need ``Perm.MANAGE_STAFF`` and go through ``staff_actions`` (which refuse a role
that does not fit the unit or has more power than the caller's, with the 400 ``{"detail", "field"}`` shape). A
person outside the caller's subtree is a 404, looked up before the permission is checked.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from bihuan.core.http import BIG, PHONE_PATTERN, ApiIn, ApiText
from bihuan.core.roles import Perm, Role

from .access import access_staff, access_unit, require
from .models import Language, Staff
from .selectors import staff_in
from .staff_actions import do_create_staff, do_deactivate_staff, do_move_staff, do_update_staff

router = Router(tags=["staff"])
MAX_LIMIT = 200


class StaffUnit(Schema):
    id: int
    name: str
    level: int
    code: str


class StaffOut(Schema):
    id: int
    username: str
    name: str
    role: Role
    role_label: str
    unit: StaffUnit
    phone_masked: str
    language: str
    active: bool
    must_change_password: bool
    households: int = Field(description="households answered for by name (0: the whole grid, for grid roles)")


class StaffPage(Schema):
    total: int
    limit: int
    offset: int
    items: list[StaffOut]


class StaffCreated(StaffOut):
    first_password: str = Field(description="shown once; the person must change it at the first login")


class StaffIn(ApiIn):
    unit_id: int
    username: str = Field(max_length=150, pattern=r"^\s*[\w.@+-]+\s*$", description="letters, digits and @.+-_")
    name: ApiText(50)
    role: Role
    phone: str = Field("", max_length=30, pattern=PHONE_PATTERN)
    email: str = Field("", max_length=254, description="for email notices")
    language: Language = Language.BROWSER
    household_ids: list[int] = Field(default_factory=list, description="grid roles: the households answered for")


class StaffPatchIn(ApiIn):
    name: ApiText(50) | None = None
    phone: str | None = Field(None, max_length=30, pattern=PHONE_PATTERN, description='"" removes the phone')
    email: str | None = Field(None, max_length=254, description='"" removes the address')
    role: Role | None = None
    language: Language | None = None
    household_ids: list[int] | None = None
    unit_id: int | None = Field(None, description="move the person to this unit of your subtree")


class DeactivateIn(ApiIn):
    reason: str = Field("", max_length=200)


class StaffQuery(Schema):
    unit: int | None = None
    role: Role | None = None
    inactive: bool = Field(False, description="include deactivated accounts")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=BIG)


def _user(request: HttpRequest):
    return request.auth  # type: ignore[attr-defined]


def _staff(s: Staff, households: int | None = None) -> dict:
    if households is None:
        households = s.household_count if hasattr(s, "household_count") else s.households.count()
    return {
        "id": s.id, "username": s.user.get_username(), "name": s.name, "role": s.role,
        "role_label": str(Role(s.role).label), "phone_masked": s.phone_masked, "language": s.language,
        "unit": {"id": s.unit.id, "name": s.unit.name, "level": s.unit.level, "code": s.unit.code},
        "active": s.is_active, "must_change_password": s.must_change_password,
        "households": households,
    }


@router.get("", response={200: StaffPage})
def list_staff(request: HttpRequest, q: Query[StaffQuery]):
    """The people of ``unit``'s subtree (default: your scope), phones masked, in a fixed number of queries."""
    user = _user(request)
    unit = access_unit(user, q.unit) if q.unit is not None else None
    scope = require(user, Perm.VIEW_REGISTER)
    qs = staff_in(user, unit or scope.root, role=q.role.value if q.role else "", include_inactive=q.inactive)
    total = qs.count()
    rows = list(qs[q.offset: q.offset + q.limit])
    return {"total": total, "limit": q.limit, "offset": q.offset, "items": [_staff(s) for s in rows]}


@router.get("/{id}", response={200: StaffOut})
def staff_detail(request: HttpRequest, id: int):
    user = _user(request)
    staff = access_staff(user, id)
    require(user, Perm.VIEW_REGISTER)
    return _staff(staff)


@router.post("", response={201: StaffCreated})
def create_staff(request: HttpRequest, body: StaffIn):
    """Appoint a person at a unit of your subtree. The answer holds the first password, once."""
    user = _user(request)
    unit = access_unit(user, body.unit_id)
    staff, password = do_create_staff(unit=unit, username=body.username, name=body.name, role=body.role.value,
                                      phone=body.phone, email=body.email, language=body.language.value,
                                      household_ids=body.household_ids, acting_user=user)
    return 201, {**_staff(staff, len(body.household_ids)), "first_password": password}


@router.patch("/{id}", response={200: StaffOut})
def update_staff(request: HttpRequest, id: int, body: StaffPatchIn):
    """Change a person's name, phone, role, language, households; ``unit_id`` moves them (with ``role`` if the
    old one does not fit the new unit)."""
    user = _user(request)
    staff = access_staff(user, id)
    sent = body.model_dump(exclude_unset=True)
    if sent.get("unit_id") is not None:
        unit = access_unit(user, sent["unit_id"])
        role = body.role.value if body.role else None
        staff = do_move_staff(staff=staff, unit=unit, role=role, acting_user=user)
        sent.pop("role", None)
    sent.pop("unit_id", None)
    changes = {k: (v.value if hasattr(v, "value") else v) for k, v in sent.items() if v is not None}
    if "phone" in sent and sent["phone"] is not None:
        changes["phone"] = sent["phone"]
    if changes:
        staff = do_update_staff(staff=staff, changes=changes, acting_user=user)
    return _staff(access_staff(user, staff.pk))


@router.post("/{id}/deactivate", response={200: StaffOut})
def deactivate_staff(request: HttpRequest, id: int, body: DeactivateIn):
    """Take a person's access away at once; their open loops go back to their unit."""
    user = _user(request)
    staff = access_staff(user, id)
    staff = do_deactivate_staff(staff=staff, reason=body.reason, acting_user=user)
    return _staff(staff)
