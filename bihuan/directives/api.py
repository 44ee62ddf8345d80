"""/api/v1/directives: issue directives, sign / relay / report receipts, mark households, read the live
rollup at any unit, update / cancel / close, export CAP 1.2, and the drill (readiness) report.

Every write goes through ``bihuan.directives.actions`` and every read is scoped through
``bihuan.register.access`` through the lookups pages share (``selectors``). As in the
register API, the object is looked up before the permission is checked: an outsider gets 404 and learns
nothing; an insider whose role lacks the permission gets 403. A refusal of an action (``DirectiveError``,
or a receipt that cannot move to the asked state) is a 400 whose ``field`` names what was wrong.

Reading a directive needs ``view_register`` (its counts are counts of the register). CAP messages are
served as ``application/xml`` (the CAP media type ``application/cap+xml`` is not registered with IANA, and
browsers and most tools only recognise the generic one).

Lists run a fixed number of queries whatever the page size.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from pydantic import ConfigDict

from bihuan.core.api_errors import RefusedOut
from bihuan.core.errors import Refused
from bihuan.core.http import ApiIn, ApiText, download
from bihuan.core.roles import Perm
from bihuan.loops.engine import LoopError
from bihuan.loops.models import Loop
from bihuan.register.access import access_unit, require, scope_of, scoped
from bihuan.register.api import PageParams, UnitRef
from bihuan.register.models import KEY_GROUPS, Unit, UnitKind, subtree_q

from . import actions, cap, drills, rollup, selectors
from .models import Directive, DirectiveStatus, Reach, ReachStatus, Urgency

router = Router(tags=["directives"])

MAX_MARKS = 5000  # household ids in one marking request
MAX_TARGETS = 500

# ---------------------------------------------------------------------------------------------- schemas


class FeedbackFieldIn(ApiIn):
    key: ApiText(100)
    label: str = Field("", max_length=200)
    type: Literal[tuple(sorted(actions.FIELD_TYPES))] = Field(description="number, bool, choice or text")  # type: ignore[valid-type]
    choices: list[str] = []
    required: bool = Field(False, description="a report must answer it")


class FeedbackFieldOut(Schema):
    key: str
    label: str
    type: str
    choices: list[str]
    required: bool = False


class IssueIn(ApiIn):
    title: ApiText(200)
    body: ApiText(20_000)
    urgency: Urgency = Urgency.NORMAL
    scope_unit: int | None = Field(None, description="root of the subtree it goes to (default: your scope)")
    target_kinds: list[UnitKind] = Field([], description="only units of these kinds (and what is below them)")
    target_unit_ids: list[int] = Field([], max_length=MAX_TARGETS, description="only these units")
    household_flag: Literal[("", *KEY_GROUPS)] = Field(  # type: ignore[valid-type]
        "", description="only households with a resident in this key group")
    sign_minutes: int = Field(30, ge=1, le=7 * 24 * 60, description="each level signs within this")
    reach_hours: int = Field(24, ge=1, le=30 * 24, description="every household reached within this")
    reminder_minutes: int = Field(30, ge=1, le=24 * 60)
    reminder_limit: int = Field(3, ge=0, le=20, description="reminders before the parent unit is told")
    feedback_form: list[FeedbackFieldIn] = Field([], max_length=50)
    is_exercise: bool = Field(False, description="a drill (CAP status Exercise)")


class UpdateIn(ApiIn):
    """What changes, at least one of the three (omitted: kept)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})
    title: ApiText(200) = None
    body: ApiText(20_000) = None
    urgency: Urgency = None


class ReasonIn(ApiIn):
    reason: str = Field(min_length=1, max_length=2000)


class CloseIn(ApiIn):
    reason: str = Field("", max_length=2000, description="needed when households are still pending")


class ReportIn(ApiIn):
    answers: dict[str, Any] = Field({}, description="answers to the directive's feedback form, by key")
    note: str = Field("", max_length=2000)


class MarksIn(ApiIn):
    household_ids: list[int] = Field(min_length=1, max_length=MAX_MARKS)
    status: ReachStatus
    method: str = Field("", description="phone, wechat, visit or self (needed for reached)")
    reason: str = Field("", max_length=200, description="needed for unreachable")


class MarksOut(Schema):
    changed: int = Field(description="reach rows that changed (households outside your part are ignored)")


class FanoutOut(Schema):
    state: str
    total: int
    done: int
    percent: int


