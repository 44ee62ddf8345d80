"""All writes to control cases: open (directly or from a verification), change the period, mark measures,
fill the five-for-one team, move up, advance to the next phase, record care visits. Each runs in a
transaction, authorizes through ``bihuan.register.access`` and writes its audit row.

Who may do what (``bihuan.core.roles``): opening, changing the period, the team and moving up need
``MANAGE_CONTROL`` (community staff and above, in their subtree); marking measures and recording care visits
need ``CARE`` (grid workers, volunteers …), in their subtree or as a member of the case's team.

Phase chaining: one case per phase (each case has one type). ``advance_phase`` closes a phase whose period is
over and whose tests are all negative as ``phase_ended`` and opens the next phase as a new case pointing back
at it (``previous``), with the same person, unit, team and protocol. ``release.propose_releases`` calls it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from bihuan.core import audit, crypto
from bihuan.core.errors import Refused
from bihuan.core.personal import normalize_phone
from bihuan.core.roles import Perm
from bihuan.loops import engine
from bihuan.loops.models import Loop, LoopState
from bihuan.notify.outbox import notify_user
from bihuan.pushes.models import Measure, Outcome, PushedPerson, Verification
from bihuan.register.access import access_resident, access_unit, require, scoped
from bihuan.register.models import Resident, Staff, Unit

from . import phases as ph
from .models import (
    MISSED_CHECKIN,
    OPEN_CASE_STATES,
    CareVisit,
    CaseState,
    ControlCase,
    ControlType,
    MeasureItem,
    MissedCheckIn,
    ServiceKind,
    TeamMember,
    TeamSlot,
    TestResult,
    TestSample,
)

log = logging.getLogger("bihuan.control")

SITE_KINDS = ("home", "hotel")
PHOTO_MAX_BYTES = 10 * 1024 * 1024
# Magic bytes of the photo formats phones send.
PHOTO_FORMATS = {b"\x89PNG\r\n\x1a\n": ".png", b"\xff\xd8\xff": ".jpg", b"GIF87a": ".gif", b"GIF89a": ".gif"}


class ControlError(Refused):
    """Refused; ``field`` names the form field, and the message starts with it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- access ----------------------------------------------------------------------------------------------

def access_case(user, case_id: int, *, for_update: bool = False, member_ok: bool = False) -> ControlCase:
    """A case in the user's subtree (or, with ``member_ok``, one whose five-for-one team the user is on),
    else 404."""
    qs = ControlCase.objects.select_related("type", "unit")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    case = scoped(user, qs).filter(pk=case_id).first()
    if case is None and member_ok and getattr(user, "is_authenticated", False):
        case = qs.filter(pk=case_id, id__in=TeamMember.objects.filter(user=user).values("case_id")).first()
    if case is None:
        raise Http404("no such control case in your part of the district")
    return case


def cases_for_member(user, *, open_only: bool = True) -> QuerySet:
    """The cases whose five-for-one team ``user`` is on (what a member sees on their phone)."""
    qs = ControlCase.objects.filter(id__in=TeamMember.objects.filter(user=user).values("case_id"))
    if open_only:
        qs = qs.filter(state__in=OPEN_CASE_STATES)
    return qs.select_related("type", "unit").order_by("end_date", "id")


def team_of(case: ControlCase) -> list[tuple[str, str, TeamMember | None]]:
    """The five slots of a case in their order: (slot, label, member or None)."""
    members = {m.slot: m for m in case.team.all()}
    return [(slot.value, str(slot.label), members.get(slot.value)) for slot in TeamSlot]


def _authorize(acting_user, perm: str) -> None:
    if acting_user is not None:  # None = the system itself (the worker, data migrations)
        require(acting_user, perm)


def _locked(case: ControlCase, acting_user, *, member_ok: bool = False) -> ControlCase:
    if acting_user is not None:
        return access_case(acting_user, case.pk, for_update=True, member_ok=member_ok)
    return ControlCase.objects.select_for_update(of=("self",)).select_related("type", "unit").get(pk=case.pk)


