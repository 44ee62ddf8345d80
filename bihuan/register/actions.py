"""All writes to the register. Each runs in a transaction and writes its audit row.

Staff accounts and 包保 posts are written by ``staff_actions``."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from bihuan.core import audit, reveal
from bihuan.core.errors import Refused
from bihuan.core.personal import birth_date_from_id, normalize_id_number, normalize_phone, sex_from_id
from bihuan.core.pinyin import initials
from bihuan.core.roles import Perm

from .access import access_household, access_resident, access_unit, require
from .models import KINDS_BY_LEVEL, Household, Resident, Unit


class RegisterError(Refused):
    """A write was refused; the message names the field."""


def _child_path(parent: Unit | None) -> str:
    try:
        return Unit.next_child_path(parent)
    except ValueError:
        raise RegisterError(f"unit {parent} has no room for another child") from None


def do_create_unit(*, parent: Unit | None, code: str, name: str, kind: str, aliases: str = "",
                   acting_user) -> Unit:
    level = parent.level + 1 if parent else 1
    if kind not in KINDS_BY_LEVEL.get(level, set()):
        raise RegisterError(f"kind: {kind!r} is not a kind of level {level}")
    with transaction.atomic():
        if parent is not None and acting_user is not None:
            require(acting_user, Perm.EDIT_REGISTER)
            access_unit(acting_user, parent.pk)
        unit = Unit.objects.create(
            level=level, parent=parent, code=code, name=name, kind=kind, aliases=aliases, path=_child_path(parent)
        )
        audit.record(actor=acting_user, action="unit.create", target=unit,
                     changes={"code": code, "name": name, "kind": kind, "parent": parent.pk if parent else None})
    return unit


def do_create_household(*, unit: Unit, code: str, kind: str, address: str, building: str = "",
                        entrance: str = "", room: str = "", house_number: str = "", acting_user) -> Household:
    with transaction.atomic():
        if acting_user is not None:
            require(acting_user, Perm.EDIT_REGISTER)
            access_unit(acting_user, unit.pk)
        household = Household.objects.create(
            unit=unit, path=unit.path, code=code, kind=kind, address=address, building=building,
            entrance=entrance, room=room, house_number=house_number,
        )
        audit.record(actor=acting_user, action="household.create", target=household,
                     changes={"unit": unit.pk, "address": address})
    return household


def do_move_household(*, household: Household, unit: Unit, acting_user) -> Household:
    """Hang a household on another unit (normally: give a blind-spot household its grid)."""
    with transaction.atomic():
        require(acting_user, Perm.EDIT_REGISTER)
        access_household(acting_user, household.pk)
        access_unit(acting_user, unit.pk)
        before = household.unit_id
        household.unit, household.path = unit, unit.path
        household.save(update_fields=["unit", "path", "updated_at"])
        Resident.objects.filter(household=household).update(unit=unit, path=unit.path)
        audit.record(actor=acting_user, action="household.move", target=household,
                     changes={"unit": [before, unit.pk]})
    return household


def _refresh_head(household: Household) -> None:
    """Head name, initials and member count from the residents: the workbook's set-based rule, for one."""
    from .workbook import refresh_households

    refresh_households([household.pk])
    household.refresh_from_db(fields=["head_name", "head_initials", "member_count", "updated_at"])


def do_create_resident(*, household: Household, name: str, id_number: str = "", phone: str = "",
                       sex: str = "", birth_date: dt.date | None = None, relation: str = "head",
                       status: str = "present", flags: dict[str, bool] | None = None, acting_user) -> Resident:
    """Add a resident. The ID number is validated (GB 11643) and sealed; sex and birth date follow from it."""
    if not name.strip():
        raise RegisterError("name: required")
    if id_number:
        try:
            id_number = normalize_id_number(id_number)
        except ValueError as exc:
            raise RegisterError(f"id_number: {exc}") from exc
        birth_date = birth_date or birth_date_from_id(id_number)
        sex = sex or sex_from_id(id_number)
    if phone:
        try:
            phone = normalize_phone(phone)
        except ValueError as exc:
            raise RegisterError(f"phone: {exc}") from exc
    if birth_date is None:
        raise RegisterError("birth_date: required when there is no ID number")
    if sex not in {"M", "F"}:
        raise RegisterError("sex: must be M or F")
    with transaction.atomic():
        if acting_user is not None:
            require(acting_user, Perm.EDIT_REGISTER)
            access_household(acting_user, household.pk)
        resident = Resident(
            household=household, unit_id=household.unit_id, path=household.path, name=name.strip(),
            name_initials=initials(name.strip()), sex=sex, birth_date=birth_date, relation=relation,
            status=status, **(flags or {}),
        )
        resident.set_id_number(id_number)
        resident.set_phone(phone)
        resident.save()
        _refresh_head(household)
        audit.record(actor=acting_user, action="resident.create", target=resident,
                     changes={"household": household.pk, "name": resident.name, "id": resident.id_masked,
                              "phone": resident.phone_masked})
    return resident