class ReceiptOut(Schema):
    id: int
    unit: UnitRef
    state: str
    overdue: bool
    ack_due_at: dt.datetime | None
    due_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    started_at: dt.datetime | None
    reported_at: dt.datetime | None
    closed_at: dt.datetime | None
    reminders_sent: int
    escalated_at: dt.datetime | None
    answers: dict[str, Any]
    note: str = Field("", description="the note sent with the current report")
    history: list[dict[str, Any]] = Field([], description="earlier versions of the report, newest first "
                                                          "(answers, note, by, at)")


class DirectiveCountsOut(Schema):
    households: int
    reached: int
    unreachable: int
    pending: int
    percent: float = Field(description="households reached or unreachable, of those in scope")
    units: int = Field(description="receipts in the subtree (the unit's own included)")
    signed: int
    relayed: int
    reported: int
    overdue: int
    state: str = Field(description="the unit's own receipt state (empty when it has none)")
    own_overdue: bool


class DirectiveItem(Schema):
    id: int
    title: str
    urgency: str
    status: str
    is_exercise: bool
    version: int
    issuer_unit: UnitRef
    scope_unit: UnitRef
    issued_at: dt.datetime
    updated_at: dt.datetime | None
    closed_at: dt.datetime | None
    fanout: FanoutOut
    my_receipt: ReceiptOut | None = Field(description="your own unit's receipt, if it has one")


class DirectivePage(Schema):
    total: int
    limit: int
    offset: int
    items: list[DirectiveItem]


class DirectiveDetail(DirectiveItem):
    body: str
    close_reason: str
    target_kinds: list[str]
    target_unit_ids: list[int]
    household_flag: str
    sign_minutes: int
    reach_hours: int
    reminder_minutes: int
    reminder_limit: int
    feedback_form: list[FeedbackFieldOut]
    unit: UnitRef = Field(description="the unit the counts are for")
    counts: DirectiveCountsOut


class UnitRollup(UnitRef):
    parent_id: int | None
    counts: DirectiveCountsOut
    receipt: ReceiptOut | None


class UnitRollupPage(Schema):
    directive_id: int
    parent: UnitRollup
    total: int
    limit: int
    offset: int
    items: list[UnitRollup]


class ReachOut(Schema):
    household_id: int
    code: str
    address: str
    unit_id: int
    status: str
    method: str
    reason: str
    marked_at: dt.datetime | None


class ReachPage(Schema):
    total: int
    limit: int
    offset: int
    items: list[ReachOut]


class ReadinessRowOut(Schema):
    unit_id: int
    parent_id: int | None
    level: int
    path: str
    name: str
    kind: str
    households: int
    reached: int
    receipt_state: str
    signed_at: dt.datetime | None
    seconds_to_sign: float | None = Field(description="from issue to the unit's sign-off")
    seconds_to_50: float | None = Field(description="from issue until half of its households were reached")
    seconds_to_90: float | None
    seconds_to_100: float | None


class ReadinessOut(Schema):
    directive_id: int
    is_exercise: bool
    issued_at: dt.datetime
    rows: list[ReadinessRowOut]


# ---------------------------------------------------------------------------------------------- helpers

REFUSALS = (actions.DirectiveError, LoopError)


def _user(request: HttpRequest):
    return request.auth  # type: ignore[attr-defined]


def _refused(exc: Refused):
    return exc.status, {"detail": str(exc), "field": exc.field or None}


def _unit_ref(u) -> dict:
    return {"id": u.id, "name": u.name, "level": u.level, "kind": u.kind, "path": u.path}


def _receipt(loop: Loop | None, unit=None, now=None) -> dict | None:
    if loop is None:
        return None
    return {
        "id": loop.id, "unit": _unit_ref(unit or loop.owner_unit), "state": loop.state,
        "overdue": loop.is_overdue(now), "ack_due_at": loop.ack_due_at, "due_at": loop.due_at,
        "acknowledged_at": loop.acknowledged_at, "started_at": loop.started_at, "reported_at": loop.reported_at,
        "closed_at": loop.closed_at, "reminders_sent": loop.reminders_sent, "escalated_at": loop.escalated_at,
        "answers": (loop.data or {}).get("answers", {}), "note": (loop.data or {}).get("note", ""),
        "history": (loop.data or {}).get("history", []),
    }