def _open(case: ControlCase) -> None:
    if case.state not in OPEN_CASE_STATES:
        raise ControlError("state", f"该个案已结束（{case.get_state_display()}）")


# --- helpers ---------------------------------------------------------------------------------------------

def end_case_loops(case: ControlCase, *, acting_user=None) -> int:
    """A case that ends (released, moved up, next phase) leaves no missed check-in to chase: its open
    ``MISSED_CHECKIN`` loops are cancelled (alerts and service requests run on: they are still somebody's work)."""
    missed = MissedCheckIn.objects.filter(case=case).values("pk")
    actor = acting_user if getattr(acting_user, "is_authenticated", False) else None
    return engine.bulk_transition(Loop.objects.filter(kind=MISSED_CHECKIN, subject_id__in=missed),
                                  LoopState.CANCELLED, actor=actor, note="管控已结束")


def control_type(code: str) -> ControlType:
    """The version of a control type in force (what a new case is opened with)."""
    ctype = ControlType.objects.current().filter(code=code).first()
    if ctype is None:
        raise ControlError("type_code", f"没有这种管控类型：{code}")
    return ctype


def _text(field: str, value: Any, limit: int, *, required: bool = False) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise ControlError(field, "必填")
    if len(text) > limit:
        raise ControlError(field, f"最多 {limit} 个字")
    return text


def home_address(resident: Resident | None = None, person: PushedPerson | None = None,
                 verification: Verification | None = None) -> str:
    """Where the person lives: the register's household address, else the verified or pushed address."""
    if resident is not None:
        return resident.household.address
    if verification is not None:
        parts = [verification.compound, f"{verification.building}号楼" if verification.building else "",
                 f"{verification.entrance}单元" if verification.entrance else "", verification.room]
        text = "".join(p for p in parts if p)
        if text:
            return (verification.destination or "") + text
    return getattr(person, "address_text", "") or ""


def _copy_contact(source, target) -> None:
    for field in ("phone_sealed", "phone_hash", "phone_masked", "phone_tail"):
        setattr(target, field, getattr(source, field))


def _with_home_sites(phases: list[dict], first_site_kind: str, home: str) -> list[dict]:
    """Later phases at home after a phase in a hotel are spent at the home address, if it is known."""
    if first_site_kind != "hotel" or not home:
        return phases
    at_home = set(ControlType.objects.current().filter(at_home=True).values_list("code", flat=True))
    out = [dict(phases[0])]
    for p in phases[1:]:
        p = dict(p)
        if p["type"] in at_home and not p.get("site_address"):
            p.update(site_kind="home", site_address=home[:200])
        out.append(p)
    return out


def _new_case(*, ctype: ControlType, unit: Unit, name: str, start: dt.date, phases: list[dict], phase_index: int,
              site_kind: str, site_address: str, site_room: str, protocol_name: str, reason: str,
              resident: Resident | None, pushed_person: PushedPerson | None, id_masked: str,
              previous: ControlCase | None, acting_user, phone: str = "", contact_from=None) -> ControlCase:
    """Insert a case with its measures checklist and its test samples (day N → start + N − 1)."""
    phase = phases[phase_index]
    case = ControlCase(
        type=ctype, unit=unit, path=unit.path, resident=resident, pushed_person=pushed_person, name=name,
        id_masked=id_masked, phases=phases, phase_index=phase_index, protocol_name=protocol_name[:100],
        start_date=start, end_date=ph.end_date(start, phase["days"]), site_kind=site_kind,
        site_address=site_address[:200], site_room=site_room[:20], previous=previous, reason=reason[:300],
        created_by=acting_user if getattr(acting_user, "is_authenticated", False) else None,
    )
    if contact_from is not None:
        _copy_contact(contact_from, case)
    else:
        case.set_phone(phone)
    case.save()
    MeasureItem.objects.bulk_create(
        [MeasureItem(case=case, key=m["key"], label=m.get("label") or m["key"]) for m in ctype.measures or []])
    TestSample.objects.bulk_create(
        [TestSample(case=case, day=d, date=ph.test_date(start, d)) for d in phase.get("tests") or []])
    return case


