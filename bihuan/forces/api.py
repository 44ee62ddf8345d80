"""/api/v1/forces/: helpers (masked), teams, posts and their shifts, tasks, disinfection places and logs, and the
unit rollup — scoped through ``forces.access`` like the pages (an outsider gets 404, a role without the permission
403). Lists run a fixed number of queries whatever the page size."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from bihuan.core import reveal
from bihuan.core.api_errors import RefusedOut
from bihuan.core.http import BIG, ApiIn, ApiMoment, ApiText
from bihuan.core.roles import Perm
from bihuan.register.access import access_unit, require, scope_of, scoped
from bihuan.register.api import RevealIn

from . import actions, roster, selectors
from .access import (
    MANAGE,
    VIEW,
    access_helper,
    access_place,
    access_post,
    access_shift,
    access_swap,
    access_task,
    access_team,
)
from .models import (
    DisinfectionLog,
    Helper,
    Place,
    PlaceKind,
    Post,
    PostKind,
    Shift,
    ShiftSwap,
    Task,
    TaskKind,
    Team,
)

router = Router(tags=["forces"])
MAX_LIMIT = 200


class Page(Schema):
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=BIG)
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
    purpose: str
    unit_id: int
    leader_id: int | None


class TeamDetailOut(TeamOut):
    member_ids: list[int]


class TeamIn(ApiIn):
    unit: int
    name: ApiText(100)
    purpose: str = Field("", max_length=200)
    leader_id: int | None = None
    member_ids: list[int] = []


class TeamPatch(ApiIn):
    name: ApiText(100) | None = None
    purpose: str | None = Field(None, max_length=200)
    leader_id: int | None = None
    member_ids: list[int] | None = None


class PostOut(Schema):
    id: int
    name: str
    kind: str
    unit_id: int
    start_hour: int
    end_hour: int
    required: int
    active: bool


class PostIn(ApiIn):
    unit: int
    name: ApiText(100)
    kind: PostKind
    start_hour: int = Field(0, ge=0, le=23)
    end_hour: int = Field(24, ge=1, le=24)
    required: int = Field(1, ge=1, le=50)


class PostPatch(ApiIn):
    name: ApiText(100) | None = None
    kind: PostKind | None = None
    start_hour: int | None = Field(None, ge=0, le=23)
    end_hour: int | None = Field(None, ge=1, le=24)
    required: int | None = Field(None, ge=1, le=50)
    active: bool | None = None


class ShiftOut(Schema):
    id: int
    post_id: int
    helper_id: int | None
    staff_id: int | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    on_at: dt.datetime | None
    off_at: dt.datetime | None


class ShiftIn(ApiIn):
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
    households: list[int]
    places: list[int]


class TaskDetailOut(TaskOut):
    detail: str
    state: str | None
    report: str
    reported_at: dt.datetime | None


class TaskIn(ApiIn):
    unit: int
    kind: TaskKind
    title: ApiText(200)
    detail: str = Field("", max_length=2000)
    due_at: ApiMoment
    helper_id: int | None = None
    team_id: int | None = None
    household_ids: list[int] = []
    place_ids: list[int] = []


class TaskCloseIn(ApiIn):
    note: str = ""


class PlaceOut(Schema):
    id: int
    name: str
    kind: str
    unit_id: int
    every_hours: int
    last_done_at: dt.datetime | None
    active: bool


class PlaceIn(ApiIn):
    unit: int
    name: ApiText(100)
    kind: PlaceKind
    every_hours: int = Field(24, ge=1, le=336)


class PlacePatch(ApiIn):
    name: ApiText(100) | None = None
    kind: PlaceKind | None = None
    every_hours: int | None = Field(None, ge=1, le=336)
    active: bool | None = None


class SwapOut(Schema):
    id: int
    shift_id: int
    from_helper_id: int
    to_helper_id: int
    state: str
    created_at: dt.datetime


class SwapIn(ApiIn):
    to_helper_id: int


class HoursRow(Schema):
    id: int
    name: str
    hours: float


class LogOut(Schema):
    id: int
    place_id: int
    done_by: str
    at: dt.datetime
    agent: str
    concentration: str
    area_m2: int


class RollupOut(Schema):
    unit: int
    figures: dict
    children: dict


class DecisionIn(ApiIn):
    approve: bool
    note: str = ""


def _list(request: HttpRequest, qs, page: Page):
    require(request.user, VIEW)
    qs = scoped(request.user, qs)
    if page.unit is not None:
        qs = qs.filter(access_unit(request.user, page.unit).subtree())
    return list(qs[page.offset:page.offset + page.limit])


@router.get("/forces/helpers", response={200: list[HelperOut]})
def list_helpers(request, page: Query[Page]):
    return _list(request, Helper.objects.order_by("path", "id"), page)


@router.get("/forces/helpers/{helper_id}", response={200: HelperOut})
def get_helper(request, helper_id: int):
    return access_helper(request.user, helper_id)


class HelperRevealOut(Schema):
    id: int
    phone: str
    id_number: str


@router.post("/forces/helpers/{helper_id}/reveal",
             response={200: HelperRevealOut, 429: RefusedOut})
def reveal_helper(request, helper_id: int, body: RevealIn):
    """A helper's full phone and ID number, on purpose, as a resident's (``POST /residents/{id}/reveal``): the
    reason is audited, and the reveals of one user are limited per window (429 past it)."""
    helper = access_helper(request.user, helper_id, Perm.REVEAL_PERSONAL)  # outsiders: 404 before anything else
    values = actions.do_reveal_helper(helper, acting_user=request.user, reason=reveal.reason_of(body.reason.strip()))
    return {"id": helper.pk, **values}


@router.post("/forces/helpers/{helper_id}/decide", response={200: HelperOut})
def decide_helper(request, helper_id: int, body: DecisionIn):
    helper = access_helper(request.user, helper_id, MANAGE)
    return actions.do_decide_report_in(helper, approve=body.approve, note=body.note, acting_user=request.user)


@router.get("/forces/teams", response={200: list[TeamOut]})
def list_teams(request, page: Query[Page]):
    return _list(request, Team.objects.order_by("path", "id"), page)


@router.get("/forces/posts", response={200: list[PostOut]})
def list_posts(request, page: Query[Page]):
    return _list(request, Post.objects.filter(active=True).order_by("path", "id"), page)


@router.get("/forces/posts/{post_id}/shifts", response={200: list[ShiftOut]})
def list_shifts(request, post_id: int):
    post = access_post(request.user, post_id)
    lo, hi = roster.week_bounds(roster.monday_of(timezone.localdate()))
    return list(Shift.objects.filter(post=post, starts_at__lt=hi + dt.timedelta(days=7), ends_at__gt=lo))


@router.post("/forces/posts/{post_id}/shifts", response={201: ShiftOut})
def add_shift(request, post_id: int, body: ShiftIn):
    post = access_post(request.user, post_id, MANAGE)
    helper = access_helper(request.user, body.helper_id)
    return 201, actions.do_assign_shift(post, helper=helper, starts_at=body.starts_at, ends_at=body.ends_at,
                                        acting_user=request.user)


@router.get("/forces/tasks", response={200: list[TaskOut]})
def list_tasks(request, page: Query[Page]):
    return _list(request, Task.objects.order_by("-created_at"), page)


@router.get("/forces/places", response={200: list[PlaceOut]})
def list_places(request, page: Query[Page]):
    return _list(request, Place.objects.filter(active=True).order_by("path", "id"), page)


@router.get("/forces/logs", response={200: list[LogOut]})
def list_logs(request, page: Query[Page]):
    return _list(request, DisinfectionLog.objects.order_by("-at", "-id"), page)


@router.get("/forces/rollup", response={200: RollupOut})
def rollup(request, unit: int | None = None):
    """The unit's field-force figures (and its children's), live."""
    scope = require(request.user, VIEW)
    root = access_unit(request.user, unit) if unit else scope_of(request.user).unit
    units, totals = roster.rollup(root)
    del scope
    return {"unit": root.pk, "figures": totals[root.pk].as_dict(),
            "children": {str(u.id): totals[u.id].as_dict() for u in units if u.parent_id == root.pk}}


# --- create and edit: teams, posts, places, tasks; swaps; hours --------------------------------------------

def _helpers(request, ids) -> list[Helper]:
    return [access_helper(request.user, pk) for pk in ids]


def _team_out(team: Team) -> dict:
    return {"id": team.pk, "name": team.name, "purpose": team.purpose, "unit_id": team.unit_id,
            "leader_id": team.leader_id, "member_ids": sorted(team.members.values_list("pk", flat=True))}


@router.get("/forces/teams/{team_id}", response={200: TeamDetailOut})
def get_team(request, team_id: int):
    return _team_out(access_team(request.user, team_id))


@router.post("/forces/teams", response={201: TeamDetailOut})
def create_team(request, body: TeamIn):
    """Form a team under a unit of one's subtree, with its leader and members (helpers one may see)."""
    require(request.user, MANAGE)
    unit = access_unit(request.user, body.unit)
    leader = access_helper(request.user, body.leader_id) if body.leader_id else None
    team = actions.do_create_team(unit, name=body.name, purpose=body.purpose, leader=leader,
                                  members=_helpers(request, body.member_ids), acting_user=request.user)
    return 201, _team_out(team)


