"""Transfers between units (转办 / 退回).

A transfer is a ``Transfer`` row plus a loop of kind ``push.transfer`` owned by the receiving unit, which must
sign (accept) or return it before a deadline (``settings.PUSH_TRANSFER_SIGN_HOURS``, default 2 h); the loop
engine reminds it and then tells its parent unit. Until the receiver accepts, the person stays with the
sender: a person always has exactly one owning unit (``person.unit``), the owner of their one verification
loop, and at most one pending transfer.

On acceptance the person's verification loop is *re-owned* by the receiver (the same loop, so its history
stays in one place and a person never has two verification loops; a chain A → B → C is the sequence of
``Transfer`` rows plus the loop's ``transferred`` / ``reassigned`` events). The receiver gets a fresh
verification deadline. A return (退回) gives the person back to the sender with the reason.

A transfer to a unit the person already came from (A → B → A, or A → B → C → A), or sending again to a unit
that returned the person (A → B 退回, A → B), is a ping-pong: flagged, and the staff of the two units' lowest
common ancestor are notified; it is on that unit's ping-pong list.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.core.roles import Perm
from bihuan.loops import engine
from bihuan.loops.models import Loop, LoopEvent, LoopState
from bihuan.notify.outbox import notify_user
from bihuan.register.access import require, scope_of
from bihuan.register.models import SEGMENT, Staff, Unit, subtree_q

from .models import TRANSFER, Outcome, PushedPerson, RouteMethod, Transfer, TransferState, Verification
from .routing import RoutingError, check_target_unit, fresh_due, reassign_loop
from .verify import access_person, reopen

DEFAULT_SIGN_HOURS = 2
REMINDER_INTERVAL = 1800
REMINDER_LIMIT = 2


class TransferError(Refused):
    """Refused; the message starts with the field's name."""


def sign_deadline(now: datetime | None = None) -> datetime:
    hours = int(getattr(settings, "PUSH_TRANSFER_SIGN_HOURS", DEFAULT_SIGN_HOURS))
    return (now or timezone.now()) + timedelta(hours=hours)


def common_parent(a: Unit, b: Unit) -> Unit | None:
    """The lowest unit whose subtree holds both."""
    n = 0
    while n < min(len(a.path), len(b.path)) and a.path[n] == b.path[n]:
        n += 1
    common = a.path[: n - n % SEGMENT]
    if common in (a.path, b.path):  # one holds the other: its parent is the arbiter
        common = common[:-SEGMENT]
    return Unit.objects.filter(path=common).first() if common else None


def visible_transfers(user):
    """Transfers from or to the user's part of the district."""
    root = scope_of(user).root.path
    return Transfer.objects.filter(subtree_q(root, "from_unit__path") | subtree_q(root, "to_unit__path"))


def access_incoming(user, transfer_id: int) -> Transfer:
    """A transfer addressed to the user's unit or a unit below it (the ones who may answer), else 404."""
    require(user, Perm.VERIFY_PUSH)
    root = scope_of(user).root.path
    transfer = (Transfer.objects.select_related("person", "from_unit", "to_unit")
                .filter(subtree_q(root, "to_unit__path"), pk=transfer_id).first())
    if transfer is None:
        raise Http404("no such transfer for your unit")
    return transfer


def _tell_staff(unit_ids: set[int], *, key: str, subject: str, body: str) -> int:
    n = 0
    for staff in Staff.objects.filter(unit_id__in=unit_ids).select_related("user"):
        notify_user(staff.user, key=f"{key}:{staff.user_id}", subject=subject, body=body)
        n += 1
    return n


def _is_ping_pong(person: PushedPerson, from_unit: Unit, to_unit: Unit) -> bool:
    came_from = Q(from_unit=to_unit, state=TransferState.ACCEPTED)
    bounced = Q(from_unit=from_unit, to_unit=to_unit, state=TransferState.RETURNED)
    return Transfer.objects.filter(came_from | bounced, person=person).exists()