def _audit_open(case: ControlCase, acting_user, **extra) -> None:
    audit.record(actor=acting_user, action="control.case.open", target=case, changes={
        "type": case.type.code, "unit": case.unit_id, "name": case.name, "id": case.id_masked,
        "phone": case.phone_masked, "start_date": case.start_date.isoformat(),
        "end_date": case.end_date.isoformat(), "phase_index": case.phase_index, "phases": case.phases,
        "protocol": case.protocol_name, "site": [case.site_kind, case.site_address, case.site_room],
        "reason": case.reason, "resident": case.resident_id, "pushed_person": case.pushed_person_id,
        "previous": case.previous_id, **extra})


def _already_open(resident: Resident | None, person: PushedPerson | None) -> ControlCase | None:
    qs = ControlCase.objects.filter(state__in=OPEN_CASE_STATES)
    if resident is not None:
        found = qs.filter(resident=resident).first()
        if found:
            return found
    if person is not None:
        return qs.filter(pushed_person=person).first()
    return None


def _copy_team(source: ControlCase, target: ControlCase) -> list[TeamMember]:
    members = []
    for m in source.team.all():
        copy = TeamMember(case=target, slot=m.slot, user_id=m.user_id, name=m.name)
        _copy_contact(m, copy)
        members.append(copy)
    TeamMember.objects.bulk_create(members)
    return members


def _tell_team(case: ControlCase, members, *, key: str, subject: str, body: str) -> None:
    from django.contrib.auth import get_user_model

    ids = {m.user_id for m in members if m.user_id}
    for user in get_user_model().objects.filter(pk__in=ids):
        notify_user(user, key=f"{key}:{user.pk}", subject=subject, body=body)


# --- opening ---------------------------------------------------------------------------------------------

def do_open_case(*, type_code: str, unit: Unit, name: str, phone: str = "", resident: Resident | None = None,
                 pushed_person: PushedPerson | None = None, start_date: dt.date, site_kind: str,
                 site_address: str, site_room: str = "", phases: list[dict] | None = None, protocol_name: str = "",
                 reason: str = "", acting_user) -> ControlCase:
    """Put a person under control. ``phases`` default to the protocol's (the named version, else the one in
    force on ``start_date``) for this type, else the type's default; the first phase must be of this type.
    An empty ``site_address`` at home means the person's home address (register, else as pushed)."""
    return _open_case(type_code=type_code, unit=unit, name=name, phone=phone, resident=resident,
                      pushed_person=pushed_person, start_date=start_date, site_kind=site_kind,
                      site_address=site_address, site_room=site_room, phases=phases, protocol_name=protocol_name,
                      reason=reason, acting_user=acting_user)


