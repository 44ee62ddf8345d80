"""/api/v1/forces/: helpers (masked), teams, posts and their shifts, tasks, disinfection places and logs, and the
unit rollup — scoped through ``forces.access`` like the pages (an outsider gets 404, a role without the permission
403). Lists run a fixed number of queries whatever the page size."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from bihuan.core.http import ApiMoment
from bihuan.register.access import access_unit, require, scope_of, scoped

from . import actions, roster
from .access import MANAGE, VIEW, access_helper, access_post
from .models import DisinfectionLog, Helper, Place, Post, Shift, Task, Team

router = Router(tags=["forces"])
MAX_LIMIT = 200


class Page(Schema):
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0)
    unit: int | None = None


class HelperOut(Schema):
    id: int
    name: str
    kind: str
    status: str
    unit_id: int
    phone_masked: str
    id_masked: str
    home_unit_id: int | None
    home_org: str
    party_member: bool
    skills: str


class TeamOut(Schema):
    id: int
    name: str
    unit_id: int
    leader_id: int | None


class PostOut(Schema):
    id: int
    name: str
    kind: str
    unit_id: int
    start_hour: int
    end_hour: int
    required: int


class ShiftOut(Schema):
    id: int
    post_id: int
    helper_id: int | None
    staff_id: int | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    on_at: dt.datetime | None
    off_at: dt.datetime | None


class ShiftIn(Schema):
    helper_id: int
    starts_at: ApiMoment
    ends_at: ApiMoment


class TaskOut(Schema):
    id: int
    kind: str
    title: str
    unit_id: int
    helper_id: int | None
    team_id: int | None
    due_at: dt.datetime


class PlaceOut(Schema):
    id: int
    name: str
    kind: str
    unit_id: int
    every_hours: int
    last_done_at: dt.datetime | None


class LogOut(Schema):
    id: int
    place_id: int
    done_by: str
    at: dt.datetime
    agent: str
    concentration: str
    area_m2: int


class ErrorOut(Schema):
    detail: str


class RefusedOut(ErrorOut):
    field: str | None


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut}
WRITE_ERRORS = {400: RefusedOut, **ERRORS}


class RollupOut(Schema):
    unit: int
    figures: dict
    children: dict


class DecisionIn(Schema):
    approve: bool
    note: str = ""


def _list(request: HttpRequest, qs, page: Page):
    require(request.user, VIEW)
    qs = scoped(request.user, qs)
    if page.unit is not None:
        qs = qs.filter(access_unit(request.user, page.unit).subtree())
    return list(qs[page.offset:page.offset + page.limit])


@router.get("/forces/helpers", response={200: list[HelperOut], **ERRORS})
def list_helpers(request, page: Query[Page]):
    return _list(request, Helper.objects.order_by("path", "id"), page)


@router.get("/forces/helpers/{helper_id}", response={200: HelperOut, **ERRORS})
def get_helper(request, helper_id: int):
    return access_helper(request.user, helper_id)


@router.post("/forces/helpers/{helper_id}/decide", response={200: HelperOut, **WRITE_ERRORS})
def decide_helper(request, helper_id: int, body: DecisionIn):
    helper = access_helper(request.user, helper_id, MANAGE)
    return actions.do_decide_report_in(helper, approve=body.approve, note=body.note, acting_user=request.user)


@router.get("/forces/teams", response={200: list[TeamOut], **ERRORS})
def list_teams(request, page: Query[Page]):
    return _list(request, Team.objects.order_by("path", "id"), page)


@router.get("/forces/posts", response={200: list[PostOut], **ERRORS})
def list_posts(request, page: Query[Page]):
    return _list(request, Post.objects.filter(active=True).order_by("path", "id"), page)


@router.get("/forces/posts/{post_id}/shifts", response={200: list[ShiftOut], **ERRORS})
def list_shifts(request, post_id: int):
    post = access_post(request.user, post_id)
    lo, hi = roster.week_bounds(roster.monday_of(timezone.localdate()))
    return list(Shift.objects.filter(post=post, starts_at__lt=hi + dt.timedelta(days=7), ends_at__gt=lo))


@router.post("/forces/posts/{post_id}/shifts", response={201: ShiftOut, **WRITE_ERRORS})
def add_shift(request, post_id: int, body: ShiftIn):
    post = access_post(request.user, post_id, MANAGE)
    helper = access_helper(request.user, body.helper_id)
    return 201, actions.do_assign_shift(post, helper=helper, starts_at=body.starts_at, ends_at=body.ends_at,
                                        acting_user=request.user)


@router.get("/forces/tasks", response={200: list[TaskOut], **ERRORS})
def list_tasks(request, page: Query[Page]):
    return _list(request, Task.objects.order_by("-created_at"), page)


@router.get("/forces/places", response={200: list[PlaceOut], **ERRORS})
def list_places(request, page: Query[Page]):
    return _list(request, Place.objects.filter(active=True).order_by("path", "id"), page)


@router.get("/forces/logs", response={200: list[LogOut], **ERRORS})
def list_logs(request, page: Query[Page]):
    return _list(request, DisinfectionLog.objects.order_by("-at", "-id"), page)


@router.get("/forces/rollup", response={200: RollupOut, **ERRORS})
def rollup(request, unit: int | None = None):
    """The unit's field-force figures (and its children's), live."""
    scope = require(request.user, VIEW)
    root = access_unit(request.user, unit) if unit else scope_of(request.user).unit
    units, totals = roster.rollup(root)
    del scope
    return {"unit": root.pk, "figures": totals[root.pk].as_dict(),
            "children": {str(u.id): totals[u.id].as_dict() for u in units if u.parent_id == root.pk}}