@router.patch("/forces/teams/{team_id}", response={200: TeamDetailOut})
def update_team(request, team_id: int, body: TeamPatch):
    """Rename a team, change its leader or set its members (fields left out are kept)."""
    team = access_team(request.user, team_id, MANAGE)
    leader = access_helper(request.user, body.leader_id) if body.leader_id else None
    members = _helpers(request, body.member_ids) if body.member_ids is not None else None
    team = actions.do_update_team(team, name=body.name, purpose=body.purpose, leader=leader, members=members,
                                  acting_user=request.user)
    return _team_out(team)


@router.post("/forces/posts", response={201: PostOut})
def create_post(request, body: PostIn):
    require(request.user, MANAGE)
    unit = access_unit(request.user, body.unit)
    return 201, actions.do_create_post(unit, name=body.name, kind=body.kind, start_hour=body.start_hour,
                                       end_hour=body.end_hour, required=body.required, acting_user=request.user)


@router.patch("/forces/posts/{post_id}", response={200: PostOut})
def update_post(request, post_id: int, body: PostPatch):
    post = access_post(request.user, post_id, MANAGE)
    fields = {f: getattr(post, f) for f in ("name", "kind", "start_hour", "end_hour", "required", "active")}
    fields.update(body.dict(exclude_none=True))
    return actions.do_update_post(post, **fields, acting_user=request.user)