def _open_case(*, type_code, unit, name, phone, resident, pushed_person, start_date, site_kind, site_address,
               site_room, phases, protocol_name, reason, acting_user, verification=None) -> ControlCase:
    ctype = control_type(type_code)
    if not isinstance(start_date, dt.date) or isinstance(start_date, dt.datetime):
        raise ControlError("start_date", "请填写开始日期")
    if site_kind not in SITE_KINDS:
        raise ControlError("site_kind", "应为居家（home）或集中隔离点（hotel）")
    if ctype.at_home != (site_kind == "home"):
        raise ControlError("site_kind", f"{ctype.name_zh}的地点应为{'居家' if ctype.at_home else '集中隔离点'}")
    name = _text("name", name or (resident.name if resident else "") or (pushed_person.name if pushed_person else ""),
                 50, required=True)
    if phone:
        try:
            phone = normalize_phone(phone)
        except ValueError as exc:
            if verification is None:
                raise ControlError("phone", str(exc)) from None
            # As pushed and verified: keep it rather than refuse the case over an odd number.
    elif resident is not None:
        phone = resident.reveal_phone()
    elif pushed_person is not None:
        phone = pushed_person.reveal_phone()
    home = home_address(resident, pushed_person, verification)
    site_address = _text("site_address", site_address or (home if site_kind == "home" else ""), 200, required=True)
    site_room = _text("site_room", site_room, 20)
    reason = _text("reason", reason, 300)
    type_codes = set(ControlType.objects.current().values_list("code", flat=True))
    if phases is None:
        phases, protocol_name = ph.default_phases(ctype.code, start_date, protocol_name)
    else:
        try:
            phases = ph.clean_phases(phases, type_codes)
        except ph.PhaseError as exc:
            raise ControlError(exc.field, exc.message) from None
        if phases[0]["type"] != ctype.code:
            raise ControlError("phases[0].type", "第一个阶段应为所选的管控类型")
    phases = _with_home_sites(phases, site_kind, home)
    with transaction.atomic():
        _authorize(acting_user, Perm.MANAGE_CONTROL)
        if acting_user is not None:
            access_unit(acting_user, unit.pk)
            if resident is not None:
                access_resident(acting_user, resident.pk)
            if pushed_person is not None and not scoped(acting_user, PushedPerson.objects).filter(
                    pk=pushed_person.pk).exists():
                raise Http404("no such person in your part of the district")
        existing = _already_open(resident, pushed_person)
        if existing is not None:
            raise ControlError("resident", f"该人员已在管控中（{existing.type.name_zh}，至{existing.end_date:%Y-%m-%d}）")
        id_masked = (resident.id_masked if resident else "") or (pushed_person.id_masked if pushed_person else "")
        case = _new_case(ctype=ctype, unit=unit, name=name, start=start_date, phases=phases, phase_index=0,
                         site_kind=site_kind, site_address=site_address, site_room=site_room,
                         protocol_name=protocol_name, reason=reason, resident=resident, pushed_person=pushed_person,
                         id_masked=id_masked, previous=None, acting_user=acting_user, phone=phone)
        _audit_open(case, acting_user, verification=getattr(verification, "pk", None))
    return case


def do_open_case_from_verification(verification: Verification, *, acting_user, unit: Unit | None = None,
                                   start_date: dt.date | None = None, site_kind: str = "", site_address: str = "",
                                   site_room: str = "", phases: list[dict] | None = None,
                                   reason: str = "") -> ControlCase:
    """Open the case a verification asked for (outcome ``new_control``) with the measure staff confirmed.

    The phases are the protocol rule the recommendation used when the confirmed measure is the recommended
    one (e.g. 第八版 high risk: 14 days centralized, then 7 days home monitoring), else the protocol in force
    on the start date for that measure. The unit defaults to the one handling the person, the start to today,
    the site to the person's home (a hotel needs ``site_address``)."""
    ver = Verification.objects.select_related("person", "person__resident__household", "person__unit").get(
        pk=verification.pk)
    if ver.outcome != Outcome.NEW_CONTROL:
        raise ControlError("outcome", "核查结果不是“需新增管控”")
    code = ph.type_code_for(ver.measure)
    if code is None:
        label = Measure(ver.measure).label if ver.measure in Measure.values else ver.measure
        raise ControlError("measure", f"“{label}”不建立管控个案")
    person = ver.person
    unit = unit or person.unit
    if unit is None:
        raise ControlError("unit", "该人员尚未分派到单位")
    start = start_date or timezone.localdate()
    ctype = control_type(code)
    protocol_name = ""
    if phases is None:
        from bihuan.policy.rules import explain

        try:
            rec = explain(person, ver)
        except Exception:  # noqa: BLE001 - advice only: fall back to the type's defaults
            log.exception("policy.explain failed for person %s", person.pk)
            rec = None
        if rec is not None and rec.rule and rec.measure == ver.measure and rec.protocol is not None:
            phases, protocol_name = ph.rule_phases(rec.rule), rec.protocol.name
        else:
            phases, protocol_name = ph.default_phases(code, start)
    if not reason:
        reason = ver.recommendation_basis or f"核查结果：需新增管控（{Measure(ver.measure).label}）"
        if ver.override_reason:
            reason = f"{reason}；调整理由：{ver.override_reason}"
    return _open_case(type_code=code, unit=unit, name=person.name, phone=person.reveal_phone(),
                      resident=person.resident, pushed_person=person, start_date=start,
                      site_kind=site_kind or ("home" if ctype.at_home else "hotel"), site_address=site_address,
                      site_room=site_room, phases=phases, protocol_name=protocol_name, reason=reason[:300],
                      acting_user=acting_user, verification=ver)


