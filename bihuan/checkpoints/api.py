"""/api/v1/checkpoints: for a checkpoint's own app or a gate scanner — post a registration (a vehicle with its
people, matched and pushed as the page does), read a checkpoint's registrations (masked), the day's self-reports
of one's part of the district and a campaign's screening answers, and answer for a household.

Scoped through ``bihuan.register.access``: an outsider gets 404 (the object is looked up first), an insider
whose role lacks the permission 403. Registrations need ``register_checkpoint``; self-reports ``verify_push``;
campaign answers ``mark_reach``. Personal values are masked; nothing clear ever leaves.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema
from pydantic import BaseModel

from bihuan.core.api_auth import SessionWithCsrf
from bihuan.core.http import ApiDay, ApiIn, ApiInPlain, ApiText
from bihuan.core.roles import Perm
from bihuan.pushes import report as push_report
from bihuan.register.access import access_household, require, scope_of, scoped
from bihuan.register.models import subtree_q

from . import actions, gate, selectors
from .models import Checkpoint, HealthCode, ScreeningAnswer, SelfReport, VehicleType

router = Router(tags=["checkpoints"])


class CheckpointOut(Schema):
    id: int
    name: str
    kind: str
    unit_id: int
    hours: str


class PersonIn(ApiInPlain):  # plain pydantic: no ninja root validator on the hot path
    name: str = ""
    id_number: str = ""
    phone: str = ""
    report: str = Field("", description="a self-report's receipt code: the person is taken from it")
    origin: str = ""
    destination: str = ""
    destination_unit: int | None = None
    temperature: str = ""
    health_code: HealthCode = Field(HealthCode.GREEN, description=f"one of {HealthCode.values}")
    test_hours: int | None = Field(None, description="a negative test within this many hours; none: no proof")
    note: str = ""


class RegistrationIn(ApiInPlain):
    token: ApiText(40) = Field(..., description="the client's one-time key: the same token again returns the same "
                                        "registration (a retried request creates nothing)")
    vehicle_type: VehicleType | Literal[""] = Field("", description=f"one of {VehicleType.values} ('' = on foot)")
    plate: str = ""
    people: list[PersonIn] = Field(..., description="the driver first, then the passengers")


class TravellerOut(BaseModel):
    id: int
    seat: str
    name: str
    id_masked: str
    phone_masked: str
    origin: str
    destination: str
    temperature: float | None
    health_code: str
    risk_level: str
    reasons: str
    abnormal: bool
    resident: bool
    self_reported: bool
    pushed_person_id: int | None


class RegistrationOut(BaseModel):
    id: int
    created: bool = False
    checkpoint_id: int
    vehicle_type: str
    plate: str
    registered_at: dt.datetime
    persons: int
    from_risk: int
    to_verify: int
    abnormal: int
    travellers: list[TravellerOut]


class SelfReportOut(Schema):
    id: int
    code: str
    name: str
    id_masked: str
    phone_masked: str
    origin: str
    arrival_date: dt.date
    destination: str
    status: str
    pushed_person_id: int | None
    created_at: dt.datetime


class AnswerIn(ApiIn):
    present: int = Field(..., ge=0, le=30)
    arrived: list[dict] = Field([], description='[{"name", "from", "phone"}] arrived since the campaign\'s day')
    fever: bool = False
    elderly_alone: bool = False
    needs: str = ""
    member_change: str = ""
    adds: list[dict] = Field([], description='[{"name", "id_number", "phone", "relation"}] people moving in '
                                             "(proposed; the register changes when the grid confirms)")
    leaves: list[dict] = Field([], description='[{"resident_id", "status": away|moved_out|deceased}] members '
                                               "who left (proposed likewise)")


class AnswerOut(Schema):
    id: int
    household_id: int
    unit_id: int
    present: int
    arrivals: int
    fever: bool
    elderly_alone: bool
    needs: str
    via: str
    answered_at: dt.datetime


def _registration_out(r, created: bool = False) -> dict:
    return {"id": r.pk, "created": created, "checkpoint_id": r.checkpoint_id, "vehicle_type": r.vehicle_type,
            "plate": r.plate, "registered_at": r.registered_at, "persons": r.persons, "from_risk": r.from_risk,
            "to_verify": r.to_verify, "abnormal": r.abnormal,
            "travellers": [{"id": t.pk, "seat": t.seat, "name": t.name, "id_masked": t.id_masked,
                            "phone_masked": t.phone_masked, "origin": t.origin, "destination": t.destination,
                            "temperature": float(t.temperature) if t.temperature is not None else None,
                            "health_code": t.health_code, "risk_level": t.risk_level, "reasons": t.reasons,
                            "abnormal": t.abnormal, "resident": t.resident_id is not None,
                            "self_reported": t.self_report_id is not None, "pushed_person_id": t.pushed_person_id}
                           for t in (getattr(r, "new_travellers", None) or r.travellers.all())]}


@router.get("/checkpoints", response={200: list[CheckpointOut]})
def list_checkpoints(request: HttpRequest):
    require(request.auth, Perm.REGISTER_CHECKPOINT)
    return [{"id": c.pk, "name": c.name, "kind": c.kind, "unit_id": c.unit_id, "hours": c.hours_text}
            for c in scoped(request.auth, Checkpoint.objects.filter(active=True))]


@router.post("/checkpoints/{checkpoint_id}/registrations",
             response={200: RegistrationOut, 201: RegistrationOut},
             auth=[gate.BearerGate(), SessionWithCsrf()])
def post_registration(request: HttpRequest, checkpoint_id: int, payload: RegistrationIn):
    """Register a vehicle with its driver and passengers (or one person on foot); 201 when new, 200 when the
    token was seen before. Matching, pushing and alerts happen as on the page."""
    checkpoint, _existing = gate.checkpoint_in_scope(scope_of(request.auth), checkpoint_id, payload.token.strip())
    registration, created = actions.do_register(
        checkpoint, token=payload.token, vehicle_type=payload.vehicle_type, plate=payload.plate,
        people=[{**p.model_dump(), "test_hours": "none" if p.test_hours is None else p.test_hours} for p in payload.people],
        acting_user=request.auth)
    return (201 if created else 200), _registration_out(registration, created)


@router.get("/checkpoints/{checkpoint_id}/registrations", response={200: list[RegistrationOut]})
def list_registrations(request: HttpRequest, checkpoint_id: int, day: ApiDay | None = None):
    checkpoint = actions.access_checkpoint(request.auth, checkpoint_id)
    require(request.auth, Perm.REGISTER_CHECKPOINT)
    return [_registration_out(r) for r in selectors.registrations_of(checkpoint, day or timezone.localdate())]


@router.get("/self-reports", response={200: list[SelfReportOut]})
def list_self_reports(request: HttpRequest, day: ApiDay | None = None):
    """The day's self-reports whose person is verified in the caller's part of the district (masked)."""
    scope = require(request.auth, Perm.VERIFY_PUSH)
    low, high = push_report.day_bounds(day or timezone.localdate())
    qs = (SelfReport.objects.filter(subtree_q(scope.root.path, "pushed_person__path"), created_at__gte=low,
                                    created_at__lt=high).order_by("created_at")[:1000])
    return [{"id": r.pk, "code": r.code, "name": r.name, "id_masked": r.id_masked, "phone_masked": r.phone_masked,
             "origin": r.origin, "arrival_date": r.arrival_date, "destination": r.destination, "status": r.status,
             "pushed_person_id": r.pushed_person_id, "created_at": r.created_at} for r in qs]


def _answer_out(a: ScreeningAnswer) -> dict:
    return {"id": a.pk, "household_id": a.household_id, "unit_id": a.unit_id, "present": a.present,
            "arrivals": len(a.arrived), "fever": a.fever, "elderly_alone": a.elderly_alone, "needs": a.needs,
            "via": a.via, "answered_at": a.answered_at}


@router.get("/campaigns/{campaign_id}/answers", response={200: list[AnswerOut]})
def list_answers(request: HttpRequest, campaign_id: int):
    c = selectors.campaign_for(request.auth, campaign_id)
    require(request.auth, Perm.MARK_REACH)
    return [_answer_out(a) for a in scoped(request.auth, ScreeningAnswer.objects.filter(campaign=c))
            .order_by("path", "household_id")[:5000]]


@router.put("/campaigns/{campaign_id}/households/{household_id}/answer",
            response={200: AnswerOut})
def put_answer(request: HttpRequest, campaign_id: int, household_id: int, payload: AnswerIn):
    c = selectors.campaign_for(request.auth, campaign_id)
    household = access_household(request.auth, household_id)
    data = {"present": payload.present, "fever": payload.fever, "elderly_alone": payload.elderly_alone,
            "needs": payload.needs, "member_change": payload.member_change}
    for i, a in enumerate(payload.adds[:actions.MEMBER_SLOTS]):
        data |= {f"add_name_{i}": a.get("name", ""), f"add_id_{i}": a.get("id_number", ""),
                 f"add_phone_{i}": a.get("phone", ""), f"add_relation_{i}": a.get("relation", "other")}
    for x in payload.leaves[:30]:
        data[f"leave_{x.get('resident_id', '')}"] = x.get("status", "")
    for i, a in enumerate(payload.arrived[:5]):
        data |= {f"arrived_name_{i}": a.get("name", ""), f"arrived_from_{i}": a.get("from", ""),
                 f"arrived_phone_{i}": a.get("phone", "")}
    return 200, _answer_out(actions.do_answer_screening(c, household, data, acting_user=request.auth))