@router.post("/forces/places", response={201: PlaceOut})
def create_place(request, body: PlaceIn):
    require(request.user, MANAGE)
    unit = access_unit(request.user, body.unit)
    return 201, actions.do_create_place(unit, name=body.name, kind=body.kind, every_hours=body.every_hours,
                                        acting_user=request.user)


@router.patch("/forces/places/{place_id}", response={200: PlaceOut})
def update_place(request, place_id: int, body: PlacePatch):
    place = access_place(request.user, place_id, MANAGE)
    fields = {f: getattr(place, f) for f in ("name", "kind", "every_hours", "active")}
    fields.update(body.dict(exclude_none=True))
    return actions.do_update_place(place, **fields, acting_user=request.user)


def _task_out(task: Task) -> dict:
    loop = actions.task_loop(task)
    return {"id": task.pk, "kind": task.kind, "title": task.title, "unit_id": task.unit_id,
            "helper_id": task.helper_id, "team_id": task.team_id, "due_at": task.due_at,
            "households": task.households, "places": task.places, "detail": task.detail,
            "state": loop.state if loop else None, "report": task.report, "reported_at": task.reported_at}


@router.post("/forces/tasks", response={201: TaskDetailOut})
def create_task(request, body: TaskIn):
    """Give a task to a helper or a team (its loop opens; the unit and the person are told at once)."""
    require(request.user, MANAGE)
    unit = access_unit(request.user, body.unit)
    helper = access_helper(request.user, body.helper_id) if body.helper_id else None
    team = access_team(request.user, body.team_id) if body.team_id else None
    task = actions.do_create_task(unit, kind=body.kind, title=body.title, detail=body.detail, due_at=body.due_at,
                                  helper=helper, team=team, households=body.household_ids, places=body.place_ids,
                                  acting_user=request.user)
    return 201, _task_out(task)


@router.get("/forces/tasks/{task_id}", response={200: TaskDetailOut})
def get_task(request, task_id: int):
    return _task_out(access_task(request.user, task_id))


@router.post("/forces/tasks/{task_id}/close", response={200: TaskDetailOut})
def close_task(request, task_id: int, body: TaskCloseIn):
    task = access_task(request.user, task_id, MANAGE)
    return _task_out(actions.do_close_task(task, note=body.note, acting_user=request.user))


@router.get("/forces/swaps", response={200: list[SwapOut]})
def list_swaps(request, page: Query[Page]):
    """Shift swaps (换班) of the subtree's posts, newest first: requested, accepted (to approve), decided."""
    return _list(request, ShiftSwap.objects.order_by("-created_at", "-id"), page)


@router.post("/forces/shifts/{shift_id}/swaps", response={201: SwapOut})
def request_swap(request, shift_id: int, body: SwapIn):
    """Ask another helper to take a helper's shift, on the holder's behalf (the other person is told at once)."""
    shift = access_shift(request.user, shift_id, MANAGE)
    to_helper = access_helper(request.user, body.to_helper_id)
    return 201, actions.do_request_swap(shift, to_helper=to_helper, acting_user=request.user)


@router.post("/forces/swaps/{swap_id}/decide", response={200: SwapOut})
def decide_swap(request, swap_id: int, body: DecisionIn):
    """Approve (the shift passes to the other helper) or refuse an accepted swap; both people are told."""
    swap = access_swap(request.user, swap_id, MANAGE)
    return actions.do_approve_swap(swap, approve=body.approve, acting_user=request.user)


@router.get("/forces/hours", response={200: list[HoursRow]})
def hours(request, by: str = "helper", unit: int | None = None, days: int = Query(7, ge=1, le=366)):
    """Hours served over the last ``days``, per ``helper``, ``team`` (members' hours wherever they served),
    ``home`` (home organisation, 双报到) or ``unit`` (the posts' own units), most first."""
    from django.http import Http404

    from bihuan.register.models import Unit

    scope = require(request.user, VIEW)
    root = access_unit(request.user, unit) if unit else scope.unit
    if by not in selectors.BY:
        raise Http404("by: helper, team, home or unit")
    now = timezone.now()
    rows = selectors.hours_served(now - dt.timedelta(days=days), now, root, by=by)[:MAX_LIMIT]
    model = {"helper": Helper, "team": Team, "home": Unit, "unit": Unit}[by]
    names = dict(model.objects.filter(pk__in=[k for k, _h in rows]).values_list("pk", "name"))
    return [{"id": k, "name": names.get(k, ""), "hours": h} for k, h in rows]