# --- period ----------------------------------------------------------------------------------------------

def do_change_period(case: ControlCase, days_delta: int, reason: str, *, acting_user,
                     today: dt.date | None = None) -> ControlCase:
    """Extend (``days_delta`` > 0) or shorten this phase, with a reason. Test samples are re-planned: days past
    the new end that were not sampled go; the release test moves to the new last day (only dates from today
    on are added)."""
    if isinstance(days_delta, bool) or not isinstance(days_delta, int) or days_delta == 0:
        raise ControlError("days_delta", "请填写延长或缩短的天数")
    reason = _text("reason", reason, 300, required=True)
    today = today or timezone.localdate()
    with transaction.atomic():
        _authorize(acting_user, Perm.MANAGE_CONTROL)
        case = _locked(case, acting_user)
        _open(case)
        old_days = (case.end_date - case.start_date).days + 1
        new_days = old_days + days_delta
        if not 1 <= new_days <= ph.MAX_DAYS:
            raise ControlError("days_delta", f"调整后的期限应在 1–{ph.MAX_DAYS} 天之间")
        samples = {s.day: s for s in case.tests.all()}
        plan = ph.replan_tests(sorted(samples), old_days, new_days)
        removed = [d for d, s in samples.items() if d not in plan and not s.result]
        added = [d for d in plan if d not in samples and ph.test_date(case.start_date, d) >= today]
        TestSample.objects.filter(case=case, day__in=removed).delete()
        TestSample.objects.bulk_create(
            [TestSample(case=case, day=d, date=ph.test_date(case.start_date, d)) for d in added])
        before_end, before_state = case.end_date, case.state
        case.end_date = ph.end_date(case.start_date, new_days)
        phases = [dict(p) for p in case.phases] or [ph.step(case.type.code, old_days)]
        phases[case.phase_index] = {**phases[case.phase_index], "days": new_days,
                                    "tests": sorted((set(samples) - set(removed)) | set(added))}
        case.phases = phases
        if case.state == CaseState.RELEASE_PROPOSED and days_delta > 0:
            case.state = CaseState.ACTIVE
        case.save(update_fields=["end_date", "phases", "state"])
        audit.record(actor=acting_user, action="control.case.period", target=case, changes={
            "days": [old_days, new_days], "end_date": [before_end.isoformat(), case.end_date.isoformat()],
            "reason": reason, "tests_added": sorted(added), "tests_removed": sorted(removed),
            "state": [before_state, case.state]})
    return case


# --- measures --------------------------------------------------------------------------------------------

def _photo_extension(photo) -> str:
    size = getattr(photo, "size", None)
    if size is not None and size > PHOTO_MAX_BYTES:
        raise ControlError("photo", "照片不能超过 10 MB")
    photo.seek(0)
    head = photo.read(12)
    photo.seek(0)
    for magic, ext in PHOTO_FORMATS.items():
        if head.startswith(magic):
            return ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    raise ControlError("photo", "请上传照片（JPEG、PNG、GIF 或 WebP）")