def do_transfer(person: PushedPerson, to_unit: Unit, reason: str, *, acting_user) -> Transfer:
    """转办: ask ``to_unit`` to take the person over. The person stays with the sender until it accepts."""
    require(acting_user, Perm.VERIFY_PUSH)
    reason = " ".join((reason or "").split())
    if not reason:
        raise TransferError("reason: say why the person belongs to the other unit")
    with transaction.atomic():
        person = access_person(acting_user, person.pk, for_update=True)
        if person.unit is None:
            raise TransferError("person: not routed yet")
        try:
            check_target_unit(person, to_unit)
        except RoutingError as exc:
            raise TransferError(str(exc).replace("unit:", "to_unit:", 1)) from None
        if Transfer.objects.filter(person=person, state=TransferState.PENDING).exists():
            raise TransferError("person: a transfer is already waiting for an answer")
        from_unit = person.unit
        ping_pong = _is_ping_pong(person, from_unit, to_unit)
        now = timezone.now()
        transfer = Transfer.objects.create(person=person, from_unit=from_unit, to_unit=to_unit, reason=reason[:300],
                                           created_by=acting_user, ping_pong=ping_pong)
        due = sign_deadline(now)
        engine.open_for_units(kind=TRANSFER, subject_id=transfer.pk, title=f"转办：{person.name}",
                              units=Unit.objects.filter(pk=to_unit.pk), originator_unit=from_unit,
                              originator_user=acting_user, ack_due_at=due, due_at=due,
                              reminder_interval=REMINDER_INTERVAL, reminder_limit=REMINDER_LIMIT)
        transfer.loop = Loop.objects.get(kind=TRANSFER, subject_id=transfer.pk, owner_unit=to_unit)
        transfer.save(update_fields=["loop"])
        ver_loop = Verification.objects.filter(person=person).values_list("loop_id", flat=True).first()
        if ver_loop:
            LoopEvent.objects.create(loop_id=ver_loop, actor=acting_user, action="transferred",
                                     note=f"转办 #{transfer.pk}：{from_unit.name} → {to_unit.name}：{reason}"[:2000])
        _tell_staff({to_unit.pk}, key=f"push.transfer:{transfer.pk}", subject=f"转办待接收：{person.name}",
                    body=f"{from_unit.name} 转来 {person.name}：{reason}。请在 {timezone.localtime(due):%m-%d %H:%M} "
                         "前接收或退回。")
        told = 0
        parent = None
        if ping_pong:
            parent = common_parent(from_unit, to_unit)
            if parent is not None:
                told = _tell_staff({parent.pk}, key=f"push.pingpong:{transfer.pk}",
                                   subject=f"转办来回推诿：{person.name}",
                                   body=f"{person.name} 在 {from_unit.name} 与 {to_unit.name} 之间来回转办"
                                        f"（第 {Transfer.objects.filter(person=person).count()} 次）。请协调确定责任单位。")
        audit.record(actor=acting_user, action="push.transfer", target=transfer,
                     changes={"person": person.pk, "from": from_unit.pk, "to": to_unit.pk, "reason": reason[:200],
                              "ping_pong": ping_pong, "parent": getattr(parent, "pk", None), "parent_told": told})
    return transfer


def _answerable(acting_user, transfer: Transfer) -> Transfer:
    transfer = access_incoming(acting_user, transfer.pk)
    return Transfer.objects.select_for_update().select_related("person", "from_unit", "to_unit").get(pk=transfer.pk)


def _close_transfer_loop(transfer: Transfer, *, actor, accepted: bool, note: str) -> None:
    loop = Loop.objects.filter(pk=transfer.loop_id).first()
    if loop is None or loop.state not in (LoopState.ISSUED, LoopState.ACKNOWLEDGED, LoopState.IN_PROGRESS):
        return
    if accepted:
        loop = engine.transition(loop, LoopState.ACKNOWLEDGED, actor=actor, note="签收")
        loop = engine.transition(loop, LoopState.REPORTED, actor=actor, note=note)
        engine.transition(loop, LoopState.CLOSED, actor=actor, note="转办完成")
    else:
        engine.transition(loop, LoopState.RETURNED, actor=actor, note=note)