def _item(d: Directive, my_receipt: Loop | None, my_unit: Unit | None) -> dict:
    return {
        "id": d.id, "title": d.title, "urgency": d.urgency, "status": d.status, "is_exercise": d.is_exercise,
        "version": d.version, "issuer_unit": _unit_ref(d.issuer_unit), "scope_unit": _unit_ref(d.scope_unit),
        "issued_at": d.issued_at, "updated_at": d.updated_at, "closed_at": d.closed_at,
        "fanout": {"state": d.fanout_state, "total": d.fanout_total, "done": d.fanout_done,
                   "percent": d.fanout_percent},
        "my_receipt": _receipt(my_receipt, my_unit),
    }


def _directive(request: HttpRequest, id: int, perm: str | None = Perm.VIEW_REGISTER) -> Directive:
    """The directive if the caller may see it (else 404), then the permission (else 403)."""
    directive = selectors.directive_for(_user(request), id)
    if perm:
        require(_user(request), perm)
    return directive


def _receipt_loop(request: HttpRequest, loop_id: int) -> Loop:
    return selectors.receipt_for(_user(request), loop_id)


def _focus(request: HttpRequest, directive: Directive, unit_id: int | None) -> Unit:
    return selectors.focus_unit(_user(request), directive, unit_id)


def _detail(request: HttpRequest, directive: Directive, unit: Unit) -> dict:
    _, totals = rollup.rollup(directive, root=unit)
    mine, my_unit = selectors.own_receipts(_user(request), [directive.pk])
    d = directive
    return {
        **_item(d, mine.get(d.pk), my_unit), "body": d.body, "close_reason": d.close_reason,
        "target_kinds": d.target_kinds, "target_unit_ids": d.target_unit_ids, "household_flag": d.household_flag,
        "sign_minutes": d.sign_minutes, "reach_hours": d.reach_hours, "reminder_minutes": d.reminder_minutes,
        "reminder_limit": d.reminder_limit, "feedback_form": d.feedback_form, "unit": _unit_ref(unit),
        "counts": totals[unit.id].as_dict(),
    }