def do_mark_measure(case: ControlCase, key: str, *, acting_user, photo=None) -> MeasureItem:
    """Mark one item of the measures checklist done (by whom, when). An item the type marks ``photo`` (the
    signed agreement) needs a photo: ``photo`` is an ``UploadedFile``, stored under MEDIA_ROOT."""
    ext = _photo_extension(photo) if photo is not None else ""
    with transaction.atomic():
        _authorize(acting_user, Perm.CARE)
        case = _locked(case, acting_user, member_ok=True)
        _open(case)
        item = MeasureItem.objects.select_for_update().filter(case=case, key=key).first()
        if item is None:
            raise ControlError("key", f"没有这项措施：{key}")
        spec = next((m for m in case.type.measures or [] if m.get("key") == key), {})
        if photo is not None:
            item.photo.save(f"{case.pk}-{key}{ext}", photo, save=False)
        if spec.get("photo") and not item.photo:
            raise ControlError("photo", f"“{item.label}”需要上传照片")
        first = item.done_at is None
        if first:
            item.done_at = timezone.now()
            item.done_by = acting_user if getattr(acting_user, "is_authenticated", False) else None
        item.save()
        audit.record(actor=acting_user, action="control.measure.done", target=item, changes={
            "case": case.pk, "key": key, "label": item.label, "photo": item.photo.name or "",
            "first": first})
    return item


# --- five-for-one team -----------------------------------------------------------------------------------

def do_set_team_member(case: ControlCase, slot: str, *, user=None, name: str = "", phone: str = "",
                       acting_user) -> TeamMember | None:
    """Fill a five-for-one (五包一) slot with a staff account (who then sees the case on their phone and is
    told) or a name and phone. Neither a user nor a name empties the slot (returns None)."""
    if slot not in TeamSlot.values:
        raise ControlError("slot", "没有这个岗位")
    staff = Staff.objects.filter(user=user).first() if user is not None else None
    name = _text("name", name or (staff.name if staff else "") or (user.get_full_name() or user.username
                                                                    if user is not None else ""), 50)
    if phone:
        try:
            phone = normalize_phone(phone)
        except ValueError as exc:
            raise ControlError("phone", str(exc)) from None
    elif staff is not None and staff.phone_sealed:
        phone = crypto.unseal(staff.phone_sealed)
    with transaction.atomic():
        _authorize(acting_user, Perm.MANAGE_CONTROL)
        case = _locked(case, acting_user)
        _open(case)
        member = TeamMember.objects.select_for_update().filter(case=case, slot=slot).first()
        before = {"name": member.name, "user": member.user_id} if member else None
        if not name:
            if member is not None:
                member.delete()
                audit.record(actor=acting_user, action="control.team.clear", target=case,
                             changes={"slot": slot, "before": before})
            return None
        member = member or TeamMember(case=case, slot=slot)
        new_user = user is not None and member.user_id != user.pk
        member.user, member.name = user, name
        member.set_phone(phone)
        member.save()
        audit.record(actor=acting_user, action="control.team.set", target=case, changes={
            "slot": slot, "before": before, "name": name, "user": getattr(user, "pk", None),
            "phone": member.phone_masked})
        if new_user:
            notify_user(user, key=f"control.team:{case.pk}:{slot}:{user.pk}",
                        subject=f"五包一：您负责{case.name}（{case.type.name_zh}）",
                        body=f"{TeamSlot(slot).label}：{case.name}，{case.type.name_zh}，"
                             f"{case.start_date:%m月%d日}至{case.end_date:%m月%d日}，地点：{case.site_address}"
                             f"{case.site_room}")
    return member


# --- moving up and phases --------------------------------------------------------------------------------

