"""24-hour service requests (24小时服务): groceries, medicine, a medical visit, rubbish, other — asked for by
the person through their link or by staff for them, assigned to a volunteer or team member, and closed when
the person confirms.

Each request is a ``SERVICE`` loop owned by the case's unit (its grid), due in 2 h for medicine and medical
visits and 4 h otherwise (the policy is the kind's, in ``models``). The loop is the request's state: the
engine tells the grid's staff when it opens, reminds them when it is late and then tells the unit above;
control tells the others (the team's accounts of other units, the assignee, the person).

    request (issued) → assign (acknowledged, owner_user = assignee) → done (reported) → person confirms (closed)

The person may confirm at any point (e.g. family brought the medicine): the loop is reported and closed.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.roles import Perm
from bihuan.loops import engine
from bihuan.loops.engine import Notice
from bihuan.loops.models import OPEN_STATES, LoopState
from bihuan.notify.models import Channel
from bihuan.notify.outbox import enqueue, notify_user
from bihuan.register.access import scope_of

from . import links
from .checkins import (
    CareError,
    Recipients,
    care_access,
    local,
    place_of,
    sms_enabled,
    staff_users,
    team_recipients,
)
from .models import (
    OPEN_CASE_STATES,
    SERVICE,
    SERVICE_ACK,
    SERVICE_DUE,
    SERVICE_DUE_DEFAULT,
    ControlCase,
    ServiceKind,
    ServiceRequest,
    TeamMember,
)

MAX_OPEN_PER_CASE = 10  # a link is no way to flood a grid with loops
TEXT_MAX = ServiceRequest._meta.get_field("text").max_length


class ServiceError(CareError):
    pass


def _lock(request: ServiceRequest) -> ServiceRequest:
    return (ServiceRequest.objects.select_for_update(of=("self",)).select_related("case__type", "case__unit", "loop")
            .get(pk=request.pk))


def _tell_person(case: ControlCase, *, key: str, subject: str, body: str) -> bool:
    phone = case.reveal_phone() if case.phone_sealed else ""
    if not phone or not sms_enabled():
        return False
    url = links.person_url(case.pk)
    try:
        enqueue(Channel.SMS, key=key, subject=subject, body=body + (f"：{url}" if url else "。"), address=phone)
    except ValueError:
        return False
    return True


def do_request_service(case: ControlCase, kind: str, text: str = "", *, acting_user=None) -> ServiceRequest:
    """A request from the person (``acting_user`` None: the caller resolved the case from the signed link) or
    from a team member / Perm.CARE staff for them. Opens the SERVICE loop at the case's unit — the engine tells
    its staff at once — and tells the team's accounts of other units."""
    if acting_user is not None:
        case = care_access(acting_user, case.pk)
    if kind not in ServiceKind.values:
        raise ServiceError(f"kind: one of {ServiceKind.values}")
    text = " ".join((text or "").split())
    if len(text) > TEXT_MAX:
        raise ServiceError(f"text: at most {TEXT_MAX} characters")
    if kind == ServiceKind.OTHER and not text:
        raise ServiceError("text: say what is needed")
    with transaction.atomic():
        case = ControlCase.objects.select_for_update(of=("self",)).select_related("type", "unit").get(pk=case.pk)
        if case.state not in OPEN_CASE_STATES:
            raise ServiceError("case: no longer under control")
        if ServiceRequest.objects.filter(case=case).unconfirmed().count() >= MAX_OPEN_PER_CASE:
            raise ServiceError(f"case: {MAX_OPEN_PER_CASE} requests are still open")
        request = ServiceRequest.objects.create(case=case, kind=kind, text=text, requested_by=acting_user)
        now = timezone.now()
        due = now + SERVICE_DUE.get(kind, SERVICE_DUE_DEFAULT)
        label = request.get_kind_display()
        subject = f"服务请求：{label}（{case.name}）"
        body = (f"{case.name}（{place_of(case)}）请求{label}" + (f"：{text}" if text else "")
                + f"。请于 {local(due)} 前办结，先指派志愿者或包保人员。")
        request.loop = engine.open_one(
            kind=SERVICE, subject_id=request.pk, title=f"{label}：{case.name}", owner_unit=case.unit,
            originator_unit=case.unit, originator_user=acting_user, ack_due_at=min(due, now + SERVICE_ACK),
            due_at=due, data={"case": case.pk, "request": request.pk}, notice=Notice(subject, body))
        request.save(update_fields=["loop"])
        owners = {u.pk for u in staff_users(case.unit)}
        others = Recipients().add_users(u for u in team_recipients(case).users.values() if u.pk not in owners)
        for user in others.users.values():
            notify_user(user, key=f"control.service:{request.pk}:{user.pk}", subject=subject, body=body)
        audit.record(actor=acting_user, action="control.service_request", target=request,
                     unit=case.unit if acting_user is None else None,
                     changes={"case": case.pk, "kind": kind, "text": text[:200], "due": due.isoformat(),
                              "by": "person" if acting_user is None else "staff", "owner_unit": case.unit_id,
                              **others.summary()})
    return request


