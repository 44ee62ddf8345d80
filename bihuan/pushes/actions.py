"""Every write of pushes after the import, each in a transaction with its audit row: the command office's
manual dispatch (分派), a verification's calls, form and outcome (核查), the reveal of a person's full phone and
ID number, and transfers (转办 / 签收 / 退回). Loops change only through the loop engine (``bihuan.loops.engine``):
opened, moved, handed to another unit, reopened, or noted in their history.

``do_save_verification`` saves the keys present in ``data`` (the page saves one section at a time). Setting an
outcome other than ``verifying`` completes the verification and reports its loop (反馈); going back to
``verifying`` reopens it. ``elsewhere_in_district`` transfers the person (转办) in the same transaction.
Refusals are ``Refused`` subclasses naming the field (``VerifyError``, ``TransferError``, ``RoutingError``).
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bihuan.core import audit, crypto
from bihuan.core.roles import Perm
from bihuan.loops import engine
from bihuan.loops.models import OPEN_STATES, Loop, LoopState
from bihuan.notify.outbox import notify_units
from bihuan.register.access import require, scoped
from bihuan.register.models import Unit

from .access import access_incoming, access_person, verification_for_update
from .address import RoutingError, check_target_unit, is_in_queue
from .models import TRANSFER, Outcome, PushedPerson, RouteMethod, Transfer, TransferState, Verification
from .routing import fresh_due
from .transfers import TransferError, common_parent, is_ping_pong, sign_deadline
from .verify import (
    MAX_ATTEMPTS,
    CallResult,
    VerifyError,
    clean_fields,
    clean_outcome,
    recommendation,
    text_field,
)

# --- dispatch --------------------------------------------------------------------------------------------


def do_dispatch(person: PushedPerson, unit: Unit, *, acting_user) -> PushedPerson:
    """The command office hands a person from its manual-dispatch queue to a unit. The push deadline stays."""
    require(acting_user, Perm.DISPATCH_PUSH)
    with transaction.atomic():
        person = scoped(acting_user, PushedPerson.objects.select_for_update()).filter(pk=person.pk).first()
        if person is None:
            raise PermissionDenied("that person is not in your part of the district")
        person = PushedPerson.objects.select_related("unit").get(pk=person.pk)
        if not is_in_queue(person):
            raise RoutingError("person", "already dispatched; use a transfer (转办) to move them")
        check_target_unit(person, unit)
        before = person.unit_id
        person.unit, person.path = unit, unit.path
        person.route_reason = f"{unit.name}（{person.route_reason}）"[:300]  # the method (人工分派) says the rest
        person.routed_at = timezone.now()
        person.save(update_fields=["unit", "path", "route_reason", "routed_at"])
        ver = Verification.objects.filter(person=person).select_related("loop").first()
        if ver is not None and ver.loop is not None:
            engine.reassign(ver.loop, unit, actor=acting_user, action="dispatched", note=f"人工分派 → {unit.name}")
        audit.record(actor=acting_user, action="push.dispatch", target=person,
                     changes={"unit": [before, unit.pk]})
    return person


# --- verification ----------------------------------------------------------------------------------------


def _start(loop: Loop | None, actor) -> None:
    if loop is not None and loop.state == LoopState.ISSUED:
        engine.transition(loop, LoopState.IN_PROGRESS, actor=actor, note="核查开始")


def do_record_call(verification: Verification, result: str, *, acting_user, at: dt.datetime | None = None,
                   note: str = "") -> Verification:
    """One call attempt (reached / no_answer / wrong_number / refused / powered_off) with its time."""
    if result not in CallResult.values:
        raise VerifyError("result", _("请选择通话结果"))
    with transaction.atomic():
        person, ver = verification_for_update(acting_user, verification)
        attempts = list(ver.call_attempts or [])
        if len(attempts) >= MAX_ATTEMPTS:
            raise VerifyError("call_attempts", _("最多记录 %(n)s 次通话") % {"n": MAX_ATTEMPTS})
        at = at or timezone.now()
        attempts.append({"at": at.isoformat(), "result": result, "by": getattr(acting_user, "pk", None),
                         "note": text_field("note", note, 100)})
        ver.call_attempts = attempts
        ver.save(update_fields=["call_attempts", "updated_at"])
        _start(ver.loop, acting_user)
        audit.record(actor=acting_user, action="push.call", target=ver,
                     changes={"person": person.pk, "result": result, "attempt": len(attempts)})
    return ver


def do_save_verification(verification: Verification, data: dict, *, acting_user) -> Verification:
    """Save the form fields present in ``data`` and, if ``outcome`` is present, the outcome with its detail.

    new_control needs ``measure``; choosing another than the recommended one needs ``override_reason`` (audited
    as ``push.verification.override``). elsewhere_in_district needs ``target_unit`` and transfers the person.
    """
    with transaction.atomic():
        person, ver = verification_for_update(acting_user, verification)
        clean = clean_fields(data)
        changed = [k for k, v in clean.items() if getattr(ver, k) != v]
        before = _version(ver, changed) if ver.verified_at is not None else None
        for k, v in clean.items():
            setattr(ver, k, v)
        before_outcome = ver.outcome
        override = None
        if "outcome" in data:
            outcome = str(data.get("outcome") or "")
            detail = clean_outcome(ver, outcome, data)
            pending = Transfer.objects.pending().filter(person=person).exists()
            if pending and (outcome != before_outcome or outcome == Outcome.ELSEWHERE_IN_DISTRICT):
                raise VerifyError("outcome", _("该人员正在转办中，等待对方接收或退回"))
            if changed or not ver.recommendation_basis or outcome == Outcome.NEW_CONTROL:
                ver.recommended_measure, ver.recommendation_basis = recommendation(person, ver)
            if outcome == Outcome.NEW_CONTROL:
                measure = detail["measure"]
                reason = detail.get("override_reason", "")
                if ver.recommended_measure and measure != ver.recommended_measure:
                    if not reason:
                        raise VerifyError("override_reason", _("所选措施与建议不同，请说明理由"))
                    override = {"recommended": ver.recommended_measure, "chosen": measure, "reason": reason,
                                "basis": ver.recommendation_basis}
                ver.measure, ver.override_reason = measure, reason if override else ""
            else:
                ver.measure, ver.override_reason = "", ""
            ver.outcome, ver.outcome_detail = outcome, detail
            if outcome != Outcome.VERIFYING:
                ver.verified_by, ver.verified_at = acting_user, timezone.now()
            else:
                ver.verified_by, ver.verified_at = None, None
        elif changed and not ver.recommendation_basis:
            ver.recommended_measure, ver.recommendation_basis = recommendation(person, ver)
        amended = before is not None and (changed or (before["outcome"], before["detail"], before["measure"])
                                          != (ver.outcome, ver.outcome_detail, ver.measure))
        if amended:
            before["by"] = _name(acting_user)
            ver.amendments = [*(ver.amendments or []), before]
        ver.save()
        loop = Loop.objects.filter(pk=ver.loop_id).first()
        if amended and loop is not None:
            engine.note(loop, actor=acting_user, action="amended",
                        note=f"核查报告修改：{Outcome(before['outcome']).label} → {Outcome(ver.outcome).label}")
        if "outcome" in data and ver.outcome != Outcome.VERIFYING:
            if loop is not None and loop.state in OPEN_STATES:
                engine.transition(loop, LoopState.REPORTED, actor=acting_user,
                                  note=f"核查结果：{Outcome(ver.outcome).label}", data={"outcome": ver.outcome})
            if ver.outcome == Outcome.ELSEWHERE_IN_DISTRICT:
                unit = Unit.objects.get(pk=ver.outcome_detail["target_unit"])
                reason = ver.outcome_detail.get("transfer_reason") or f"核查：实际居住在{unit.name}"
                try:
                    transfer = do_transfer(person, unit, reason, acting_user=acting_user)
                except (TransferError, RoutingError) as exc:
                    raise VerifyError("target_unit", exc.message) from None
                ver.outcome_detail = {**ver.outcome_detail, "transfer": transfer.pk}
                ver.save(update_fields=["outcome_detail", "updated_at"])
        elif "outcome" in data and loop is not None and loop.state == LoopState.REPORTED:
            engine.reopen(loop, actor=acting_user, note="核查结果改回核查中")
        elif changed:
            _start(loop, acting_user)
        audit.record(actor=acting_user, action="push.verification.save", target=ver,
                     changes={"person": person.pk, "fields": sorted(clean), "changed": sorted(changed),
                              "outcome": [before_outcome, ver.outcome] if "outcome" in data else None})
        if override:
            audit.record(actor=acting_user, action="push.verification.override", target=ver,
                         changes={"person": person.pk, **override})
    return ver


def _name(user) -> str:
    staff = getattr(user, "staff", None)
    return getattr(staff, "name", "") or user.get_username()


def _version(ver: Verification, changed: list[str]) -> dict:
    """The completed report as it stands, before an amendment replaces it (its changed fields' old values)."""
    def plain(value):
        return value.isoformat() if hasattr(value, "isoformat") else value

    return {"at": timezone.now().isoformat(), "outcome": ver.outcome, "detail": dict(ver.outcome_detail or {}),
            "measure": ver.measure, "verified_at": plain(ver.verified_at),
            "verified_by": _name(ver.verified_by) if ver.verified_by_id else "",
            "fields": {k: plain(getattr(ver, k)) for k in changed}}


def do_reveal_person(person: PushedPerson, *, acting_user, reason: str = "") -> dict:
    """The full phone and ID number, on purpose (to call the person), audited."""
    from bihuan.core import reveal

    require(acting_user, Perm.REVEAL_PERSONAL)
    person = access_person(acting_user, person.pk)
    reason = reveal.reason_of(text=reason)  # blank refused
    reveal.check(acting_user)  # throttled per user
    values = {"phone": person.reveal_phone() if person.phone_sealed else "",
              "id_number": crypto.unseal(person.id_sealed) if person.id_sealed else ""}
    audit.record(actor=acting_user, action="push.person.reveal", target=person,
                 changes={"reason": reason[:200], "fields": [k for k, v in values.items() if v]})
    return values


def do_fix_id_number(person: PushedPerson, id_number: str, *, acting_user) -> PushedPerson:
    """The verifier records the right ID number of a person pushed with a broken one ("ID to fix"): validated
    (GB 11643 checksum; 15 digits become 18), sealed, audited with masked values only. A registered resident
    with that number becomes the person's resident."""
    from bihuan.core.personal import InvalidIdNumber, birth_date_from_id, normalize_id_number, sex_from_id
    from bihuan.register.models import ACTIVE_STATUSES, Resident

    require(acting_user, Perm.VERIFY_PUSH)
    try:
        value = normalize_id_number(str(id_number or ""))
    except InvalidIdNumber:
        raise VerifyError("id_number", _("身份证号无效：应为 18 位（或 15 位旧号），校验位须正确")) from None
    with transaction.atomic():
        person = access_person(acting_user, person.pk, for_update=True)
        before = person.id_masked
        person.set_id_number(value)
        person.birth_date, person.sex = birth_date_from_id(value), sex_from_id(value)
        problem, person.id_problem = person.id_problem, ""
        if person.resident_id is None:
            person.resident_id = (Resident.objects.filter(id_hash=person.id_hash, status__in=ACTIVE_STATUSES)
                                  .order_by("pk").values_list("pk", flat=True).first())
        person.save(update_fields=["id_sealed", "id_hash", "id_masked", "id_tail", "birth_date", "sex", "id_problem",
                                   "resident"])
        audit.record(actor=acting_user, action="push.person.fix_id", target=person,
                     changes={"id": [before, person.id_masked], "problem": problem[:100]})
    return person


# --- transfers -------------------------------------------------------------------------------------------


def do_transfer(person: PushedPerson, to_unit: Unit, reason: str, *, acting_user) -> Transfer:
    """转办: ask ``to_unit`` to take the person over. The person stays with the sender until it accepts. The
    receiving unit is told at once (the loop's opening notice); a ping-pong is told to the common parent."""
    require(acting_user, Perm.VERIFY_PUSH)
    reason = " ".join((reason or "").split())
    if not reason:
        raise TransferError("reason", "say why the person belongs to the other unit")
    with transaction.atomic():
        person = access_person(acting_user, person.pk, for_update=True)
        if person.unit is None:
            raise TransferError("person", "not routed yet")
        try:
            check_target_unit(person, to_unit)
        except RoutingError as exc:
            raise TransferError("to_unit", exc.message) from None
        if Transfer.objects.pending().filter(person=person).exists():
            raise TransferError("person", "a transfer is already waiting for an answer")
        from_unit = person.unit
        ping_pong = is_ping_pong(person, from_unit, to_unit)
        transfer = Transfer.objects.create(person=person, from_unit=from_unit, to_unit=to_unit, reason=reason[:300],
                                           created_by=acting_user, ping_pong=ping_pong)
        due = sign_deadline()
        notice = engine.Notice(f"转办待接收：{person.name}",
                               f"{from_unit.name} 转来 {person.name}：{reason}。"
                               f"请在 {timezone.localtime(due):%m-%d %H:%M} 前接收或退回。")
        transfer.loop = engine.open_one(kind=TRANSFER, subject_id=transfer.pk, title=f"转办：{person.name}",
                                        owner_unit=to_unit, originator_unit=from_unit, originator_user=acting_user,
                                        ack_due_at=due, due_at=due, notice=notice)
        transfer.save(update_fields=["loop"])
        ver_loop = Verification.objects.filter(person=person).values_list("loop_id", flat=True).first()
        if ver_loop:
            engine.note(ver_loop, actor=acting_user, action="transferred",
                        note=f"转办 #{transfer.pk}：{from_unit.name} → {to_unit.name}：{reason}")
        told, parent = 0, None
        if ping_pong:
            parent = common_parent(from_unit, to_unit)
            if parent is not None:
                times = Transfer.objects.filter(person=person).count()
                told = notify_units({parent.pk}, key=f"push.pingpong:{transfer.pk}", event="push.transfer.ping_pong",
                                    subject=f"转办来回推诿：{person.name}",
                                    body=f"{person.name} 在 {from_unit.name} 与 {to_unit.name} 之间来回转办"
                                         f"（第 {times} 次）。请协调确定责任单位。")
        audit.record(actor=acting_user, action="push.transfer", target=transfer,
                     changes={"person": person.pk, "from": from_unit.pk, "to": to_unit.pk, "reason": reason[:200],
                              "ping_pong": ping_pong, "parent": getattr(parent, "pk", None), "parent_told": told})
    return transfer


def _answerable(acting_user, transfer: Transfer) -> Transfer:
    transfer = access_incoming(acting_user, transfer.pk)
    return (Transfer.objects.select_for_update(of=("self",)).select_related("person", "from_unit", "to_unit", "loop")
            .get(pk=transfer.pk))


def _close_transfer_loop(transfer: Transfer, *, actor, accepted: bool, note: str) -> None:
    loop = transfer.loop
    if loop is None or not loop.is_open:
        return
    if accepted:
        loop = engine.transition(loop, LoopState.ACKNOWLEDGED, actor=actor, note="签收")
        loop = engine.transition(loop, LoopState.REPORTED, actor=actor, note=note)
        loop = engine.transition(loop, LoopState.CLOSED, actor=actor, note="转办完成")
    else:
        loop = engine.transition(loop, LoopState.RETURNED, actor=actor, note=note)
    transfer.loop = loop


def do_accept_transfer(transfer: Transfer, *, acting_user) -> Transfer:
    """签收: the receiver takes the person over; their verification loop moves to it with a fresh deadline."""
    with transaction.atomic():
        transfer = _answerable(acting_user, transfer)
        if transfer.state == TransferState.ACCEPTED:
            return transfer  # a double tap
        if transfer.state != TransferState.PENDING:
            raise TransferError("transfer", "it was already returned")
        person = PushedPerson.objects.select_for_update().get(pk=transfer.person_id)
        if person.unit_id != transfer.from_unit_id:
            raise TransferError("transfer", "the person has moved since; it can only be returned")
        now = timezone.now()
        transfer.answered_by, transfer.answered_at = acting_user, now
        transfer.save(update_fields=["answered_by", "answered_at"])
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
                loop = engine.reassign(Loop.objects.get(pk=ver.loop_id), to_unit, actor=acting_user,
                                       action="reassigned", due_at=fresh_due(now),
                                       note=f"转办 #{transfer.pk} 已接收：{transfer.from_unit.name} → {to_unit.name}")
                if loop.state == LoopState.REPORTED:
                    engine.reopen(loop, actor=acting_user, note=f"{to_unit.name} 接收后重新核查")
        audit.record(actor=acting_user, action="push.transfer.accept", target=transfer,
                     changes={"person": person.pk, "from": transfer.from_unit_id, "to": to_unit.pk})
    return transfer


def do_return_transfer(transfer: Transfer, reason: str, *, acting_user) -> Transfer:
    """退回: the receiver refuses with a reason; the sender has the person again (and a fresh deadline if the
    old one has passed), and is told."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise TransferError("return_reason", "say why the person is not yours")
    with transaction.atomic():
        transfer = _answerable(acting_user, transfer)
        if transfer.state == TransferState.RETURNED:
            return transfer
        if transfer.state != TransferState.PENDING:
            raise TransferError("transfer", "it was already accepted")
        now = timezone.now()
        transfer.answered_by, transfer.answered_at = acting_user, now
        transfer.return_reason = reason[:300]
        transfer.save(update_fields=["answered_by", "answered_at", "return_reason"])
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
                engine.note(loop, actor=acting_user, action="transfer_returned",
                            note=f"转办 #{transfer.pk} 被 {transfer.to_unit.name} 退回：{reason}")
                if loop.state == LoopState.REPORTED:
                    due = loop.due_at if loop.due_at and loop.due_at > now else fresh_due(now)
                    engine.reopen(loop, actor=acting_user, note="转办被退回，重新核查", due_at=due)
        notify_units({transfer.from_unit_id}, key=f"push.return:{transfer.pk}", event="push.transfer.returned",
                     subject=f"转办被退回：{transfer.person.name}",
                     body=f"{transfer.to_unit.name} 退回了 {transfer.person.name}：{reason}")
        audit.record(actor=acting_user, action="push.transfer.return", target=transfer,
                     changes={"person": transfer.person_id, "from": transfer.from_unit_id,
                              "to": transfer.to_unit_id, "reason": reason[:200]})
    return transfer