EDITABLE_RESIDENT_FIELDS = ("status", "relation", "elderly_alone", "disabled", "pregnant", "chronic_illness",
                            "infant")


def do_update_resident(*, resident: Resident, changes: dict, acting_user) -> Resident:
    """Change plain fields and/or the phone. Masked values go into the audit row, never clear ones."""
    unknown = set(changes) - set(EDITABLE_RESIDENT_FIELDS) - {"phone", "name"}
    if unknown:
        raise RegisterError(f"{sorted(unknown)[0]}: cannot be changed here")
    with transaction.atomic():
        require(acting_user, Perm.EDIT_REGISTER)
        resident = access_resident(acting_user, resident.pk)
        diff: dict[str, list] = {}
        for field in EDITABLE_RESIDENT_FIELDS:
            if field in changes and getattr(resident, field) != changes[field]:
                diff[field] = [getattr(resident, field), changes[field]]
                setattr(resident, field, changes[field])
        if "name" in changes and changes["name"].strip() and changes["name"].strip() != resident.name:
            diff["name"] = [resident.name, changes["name"].strip()]
            resident.name = changes["name"].strip()
            resident.name_initials = initials(resident.name)
        if "phone" in changes:
            try:
                phone = normalize_phone(changes["phone"]) if changes["phone"] else ""
            except ValueError as exc:
                raise RegisterError(f"phone: {exc}") from exc
            before = resident.phone_masked
            resident.set_phone(phone)
            if before != resident.phone_masked or phone:
                diff["phone"] = [before, resident.phone_masked]
        if diff:
            resident.save()
            _refresh_head(resident.household)
            audit.record(actor=acting_user, action="resident.update", target=resident, changes=diff)
    return resident


def do_reveal_resident(*, resident_id: int, acting_user, reason: str) -> dict[str, str]:
    """The full ID number and phone, on purpose: a reason is required, the reads of one user are throttled
    (``core.reveal``), and the read itself is audited with its reason."""
    with transaction.atomic():
        require(acting_user, Perm.REVEAL_PERSONAL)
        resident = access_resident(acting_user, resident_id)
        reason = reveal.reason_of(text=reason)
        reveal.check(acting_user)
        audit.record(actor=acting_user, action="resident.reveal", target=resident,
                     changes={"fields": ["id_number", "phone"], "reason": reason})
    return {"id_number": resident.reveal_id_number(), "phone": resident.reveal_phone()}


def do_purge_personal_data(*, before: dt.date, acting_user=None) -> int:
    """Remove personal data of residents who moved out or died before ``before``; keep the rows (with
    sex, birth year, unit and flags) so that anonymous counts stay right. Set-based and idempotent."""
    from .models import ResidentStatus

    stale = Resident.objects.filter(
        status__in=[ResidentStatus.MOVED_OUT, ResidentStatus.DECEASED], updated_at__date__lt=before,
    ).exclude(name="")
    with transaction.atomic():
        ids = list(stale.values_list("id", flat=True))
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            Resident.objects.filter(id__in=chunk).update(
                name="", name_initials="", id_sealed=b"", id_hash="", id_masked="", id_tail="",
                phone_sealed=b"", phone_hash="", phone_masked="", phone_tail="",
            )
        audit.record(actor=acting_user, action="register.purge", target_type="register.resident",
                     changes={"before": before.isoformat(), "residents": len(ids)})
    return len(ids)
