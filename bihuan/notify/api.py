"""/api/v1/notify: the caller's own notification preferences, and the group robots of the caller's unit and
the units below it (who may: ``bihuan.notify.access``). Writes go through ``bihuan.notify.actions``; a
refusal is a 400 ``{"detail", "field"}`` (the API's one handler for ``Refused``). A robot's webhook URL and
secret are write-only: answers carry the masked URL and whether the robot signs its requests."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from django.http import HttpRequest
from ninja import Field, Router, Schema

from bihuan.core.http import ApiIn, ApiText, ApiTime
from bihuan.register.models import subtree_q

from .access import access_robot, access_robot_unit, require_robot_admin
from .actions import (
    do_create_robot,
    do_send_robot_test,
    do_set_preferences,
    do_update_robot,
    last_tests,
    preferences_of,
)
from .events import MAX_PREFIXES, PREFIX
from .models import Robot, RobotKind

router = Router(tags=["notify"])


# an event name or prefix (`directive`, `directive.issued`, `loop.reminder:verification`), as events.clean reads it
EventPrefix = Annotated[str, Field(pattern=r"^\s*" + PREFIX.pattern[1:-1] + r"\s*$")]


class PreferencesIO(ApiIn):
    email: bool = Field(True, description="email when SMTP is configured and the account has an address")
    sms: bool = Field(True, description="SMS when the gateway is configured (urgent work goes by SMS anyway)")
    quiet_start: ApiTime | None = Field(None, description="local time, e.g. 22:00; both ends or neither")
    quiet_end: ApiTime | None = Field(None, description="local time, e.g. 07:00")


class TestOut(Schema):
    id: int
    state: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str


class RobotOut(Schema):
    id: int
    unit_id: int
    unit_name: str
    kind: str
    name: str
    webhook_masked: str
    signed: bool
    active: bool
    events: list[str] = Field(description="event-name prefixes that go to the group; empty = every event")
    last_test: TestOut | None


class RobotIn(ApiIn):
    unit_id: int | None = Field(None, description="default: the caller's own unit")
    kind: RobotKind
    name: ApiText(100)
    webhook_url: str = Field(max_length=500, pattern=r"^\s*[Hh][Tt][Tt][Pp][Ss]?://[^/?#@:\s\[\]][^\[\]]*$")
    secret: str = ""
    events: list[EventPrefix] = Field([], max_length=MAX_PREFIXES)


class RobotPatch(ApiIn):
    name: ApiText(100) | None = None
    webhook_url: str | None = Field(None, max_length=500, description="omit or empty to keep the stored one",
                                     pattern=r"^\s*$|^\s*[Hh][Tt][Tt][Pp][Ss]?://[^/?#@:\s\[\]][^\[\]]*$")
    secret: str | None = Field(None, description='omit or empty to keep; "-" removes it')
    events: list[EventPrefix] | None = Field(None, max_length=MAX_PREFIXES)
    active: bool | None = None


def _user(request: HttpRequest):
    return request.auth  # type: ignore[attr-defined]


def _prefs(p) -> dict:
    return {"email": p.email, "sms": p.sms, "quiet_start": p.quiet_start, "quiet_end": p.quiet_end}


def _test(m) -> dict | None:
    if m is None:
        return None
    return {"id": m.pk, "state": m.state, "created_at": m.created_at, "sent_at": m.sent_at,
            "last_error": m.last_error[:500]}


def _robot(r: Robot, tests: dict) -> dict:
    return {"id": r.pk, "unit_id": r.unit_id, "unit_name": r.unit.name, "kind": r.kind, "name": r.name,
            "webhook_masked": r.webhook_masked, "signed": bool(r.secret_hash), "active": r.active,
            "events": r.events, "last_test": _test(tests.get(r.pk))}


@router.get("/notify/preferences", response={200: PreferencesIO})
def get_preferences(request: HttpRequest):
    return 200, _prefs(preferences_of(_user(request)))


@router.put("/notify/preferences", response={200: PreferencesIO})
def put_preferences(request: HttpRequest, body: PreferencesIO):
    p = do_set_preferences(acting_user=_user(request), email=body.email, sms=body.sms,
                           quiet_start=body.quiet_start, quiet_end=body.quiet_end)
    return 200, _prefs(p)


@router.get("/notify/robots", response={200: list[RobotOut]})
def list_robots(request: HttpRequest, unit: int | None = None):
    """The robots of ``unit`` (default: the caller's own unit) and of every unit below it."""
    user = _user(request)
    root = access_robot_unit(user, unit) if unit else require_robot_admin(user).unit
    robots = list(Robot.objects.filter(subtree_q(root.path, field="unit__path")).select_related("unit")
                  .order_by("unit__path", "id")[:1000])
    tests = last_tests([r.pk for r in robots])
    return 200, [_robot(r, tests) for r in robots]


@router.post("/notify/robots", response={201: RobotOut})
def create_robot(request: HttpRequest, body: RobotIn):
    user = _user(request)
    unit = access_robot_unit(user, body.unit_id) if body.unit_id else require_robot_admin(user).unit
    robot = do_create_robot(unit=unit, kind=body.kind, name=body.name, webhook_url=body.webhook_url,
                            secret=body.secret, events=body.events, acting_user=user)
    return 201, _robot(robot, {})


@router.patch("/notify/robots/{id}", response={200: RobotOut})
def update_robot(request: HttpRequest, id: int, body: RobotPatch):
    user = _user(request)
    robot = do_update_robot(access_robot(user, id), acting_user=user, name=body.name, webhook_url=body.webhook_url,
                            secret=body.secret, events=body.events, active=body.active)
    return 200, _robot(robot, last_tests([robot.pk]))


@router.post("/notify/robots/{id}/test", response={202: TestOut})
def test_robot(request: HttpRequest, id: int):
    """Enqueue a test message; poll ``GET /notify/robots`` (``last_test``) for its delivery state."""
    user = _user(request)
    return 202, _test(do_send_robot_test(access_robot(user, id), acting_user=user))