XML_RESPONSE = {"responses": {200: {"description": "CAP 1.2 XML",
                                      "content": {"application/xml": {"schema": {"type": "string"}}}}}}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_RESPONSE = {"responses": {200: {"description": "Excel workbook",
                                       "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}}}}


# ---------------------------------------------------------------------------------------------- routes


@router.post("", response={201: DirectiveDetail})
def issue_directive(request: HttpRequest, body: IssueIn):
    """Issue a directive from your unit to (part of) its subtree (a department: to any part of the district).
    Receipts open at once for every unit in scope; households are written at once for small scopes, else by
    the worker (see ``fanout``)."""
    user = _user(request)
    scope_unit = access_unit(user, body.scope_unit) if body.scope_unit is not None else None
    targets = sorted(set(body.target_unit_ids))
    if targets and scoped(user, Unit.objects.filter(id__in=targets)).count() != len(targets):
        raise Http404("no such unit in your part of the district")
    try:
        directive = actions.do_issue_directive(
            title=body.title, body=body.body, acting_user=user, urgency=body.urgency.value, scope_unit=scope_unit,
            target_kinds=[k.value for k in body.target_kinds], target_unit_ids=targets,
            household_flag=body.household_flag, sign_minutes=body.sign_minutes, reach_hours=body.reach_hours,
            reminder_minutes=body.reminder_minutes, reminder_limit=body.reminder_limit,
            feedback_form=[f.model_dump() for f in body.feedback_form], is_exercise=body.is_exercise)
    except REFUSALS as exc:
        return _refused(exc)
    directive = Directive.objects.select_related("issuer_unit", "scope_unit").get(pk=directive.pk)
    return 201, _detail(request, directive, directive.scope_unit)


@router.get("", response={200: DirectivePage})
def list_directives(request: HttpRequest, page: Query[PageParams], status: DirectiveStatus | None = None,
                    exercise: bool | None = None):
    """Directives you (or a unit below you) issued, or that reach into your part of the district; newest
    first. Each item carries your own unit's receipt, if it has one."""
    user = _user(request)
    require(user, Perm.VIEW_REGISTER)
    qs = selectors.visible_directives(user).select_related("issuer_unit", "scope_unit").order_by("-issued_at", "-id")
    if status is not None:
        qs = qs.filter(status=status.value)
    if exercise is not None:
        qs = qs.filter(is_exercise=exercise)
    total = qs.count()
    rows = list(qs[page.offset: page.offset + page.limit])
    mine, my_unit = selectors.own_receipts(user, [d.pk for d in rows])
    return {"total": total, "limit": page.limit, "offset": page.offset,
            "items": [_item(d, mine.get(d.pk), my_unit) for d in rows]}


@router.get("/{id}", response={200: DirectiveDetail})
def directive_detail(request: HttpRequest, id: int, unit: int | None = None):
    """A directive with its live counts at ``unit`` (default: the top of what you see of it): households
    reached / unreachable / pending, receipts signed / relayed / reported / overdue in the subtree."""
    directive = _directive(request, id)
    return _detail(request, directive, _focus(request, directive, unit))


@router.get("/{id}/units", response={200: UnitRollupPage})
def directive_units(request: HttpRequest, id: int, page: Query[PageParams], parent: int | None = None):
    """The children of ``parent`` (default: the top of what you see of the directive), each with its counts
    and its own receipt: the drill-down from the district to the grids."""
    directive = _directive(request, id)
    parent_unit = _focus(request, directive, parent)
    units, totals = rollup.rollup(directive, root=parent_unit)
    children = [u for u in units if u.parent_id == parent_unit.id]
    shown = children[page.offset: page.offset + page.limit]
    loops = selectors.receipts_of(directive, [parent_unit.id, *[u.id for u in shown]])
    now = timezone.now()

    def row(u):
        return {**_unit_ref(u), "parent_id": u.parent_id, "counts": totals[u.id].as_dict(),
                "receipt": _receipt(loops.get(u.id), u, now)}

    return {"directive_id": directive.pk, "parent": row(parent_unit), "total": len(children),
            "limit": page.limit, "offset": page.offset, "items": [row(u) for u in shown]}


@router.get("/{id}/households", response={200: ReachPage})
def directive_households(request: HttpRequest, id: int, page: Query[PageParams], unit: int | None = None,
                         status: ReachStatus | None = None):
    """The households of ``unit``'s subtree (default: all you see) with their reach state for this
    directive: a grid worker's list, or the drill-down's last step."""
    directive = _directive(request, id)
    user = _user(request)
    qs = scoped(user, Reach.objects.filter(directive=directive)).select_related("household")
    if unit is not None:
        qs = qs.filter(subtree_q(access_unit(user, unit).path))
    if status is not None:
        qs = qs.filter(status=status.value)
    qs = qs.order_by("path", "household_id")
    total = qs.count()
    rows = list(qs[page.offset: page.offset + page.limit])
    return {"total": total, "limit": page.limit, "offset": page.offset, "items": [
        {"household_id": r.household_id, "code": r.household.code, "address": r.household.address,
         "unit_id": r.unit_id, "status": r.status, "method": r.method, "reason": r.reason, "marked_at": r.marked_at}
        for r in rows]}


def _receipt_action(request: HttpRequest, loop_id: int, act, **kwargs):
    user = _user(request)
    _receipt_loop(request, loop_id)  # outsiders: 404 before the permission check
    try:
        loop = act(loop_id=loop_id, acting_user=user, **kwargs)
    except REFUSALS as exc:
        return _refused(exc)
    return 200, _receipt(Loop.objects.select_related("owner_unit").get(pk=loop.pk))


@router.post("/receipts/{loop_id}/sign", response={200: ReceiptOut})
def sign_receipt(request: HttpRequest, loop_id: int):
    """签收: sign for the directive for the receipt's unit (your own, or one below it). Repeating it is a no-op."""
    return _receipt_action(request, loop_id, actions.do_sign_receipt)


@router.post("/receipts/{loop_id}/relay", response={200: ReceiptOut})
def relay_receipt(request: HttpRequest, loop_id: int):
    """下达: the directive has been passed on to the units below (signs for it too, if not yet signed)."""
    return _receipt_action(request, loop_id, actions.do_relay_receipt)


@router.post("/receipts/{loop_id}/report", response={200: ReceiptOut})
def report_receipt(request: HttpRequest, loop_id: int, body: ReportIn):
    """反馈: the unit's answers to the directive's feedback form (every required field answered, and at least
    one field of a form that has any). Sent again before the issuer closes the directive, it amends the
    report: the new answers count, the earlier version is kept in ``history``. 400 once closed or cancelled."""
    return _receipt_action(request, loop_id, actions.do_report_receipt, answers=body.answers, note=body.note)


@router.get("/receipts/{loop_id}/ack.xml", response={200: None, 409: RefusedOut}, openapi_extra=XML_RESPONSE)
def receipt_ack_xml(request: HttpRequest, loop_id: int):
    """The unit's sign-off as a CAP 1.2 ``Ack`` referencing the directive's message (``application/xml``).
    400 if the unit has not signed yet."""
    loop = _receipt_loop(request, loop_id)
    require(_user(request), Perm.VIEW_REGISTER)
    try:
        xml = cap.ack_xml(loop)
    except REFUSALS as exc:
        return _refused(exc)
    return HttpResponse(xml, content_type="application/xml; charset=utf-8")


@router.post("/{id}/marks", response={200: MarksOut})
def mark_households(request: HttpRequest, id: int, body: MarksIn):
    """Mark households of your part reached (with a method), unreachable (with a reason) or back to pending
    (undo). Households outside your part of the district are left alone."""
    directive = _directive(request, id, perm=None)
    try:
        changed = actions.do_mark_households(
            directive=directive, household_ids=sorted(set(body.household_ids)), status=body.status.value,
            acting_user=_user(request), method=body.method, reason=body.reason)
    except REFUSALS as exc:
        return _refused(exc)
    return 200, {"changed": changed}


def _issuer_action(request: HttpRequest, id: int, act, **kwargs):
    directive = _directive(request, id, perm=None)
    try:
        directive = act(directive=directive, acting_user=_user(request), **kwargs)
    except REFUSALS as exc:
        return _refused(exc)
    directive = Directive.objects.select_related("issuer_unit", "scope_unit").get(pk=directive.pk)
    return 200, _detail(request, directive, _focus(request, directive, None))


@router.post("/{id}/update", response={200: DirectiveDetail})
def update_directive(request: HttpRequest, id: int, body: UpdateIn):
    """A new version of the title, text and/or urgency; everyone already reached is told."""
    if body.title is None and body.body is None and body.urgency is None:
        _directive(request, id, perm=None)
        return _refused(actions.DirectiveError("title: give a new title, body or urgency"))
    return _issuer_action(request, id, actions.do_update_directive, title=body.title, body=body.body,
                          urgency=body.urgency.value if body.urgency else None)


@router.post("/{id}/cancel", response={200: DirectiveDetail})
def cancel_directive(request: HttpRequest, id: int, body: ReasonIn):
    """撤销 with a reason: every open receipt is cancelled and everyone already reached is told."""
    return _issuer_action(request, id, actions.do_cancel_directive, reason=body.reason)


@router.post("/{id}/close", response={200: DirectiveDetail})
def close_directive(request: HttpRequest, id: int, body: CloseIn):
    """销号 by the issuer: without a reason once every household is reached or unreachable, early with one."""
    return _issuer_action(request, id, actions.do_close_directive, reason=body.reason)


@router.get("/{id}/cap.xml", response={200: None, 409: RefusedOut}, openapi_extra=XML_RESPONSE)
def directive_cap_xml(request: HttpRequest, id: int, type: Literal["Alert", "Update", "Cancel"] | None = None):
    """The directive as a CAP 1.2 message (``application/xml``): ``Alert`` (first version), ``Update``
    (current version, referencing the earlier ones) or ``Cancel`` (once cancelled or closed). Default: the
    directive's current message (Cancel when cancelled, Update once updated, else Alert)."""
    directive = _directive(request, id)
    try:
        xml = cap.alert_xml(directive, type or cap.default_msg_type(directive))
    except REFUSALS as exc:
        return _refused(exc)
    return HttpResponse(xml, content_type="application/xml; charset=utf-8")


@router.get("/{id}/readiness", response={200: ReadinessOut})
def directive_readiness(request: HttpRequest, id: int):
    """The drill report: for every unit of the scope, the time from issue to its sign-off and to 50 %, 90 %
    and 100 % of its households reached (null: not yet)."""
    directive = _directive(request, id)
    rows = drills.readiness_report(directive)
    return {"directive_id": directive.pk, "is_exercise": directive.is_exercise, "issued_at": directive.issued_at,
            "rows": [r.as_dict() for r in _within_scope(request, rows)]}


@router.get("/{id}/readiness.xlsx", response={200: None}, openapi_extra=XLSX_RESPONSE)
def directive_readiness_xlsx(request: HttpRequest, id: int):
    """The drill report as an Excel workbook."""
    directive = _directive(request, id)
    rows = _within_scope(request, drills.readiness_report(directive))
    return download(drills.readiness_workbook(directive, rows), f"readiness-{directive.pk}.xlsx",
                    acting_user=_user(request), audit_action="directive.export_readiness", target=directive,
                    changes={"rows": len(rows)})


def _within_scope(request: HttpRequest, rows: list[drills.ReadinessRow]) -> list[drills.ReadinessRow]:
    root = scope_of(_user(request)).root.path
    return [r for r in rows if r.path.startswith(root)]