def do_move_up(case: ControlCase, type_code: str, reason: str, *, acting_user, site_address: str = "",
               site_room: str = "", start_date: dt.date | None = None) -> ControlCase:
    """Move a case up to a stricter type (home monitoring → home isolation → centralized quarantine) with a
    reason: this case closes as ``moved_up`` and a new one opens (``previous`` = this), starting today, with
    the new type's phases from the protocol in force. A move into a hotel needs ``site_address``."""
    reason = _text("reason", reason, 300, required=True)
    ctype = control_type(type_code)
    start = start_date or timezone.localdate()
    with transaction.atomic():
        _authorize(acting_user, Perm.MANAGE_CONTROL)
        case = _locked(case, acting_user)
        _open(case)
        if ctype.rank <= case.type.rank:
            raise ControlError("type_code", f"只能升级为比“{case.type.name_zh}”更严格的管控")
        if ctype.at_home:
            kind = "home"
            address = site_address or (case.site_address if case.site_kind == "home" else "") or home_address(
                case.resident, case.pushed_person)
        else:
            kind, address = "hotel", site_address
        address = _text("site_address", address, 200, required=True)
        if not ControlCase.objects.filter(pk=case.pk, state__in=OPEN_CASE_STATES).update(state=CaseState.MOVED_UP):
            raise ControlError("state", "该个案已结束")
        phases, protocol_name = ph.default_phases(ctype.code, start)
        phases = _with_home_sites(phases, kind, home_address(case.resident, case.pushed_person)
                                  if case.resident or case.pushed_person else "")
        new = _new_case(ctype=ctype, unit=case.unit, name=case.name, start=start, phases=phases, phase_index=0,
                        site_kind=kind, site_address=address, site_room=_text("site_room", site_room, 20),
                        protocol_name=protocol_name, reason=reason, resident=case.resident,
                        pushed_person=case.pushed_person, id_masked=case.id_masked, previous=case,
                        acting_user=acting_user, contact_from=case)
        members = _copy_team(case, new)
        end_case_loops(case, acting_user=acting_user)
        audit.record(actor=acting_user, action="control.case.move_up", target=case, changes={
            "type": [case.type.code, ctype.code], "reason": reason, "next": new.pk,
            "state": [case.state, CaseState.MOVED_UP]})
        _audit_open(new, acting_user)
        _tell_team(new, members, key=f"control.move_up:{new.pk}", subject=f"升级管控：{new.name}转为{ctype.name_zh}",
                   body=f"{case.type.name_zh} → {ctype.name_zh}，理由：{reason}；地点：{address}{new.site_room}")
    case.state = CaseState.MOVED_UP
    return new


def phase_ready(case: ControlCase, today: dt.date) -> bool:
    """This phase's period is over (or ends today) and every test of it is negative."""
    return (case.state == CaseState.ACTIVE and case.end_date <= today
            and not case.tests.exclude(result=TestResult.NEGATIVE).exists())


def has_next_phase(case: ControlCase) -> bool:
    return case.phase_index + 1 < len(case.phases or [])


