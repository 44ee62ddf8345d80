"""/api/v1/inspections: plans (the district command only), visits, findings and their rectification, and the weekly
scores, scoped through ``bihuan.inspections.access`` like the pages: a planned visit is a 404 to everyone but the
command and the visit's group; an object outside the caller's view is a 404; a refusal is a 400 with its field.
Lists run a fixed number of queries whatever the page size."""

from __future__ import annotations

import datetime as dt

from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Field, File, Form, Query, Router, Schema
from ninja.files import UploadedFile

from bihuan.core.http import ApiDay, ApiIn
from bihuan.register.access import access_unit
from bihuan.register.api import PageParams

from . import access, actions, planning, scoring, selectors
from .models import InspectionGroup, Plan

router = Router(tags=["inspections"])


class PlanIn(ApiIn):
    group: int
    week_start: ApiDay
    seed: int | None = Field(None, ge=0, le=2**53, description="kept for audit; random if not given")


class VisitOut(Schema):
    id: int
    group: int
    plan: int | None
    target_kind: str
    unit: int
    responsible_unit: int
    label: str
    weight: float
    planned_for: dt.date
    state: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class PlanOut(Schema):
    id: int
    group: int
    week_start: dt.date
    seed: int
    as_of: dt.datetime
    candidates: int
    weights_digest: str
    visits: list[VisitOut]


class VisitPage(Schema):
    total: int
    items: list[VisitOut]


class FindingOut(Schema):
    id: int
    visit: int
    unit: int
    item_key: str
    text: str
    severity: str
    repeat_of: int | None
    loop: int | None
    state: str
    due_at: dt.datetime | None
    returns: int
    created_at: dt.datetime


class FindingPage(Schema):
    total: int
    items: list[FindingOut]


class FindingReasonIn(ApiIn):
    reason: str = Field(min_length=1, max_length=300)


class ScoreOut(Schema):
    unit: int
    name: str
    level: int
    score: float | None
    rank: int | None
    counts: dict[str, list[int]]


class ScoresOut(Schema):
    week_start: dt.date
    rules_version: int
    weights: dict[str, float]
    items: list[ScoreOut]


def _visit(v) -> dict:
    return {"id": v.pk, "group": v.group_id, "plan": v.plan_id, "target_kind": v.target_kind, "unit": v.unit_id,
            "responsible_unit": v.responsible_unit_id, "label": v.label, "weight": v.weight,
            "planned_for": v.planned_for, "state": v.state, "started_at": v.started_at, "finished_at": v.finished_at}


def _finding(f, now) -> dict:
    return {"id": f.pk, "visit": f.visit_id, "unit": f.unit_id, "item_key": f.item_key, "text": f.text,
            "severity": f.severity, "repeat_of": f.repeat_of_id, "loop": f.loop_id,
            "state": selectors.finding_state(f.loop, now), "due_at": f.loop.due_at if f.loop else None,
            "returns": f.returns, "created_at": f.created_at}


def _plan(p: Plan) -> dict:
    return {"id": p.pk, "group": p.group_id, "week_start": p.week_start, "seed": p.seed, "as_of": p.as_of,
            "candidates": p.candidates, "weights_digest": p.weights_digest,
            "visits": [_visit(v) for v in p.visits.all()]}


@router.get("/plans", response={200: list[PlanOut]})
def list_plans(request: HttpRequest, week_start: ApiDay | None = None):
    """The plans of a week (this week by default): the district command only."""
    access.require_command(request.user)
    week = planning.monday(week_start or timezone.localdate())
    return [_plan(p) for p in Plan.objects.filter(week_start=week).prefetch_related("visits")]


@router.post("/plans", response={201: PlanOut})
def draw_plan(request: HttpRequest, body: PlanIn):
    access.require_command(request.user)
    group = InspectionGroup.objects.filter(pk=body.group).first()
    if group is None:
        raise Http404("no such group")
    plan = actions.do_draw_plan(group, week_start=body.week_start, seed=body.seed, acting_user=request.user)
    return 201, _plan(Plan.objects.prefetch_related("visits").get(pk=plan.pk))


@router.get("/visits", response={200: VisitPage})
def list_visits(request: HttpRequest, page: Query[PageParams], state: str = ""):
    qs = access.visible_visits(request.user).order_by("-planned_for", "-id")
    if state:
        qs = qs.filter(state=state)
    return {"total": qs.count(), "items": [_visit(v) for v in qs[page.offset:page.offset + page.limit]]}


@router.get("/visits/{visit_id}", response={200: VisitOut})
def get_visit(request: HttpRequest, visit_id: int):
    return _visit(access.access_visit(request.user, visit_id))


@router.post("/visits/{visit_id}/start", response={200: VisitOut})
def start_visit(request: HttpRequest, visit_id: int):
    visit = access.access_visit(request.user, visit_id)
    return _visit(actions.do_start_visit(visit, acting_user=request.user))


@router.get("/findings", response={200: FindingPage})
def list_findings(request: HttpRequest, page: Query[PageParams], state: str = "all", severity: str = "",
                  unit: int | None = None):
    """Findings in a state (open, overdue, reported, closed, all), of a severity, under a unit of the caller's view."""
    qs = access.visible_findings(request.user).select_related("loop")
    rows = selectors.finding_rows(qs, state, severity, access_unit(request.user, unit) if unit else None)
    now = timezone.now()
    return {"total": len(rows), "items": [_finding(f, now) for f, _s in rows[page.offset:page.offset + page.limit]]}


@router.get("/findings/{finding_id}", response={200: FindingOut})
def get_finding(request: HttpRequest, finding_id: int):
    return _finding(access.access_finding(request.user, finding_id), timezone.now())


@router.post("/findings/{finding_id}/report", response={200: FindingOut})
def report_finding(request: HttpRequest, finding_id: int, text: Form[str], photo: File[UploadedFile]):
    """The responsible unit reports its rectification with a photo (multipart: ``text``, ``photo``)."""
    f = access.access_finding(request.user, finding_id)
    actions.do_report_rectification(f, text=text, photo=photo, acting_user=request.user)
    return _finding(access.access_finding(request.user, finding_id), timezone.now())


@router.post("/findings/{finding_id}/close", response={200: FindingOut})
def close_finding(request: HttpRequest, finding_id: int):
    f = access.access_finding(request.user, finding_id)
    actions.do_close_rectification(f, acting_user=request.user)
    return _finding(access.access_finding(request.user, finding_id), timezone.now())


@router.post("/findings/{finding_id}/return", response={200: FindingOut})
def return_finding(request: HttpRequest, finding_id: int, body: FindingReasonIn):
    f = access.access_finding(request.user, finding_id)
    actions.do_return_rectification(f, reason=body.reason, acting_user=request.user)
    return _finding(access.access_finding(request.user, finding_id), timezone.now())


@router.get("/scores", response={200: ScoresOut})
def scores(request: HttpRequest, week_start: ApiDay | None = None, level: int | None = Query(None, ge=1, le=6)):
    """Every unit of the caller's view (of ``level`` if given) with its counts, score and rank in its level."""
    root = access.score_root(request.user)
    week = planning.monday(week_start or timezone.localdate())
    units, rules = scoring.score_week(week, root=root if root.level > 1 else None)
    items = [{"unit": u.unit_id, "name": u.name, "level": u.level, "score": u.score, "rank": u.rank,
              "counts": u.counts} for u in units if level is None or u.level == level]
    return {"week_start": week, "rules_version": rules.version,
            "weights": {k: float(w) for k, w in rules.weights.items()}, "items": items}