def can_serve(user, case: ControlCase) -> bool:
    """A team member of the case, or a staff account with Perm.CARE whose subtree holds the case
    (a volunteer, grid worker, community cadre …)."""
    if TeamMember.objects.filter(case=case, user_id=user.pk).exists():
        return True
    try:
        scope = scope_of(user)
    except PermissionDenied:
        return False
    return scope.can(Perm.CARE) and scope.contains(case.path)


def do_assign_service(request: ServiceRequest, user, *, acting_user) -> ServiceRequest:
    """Give the request to a volunteer or team member (reassigning is allowed until it is done). The unit
    thereby signs for the loop; the assignee becomes its owner and is told."""
    case = care_access(acting_user, request.case_id)
    if user is None or not user.is_active or not can_serve(user, case):
        raise ServiceError("user: a team member of the case or a volunteer or staff member of its area")
    with transaction.atomic():
        request = _lock(request)
        loop = request.loop
        if loop is None:
            raise ServiceError("request: has no loop")
        if loop.state not in OPEN_STATES:
            raise ServiceError("request: already done")
        before = loop.owner_user_id
        if before == user.pk:
            return request
        name = getattr(getattr(user, "staff", None), "name", "") or user.get_full_name() or user.username
        request.loop = engine.assign_person(loop, user, actor=acting_user,
                                            note=f"{'改派' if before else '指派'}给 {name}")
        label = request.get_kind_display()
        notify_user(user, key=f"control.service-assign:{request.pk}:{user.pk}", subject=f"请办理：{label}（{case.name}）",
                    body=f"{case.name}（{place_of(case)}）请求{label}" + (f"：{request.text}" if request.text else "")
                         + (f"。请于 {local(loop.due_at)} 前办结并在系统中标记完成。" if loop.due_at else "。"))
        audit.record(actor=acting_user, action="control.service_assign", target=request,
                     changes={"case": case.pk, "assigned_to": [before, user.pk]})
    return request


def do_mark_service_done(request: ServiceRequest, *, acting_user, note: str = "") -> ServiceRequest:
    """Staff say it is done (反馈): the loop is reported and the person is asked to confirm (SMS with their
    link when possible). Marking again changes nothing."""
    case = care_access(acting_user, request.case_id)
    note = " ".join((note or "").split())
    with transaction.atomic():
        request = _lock(request)
        loop = request.loop
        if loop is None or loop.state not in OPEN_STATES:
            return request
        request.loop = engine.transition(loop, LoopState.REPORTED, actor=acting_user,
                                         note=note or "已办结，待本人确认")
        label = request.get_kind_display()
        texted = _tell_person(case, key=f"control.service-done:{request.pk}:sms", subject="服务已办结",
                              body=f"{case.name}您好，您请求的{label}已办结，请确认")
        audit.record(actor=acting_user, action="control.service_done", target=request,
                     changes={"case": case.pk, "note": note[:200], "sms": texted})
    return request


def do_confirm_service(request: ServiceRequest, *, case: ControlCase | None = None, acting_user=None) -> ServiceRequest:
    """The person confirms through their link (pass the ``case`` the token named: a request of another case is
    ``Http404``), or staff confirm for them after asking (``acting_user``). Closes the loop (销号), moving it
    through ``reported`` if staff had not marked it done. Confirming again changes nothing."""
    if acting_user is not None:
        care_access(acting_user, request.case_id)
    elif case is None:
        raise ServiceError("case: the person confirms through their own link")
    with transaction.atomic():
        request = _lock(request)
        if case is not None and request.case_id != case.pk:
            raise Http404("no such request")
        loop = request.loop
        if loop is None or loop.state not in (*OPEN_STATES, LoopState.REPORTED):
            return request
        by = "本人确认" if acting_user is None else "工作人员代为确认"
        if loop.state in OPEN_STATES:
            loop = engine.transition(loop, LoopState.REPORTED, actor=acting_user, note=f"{by}（未先标记办结）")
        request.loop = engine.transition(loop, LoopState.CLOSED, actor=acting_user, note=by)
        audit.record(actor=acting_user, action="control.service_confirm", target=request,
                     unit=request.case.unit if acting_user is None else None,
                     changes={"case": request.case_id, "by": "person" if acting_user is None else "staff"})
    return request