def advance_phase(case: ControlCase, *, today: dt.date | None = None, acting_user=None) -> ControlCase | None:
    """Close a phase that is over with its tests negative as ``phase_ended`` and open the next phase of the
    chain as a new case (``previous`` = this; same person, unit, protocol and team). It starts the day after
    this phase ends (today, if that is past). Returns the new case, or None when another worker was first."""
    today = today or timezone.localdate()
    with transaction.atomic():
        _authorize(acting_user, Perm.MANAGE_CONTROL)
        case = _locked(case, acting_user)
        if case.state != CaseState.ACTIVE:
            return None
        if not has_next_phase(case):
            raise ControlError("phases", "没有下一阶段")
        if not phase_ready(case, today):
            raise ControlError("tests", "本阶段未到期或核酸结果不全为阴性")
        nxt = case.phases[case.phase_index + 1]
        ctype = control_type(nxt["type"])
        if not ControlCase.objects.filter(pk=case.pk, state=CaseState.ACTIVE).update(state=CaseState.PHASE_ENDED):
            return None
        start = max(case.end_date + dt.timedelta(days=1), today)
        if nxt.get("site_address"):
            kind, address, room = nxt.get("site_kind") or ("home" if ctype.at_home else "hotel"), \
                nxt["site_address"], nxt.get("site_room", "")
        elif ctype.at_home and case.site_kind != "home":
            kind, room = "home", ""
            address = home_address(case.resident, case.pushed_person) or case.site_address
        else:
            kind, address, room = case.site_kind, case.site_address, case.site_room
        new = _new_case(ctype=ctype, unit=case.unit, name=case.name, start=start, phases=case.phases,
                        phase_index=case.phase_index + 1, site_kind=kind, site_address=address, site_room=room,
                        protocol_name=case.protocol_name,
                        reason=f"{case.type.name_zh}{(case.end_date - case.start_date).days + 1}天期满，核酸阴性，"
                               f"转入{ctype.name_zh}",
                        resident=case.resident, pushed_person=case.pushed_person, id_masked=case.id_masked,
                        previous=case, acting_user=acting_user, contact_from=case)
        members = _copy_team(case, new)
        end_case_loops(case, acting_user=acting_user)
        audit.record(actor=acting_user, action="control.case.phase_ended", target=case, changes={
            "next": new.pk, "type": [case.type.code, ctype.code], "state": [CaseState.ACTIVE, CaseState.PHASE_ENDED]})
        _audit_open(new, acting_user)
        _tell_team(new, members, key=f"control.phase:{new.pk}", subject=f"转入下一阶段：{new.name}，{ctype.name_zh}",
                   body=f"{case.type.name_zh}期满 → {ctype.name_zh}，{new.start_date:%m月%d日}至"
                        f"{new.end_date:%m月%d日}，地点：{new.site_address}{new.site_room}")
    case.state = CaseState.PHASE_ENDED
    return new


# --- care visits -----------------------------------------------------------------------------------------

def do_record_care_visit(*, day: dt.date, resident: Resident | None = None, case: ControlCase | None = None,
                         note: str = "", needs: list[str] | tuple[str, ...] = (), acting_user) -> CareVisit:
    """Record today's care visit (关爱走访) to a key-group resident or a person under home control, and what
    they asked for (``needs``: ``ServiceKind`` values, e.g. groceries). Recording again the same day updates it."""
    if resident is None and case is None:
        raise ControlError("resident", "请选择走访对象")
    needs = list(dict.fromkeys(needs or []))
    bad = [n for n in needs if n not in ServiceKind.values]
    if bad:
        raise ControlError("needs", f"未知的需求：{bad[0]}")
    note = _text("note", note, 300)
    with transaction.atomic():
        _authorize(acting_user, Perm.CARE)
        if case is not None:
            case = access_case(acting_user, case.pk, member_ok=True) if acting_user is not None else case
        if resident is not None and acting_user is not None:
            try:
                resident = access_resident(acting_user, resident.pk)
            except Http404:
                if case is None or case.resident_id != resident.pk:
                    raise
        if resident is None and case is not None and case.resident_id:
            resident = case.resident
        if case is None and resident is not None:
            case = ControlCase.objects.filter(resident=resident, state__in=OPEN_CASE_STATES, site_kind="home").first()
        unit_id = resident.unit_id if resident is not None else case.unit_id
        path = resident.path if resident is not None else case.path
        lookup = {"resident": resident} if resident is not None else {"case": case, "resident": None}
        visit, created = CareVisit.objects.select_for_update().get_or_create(
            date=day, **lookup, defaults={"case": case, "unit_id": unit_id, "path": path})
        visit.case, visit.note, visit.needs = case, note, needs
        visit.by = acting_user if getattr(acting_user, "is_authenticated", False) else None
        visit.save()
        audit.record(actor=acting_user, action="control.care_visit", target=visit, changes={
            "resident": getattr(resident, "pk", None), "case": getattr(case, "pk", None), "date": day.isoformat(),
            "needs": needs, "note": note, "created": created})
    return visit