def do_accept_transfer(transfer: Transfer, *, acting_user) -> Transfer:
    """签收: the receiver takes the person over; their verification loop moves to it with a fresh deadline."""
    with transaction.atomic():
        transfer = _answerable(acting_user, transfer)
        if transfer.state == TransferState.ACCEPTED:
            return transfer  # a double tap
        if transfer.state != TransferState.PENDING:
            raise TransferError("transfer: it was already returned")
        person = PushedPerson.objects.select_for_update().get(pk=transfer.person_id)
        if person.unit_id != transfer.from_unit_id:
            raise TransferError("transfer: the person has moved since; it can only be returned")
        now = timezone.now()
        transfer.state, transfer.answered_by, transfer.answered_at = TransferState.ACCEPTED, acting_user, now
        transfer.save(update_fields=["state", "answered_by", "answered_at"])
        _close_transfer_loop(transfer, actor=acting_user, accepted=True, note="已接收")
        to_unit = transfer.to_unit
        person.unit, person.path = to_unit, to_unit.path
        person.route_method = RouteMethod.TRANSFER
        person.route_reason = f"转办：{transfer.from_unit.name} → {to_unit.name}：{transfer.reason}"[:300]
        person.save(update_fields=["unit", "path", "route_method", "route_reason"])
        ver = Verification.objects.select_for_update().filter(person=person).first()
        if ver is not None:
            before = ver.outcome
            if ver.outcome != Outcome.VERIFYING:
                # The receiver verifies afresh; the sender's finding stays in the transfer and the loop's history.
                ver.outcome, ver.outcome_detail = Outcome.VERIFYING, {"from_transfer": transfer.pk}
                ver.measure, ver.override_reason = "", ""
                ver.verified_by, ver.verified_at = None, None
                ver.save()
                audit.record(actor=acting_user, action="push.verification.reset", target=ver,
                             changes={"outcome": [before, ver.outcome], "transfer": transfer.pk})
            if ver.loop_id:
                loop = reassign_loop(Loop.objects.get(pk=ver.loop_id), to_unit, actor=acting_user, action="reassigned",
                                     note=f"转办 #{transfer.pk} 已接收：{transfer.from_unit.name} → {to_unit.name}",
                                     due_at=fresh_due(now))
                if loop.state == LoopState.REPORTED:
                    reopen(loop, actor=acting_user, note=f"{to_unit.name} 接收后重新核查")
        audit.record(actor=acting_user, action="push.transfer.accept", target=transfer,
                     changes={"person": person.pk, "from": transfer.from_unit_id, "to": to_unit.pk})
    return transfer


def do_return_transfer(transfer: Transfer, reason: str, *, acting_user) -> Transfer:
    """退回: the receiver refuses with a reason; the sender has the person again (and a fresh deadline if the
    old one has passed)."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise TransferError("return_reason: say why the person is not yours")
    with transaction.atomic():
        transfer = _answerable(acting_user, transfer)
        if transfer.state == TransferState.RETURNED:
            return transfer
        if transfer.state != TransferState.PENDING:
            raise TransferError("transfer: it was already accepted")
        now = timezone.now()
        transfer.state, transfer.answered_by, transfer.answered_at = TransferState.RETURNED, acting_user, now
        transfer.return_reason = reason[:300]
        transfer.save(update_fields=["state", "answered_by", "answered_at", "return_reason"])
        _close_transfer_loop(transfer, actor=acting_user, accepted=False, note=reason)
        ver = Verification.objects.select_for_update().filter(person_id=transfer.person_id).first()
        if ver is not None:
            if ver.outcome == Outcome.ELSEWHERE_IN_DISTRICT:
                ver.outcome = Outcome.VERIFYING
                ver.outcome_detail = {"returned_transfer": transfer.pk, "return_reason": reason[:300]}
                ver.verified_by, ver.verified_at = None, None
                ver.save()
            if ver.loop_id:
                loop = Loop.objects.get(pk=ver.loop_id)
                LoopEvent.objects.create(loop=loop, actor=acting_user, action="transfer_returned",
                                         note=f"转办 #{transfer.pk} 被 {transfer.to_unit.name} 退回：{reason}"[:2000])
                if loop.state == LoopState.REPORTED:
                    due = loop.due_at if loop.due_at and loop.due_at > now else fresh_due(now)
                    reopen(loop, actor=acting_user, note="转办被退回，重新核查", due_at=due)
        _tell_staff({transfer.from_unit_id}, key=f"push.return:{transfer.pk}",
                    subject=f"转办被退回：{transfer.person.name}",
                    body=f"{transfer.to_unit.name} 退回了 {transfer.person.name}：{reason}")
        audit.record(actor=acting_user, action="push.transfer.return", target=transfer,
                     changes={"person": transfer.person_id, "from": transfer.from_unit_id,
                              "to": transfer.to_unit_id, "reason": reason[:200]})
    return transfer


def history(person: PushedPerson) -> list[Transfer]:
    return list(Transfer.objects.filter(person=person).select_related("from_unit", "to_unit", "answered_by")
                .order_by("id"))
