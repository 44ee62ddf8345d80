"""All writes to staff accounts and 包保 posts. Each runs in a transaction and writes its audit row.

Who may do what (the rules every page, API route and the ``import_staff`` command go through):

- ``Perm.MANAGE_STAFF`` (held by unit leaders: district commander, command office, township and community staff,
  property managers / villager-group heads) lets its holder appoint, edit, move and deactivate the staff of units
  in its own subtree — never a sibling's or an ancestor's (``access_staff`` answers 404 for those, as for any
  record outside one's part of the district).
- A role is offered only for the levels it belongs to (``roles.ROLE_LEVELS``; departments only at department
  units) and is given only by someone whose own permissions include all of the role's (``roles.may_grant``).
- Nobody deactivates, moves or demotes themselves.

A new account gets a first password, generated here, returned once to the caller (the page shows it, the command
writes it to a file) and never stored in clear; the account must change it at its first login
(``Staff.must_change_password``, enforced by ``middleware.StaffMiddleware``).

Deactivation takes effect at once: the user is inactive (sessions stop resolving, login is refused, API tokens
are refused by ``core.api_auth`` and revoked here as well), and the person's open loops are handed back to their
unit by the loop engine, so nothing is orphaned.

``acting_user=None`` is the console or the system itself (the demo generator, tests' ``create_*`` helpers):
no permission or scope check, an audit row without actor.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.core.models import ApiToken
from bihuan.core.personal import normalize_phone
from bihuan.core.roles import RESPONSIBLE_ROLES, Perm, Role, may_grant, roles_for_level
from bihuan.loops import engine as loops_engine

from .access import access_staff, access_unit, require, scope_of
from .models import MAX_LEVEL, Household, Language, Staff, Unit, UnitKind, UnitLeader

# No 0/O, 1/l/I: a first password is read off a screen or a sheet and typed on a phone.
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 12  # 12 characters of 55: about 69 bits
# A first password is random and high-entropy, so key stretching adds nothing to it; hashing it with fewer
# PBKDF2 rounds lets an import appoint thousands of people in seconds. Django re-hashes with the full count at
# the first login (the hasher's must_update), and the password must be changed then anyway.
FIRST_PASSWORD_ITERATIONS = 10_000


class StaffError(Refused):
    """A staff write was refused; names the field."""


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def first_password_hash(password: str) -> str:
    hasher = get_hasher("default")
    if isinstance(hasher, PBKDF2PasswordHasher):
        return hasher.encode(password, hasher.salt(), iterations=FIRST_PASSWORD_ITERATIONS)
    return hasher.encode(password, hasher.salt())


def roles_for_unit(unit: Unit) -> list[str]:
    """The roles a post at ``unit`` may have: by level, and at level 2 by the unit's kind."""
    roles = roles_for_level(unit.level)
    if unit.kind == UnitKind.DEPARTMENT:
        return [r for r in roles if r != Role.COMMAND_OFFICE]
    return [r for r in roles if r != Role.DEPARTMENT]


def grantable_roles(acting_user, unit: Unit) -> list[str]:
    """The roles ``acting_user`` may give at ``unit`` (all of the unit's for the console)."""
    roles = roles_for_unit(unit)
    if acting_user is None:
        return roles
    scope = scope_of(acting_user)
    return [r for r in roles if may_grant(scope.role, r)]


# --- checks shared by the actions and the staff sheet of the workbook ---------------------------------------


def check_role(unit: Unit, role: str, acting_user) -> str:
    if role not in Role.values:
        raise StaffError("role", f"unknown role {role!r}")
    if role not in roles_for_unit(unit):
        raise StaffError.conflict("role", f"{Role(role).label} cannot hold a post at a unit of level {unit.level}")
    if acting_user is not None and not may_grant(scope_of(acting_user).role, role):
        raise StaffError("role", f"{Role(role).label} has more power than your own role", status=403)
    return role


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise StaffError("name", "required")
    if len(name) > Staff._meta.get_field("name").max_length:
        raise StaffError("name", "too long")
    return name


def check_phone(phone: str) -> str:
    if not phone:
        return ""
    try:
        return normalize_phone(phone)
    except ValueError as exc:
        raise StaffError("phone", str(exc)) from exc


def check_email(email: str) -> str:
    """An address for email notices, or "" (none)."""
    email = (email or "").strip()
    if not email:
        return ""
    try:
        validate_email(email)
    except ValidationError:
        raise StaffError("email", "not an email address") from None
    return email.lower()


def check_language(language: str) -> str:
    if language not in Language.values:
        raise StaffError("language", f"must be one of {', '.join(v or '(browser)' for v in Language.values)}")
    return language


def check_username(username: str) -> str:
    username = (username or "").strip()
    if not username:
        raise StaffError("username", "required")
    User = get_user_model()
    field = User._meta.get_field(User.USERNAME_FIELD)
    try:
        field.run_validators(username)
    except Exception as exc:  # noqa: BLE001 - Django's ValidationError: its message is the reason
        raise StaffError("username", " ".join(getattr(exc, "messages", [str(exc)]))) from None
    if len(username) > field.max_length:
        raise StaffError("username", "too long")
    if User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": username}).exists():
        raise StaffError.conflict("username", f"{username!r} is taken")
    return username


def check_households(unit: Unit, role: str, household_ids: Iterable[int] | None) -> list[int]:
    """The households a grid role answers for: households of its own grid only; none for other roles."""
    ids = sorted(set(household_ids or ()))
    if not ids:
        return []
    if role not in RESPONSIBLE_ROLES or unit.level != MAX_LEVEL:
        raise StaffError.conflict("households", "only grid workers, building leaders and villager representatives answer "
                                       "for households")
    found = set(Household.objects.filter(pk__in=ids, unit=unit).values_list("pk", flat=True))
    if missing := [i for i in ids if i not in found]:
        raise StaffError.conflict("households", f"household {missing[0]} is not in the grid {unit.name}")
    return ids


def _allowed_unit(acting_user, unit: Unit) -> Unit:
    if acting_user is None:
        return unit
    require(acting_user, Perm.MANAGE_STAFF)
    return access_unit(acting_user, unit.pk)


def _not_self(acting_user, staff: Staff, what: str) -> None:
    if acting_user is not None and acting_user.pk == staff.user_id:
        raise StaffError("", f"you cannot {what} yourself", status=403)


# --- the actions -------------------------------------------------------------------------------------------


def do_create_staff(*, unit: Unit, username: str, name: str, role: str, phone: str = "", email: str = "",
                    language: str = "", household_ids: Iterable[int] | None = None, password: str | None = None,
                    acting_user) -> tuple[Staff, str]:
    """Appoint a person: a new account at ``unit`` with ``role``. Returns the staff row and the first password
    (generated unless ``password`` is given, which only the console and tests do; then no change is forced)."""
    with transaction.atomic():
        unit = _allowed_unit(acting_user, unit)
        username = check_username(username)
        name, phone, language = check_name(name), check_phone(phone), check_language(language)
        email = check_email(email)
        role = check_role(unit, role, acting_user)
        households = check_households(unit, role, household_ids)
        first = password is None
        password = new_password() if first else password
        User = get_user_model()
        user = User(**{User.USERNAME_FIELD: username}, email=email)
        user.password = first_password_hash(password) if first else ""
        if not first:
            user.set_password(password)
        user.save()
        staff = Staff(user=user, unit=unit, role=role, name=name, language=language, must_change_password=first)
        staff.set_phone(phone)
        staff.save()
        if households:
            staff.households.set(households)
        audit.record(actor=acting_user, action="staff.create", target=staff,
                     changes={"unit": unit.pk, "role": role, "username": username, "name": name,
                              "phone": staff.phone_masked, "email": bool(email), "language": language,
                              "households": len(households)})
    return staff, password


EDITABLE = ("name", "phone", "email", "role", "language", "household_ids")


def do_update_staff(*, staff: Staff, changes: dict, acting_user) -> Staff:
    """Change a person's name, phone, role (valid for their unit, no more power than the actor's), language and
    the households they answer for. The audit row holds masked values only."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise StaffError(sorted(unknown)[0], "cannot be changed here")
    with transaction.atomic():
        if acting_user is not None:
            require(acting_user, Perm.MANAGE_STAFF)
            staff = access_staff(acting_user, staff.pk, for_update=True)
        if not staff.is_active:
            raise StaffError.conflict("", "the account is deactivated")
        diff: dict[str, list] = {}
        if "name" in changes and (name := check_name(changes["name"])) != staff.name:
            diff["name"] = [staff.name, name]
            staff.name = name
        if "phone" in changes:
            phone, before = check_phone(changes["phone"]), staff.phone_masked
            if phone != staff.reveal_phone():
                staff.set_phone(phone)
                diff["phone"] = [before, staff.phone_masked]
        if "email" in changes and (email := check_email(changes["email"])) != staff.user.email:
            diff["email"] = [bool(staff.user.email), bool(email)]
            staff.user.email = email
            staff.user.save(update_fields=["email"])
        role = staff.role
        if "role" in changes and changes["role"] != staff.role:
            if acting_user is not None and acting_user.pk == staff.user_id:
                raise StaffError("role", "you cannot change your own role", status=403)
            if acting_user is not None and not may_grant(scope_of(acting_user).role, staff.role):
                raise StaffError("role", "this person's role has more power than your own", status=403)
            role = check_role(staff.unit, changes["role"], acting_user)
            diff["role"] = [staff.role, role]
            staff.role = role
        if "language" in changes and (language := check_language(changes["language"])) != staff.language:
            diff["language"] = [staff.language, language]
            staff.language = language
        if "household_ids" in changes or ("role" in diff and role not in RESPONSIBLE_ROLES):
            ids = check_households(staff.unit, role, changes.get("household_ids") or [])
            before_ids = sorted(staff.households.values_list("pk", flat=True))
            if ids != before_ids:
                staff.households.set(ids)
                diff["households"] = [len(before_ids), len(ids)]
        if diff:
            staff.save()
            audit.record(actor=acting_user, action="staff.update", target=staff, changes=diff)
    return staff


def do_move_staff(*, staff: Staff, unit: Unit, role: str | None = None, acting_user) -> Staff:
    """Move a person to another unit of the actor's subtree (with a new role if the old one does not fit there).
    The households they answered for stay with the old grid."""
    with transaction.atomic():
        if acting_user is not None:
            require(acting_user, Perm.MANAGE_STAFF)
            staff = access_staff(acting_user, staff.pk, for_update=True)
            unit = access_unit(acting_user, unit.pk)
            _not_self(acting_user, staff, "move")
            if not may_grant(scope_of(acting_user).role, staff.role):
                raise StaffError("role", "this person's role has more power than your own", status=403)
        if not staff.is_active:
            raise StaffError.conflict("", "the account is deactivated")
        if unit.pk == staff.unit_id and (role is None or role == staff.role):
            return staff
        new_role = check_role(unit, role or staff.role, acting_user)
        before = [staff.unit_id, staff.role]
        staff.unit, staff.role = unit, new_role
        staff.save(update_fields=["unit", "role"])
        staff.households.clear()
        audit.record(actor=acting_user, action="staff.move", target=staff,
                     changes={"unit": [before[0], unit.pk], "role": [before[1], new_role]})
    return staff


def do_deactivate_staff(*, staff: Staff, reason: str = "", acting_user) -> Staff:
    """Take a person's access away at once and hand their open loops back to their unit."""
    with transaction.atomic():
        if acting_user is not None:
            require(acting_user, Perm.MANAGE_STAFF)
            staff = access_staff(acting_user, staff.pk, for_update=True)
            _not_self(acting_user, staff, "deactivate")
            if not may_grant(scope_of(acting_user).role, staff.role):
                raise StaffError("role", "this person's role has more power than your own", status=403)
        if not staff.is_active:
            return staff
        user = staff.user
        user.is_active = False
        user.save(update_fields=["is_active"])
        staff.deactivated_at = timezone.now()
        staff.save(update_fields=["deactivated_at"])
        tokens = ApiToken.objects.filter(user=user, revoked=False).update(revoked=True)
        # The loop engine moves every open loop the person owns back to their unit (with its events).
        loops_engine.hand_back_user(user, actor=acting_user)
        UnitLeader.objects.filter(staff=staff).delete()
        audit.record(actor=acting_user, action="staff.deactivate", target=staff,
                     changes={"reason": reason[:200], "unit": staff.unit_id, "tokens_revoked": tokens})
    return staff


def do_reset_staff_password(*, staff: Staff, acting_user) -> str:
    """A new first password for a person who lost theirs; shown once, to be changed at the next login."""
    with transaction.atomic():
        if acting_user is not None:
            require(acting_user, Perm.MANAGE_STAFF)
            staff = access_staff(acting_user, staff.pk, for_update=True)
            _not_self(acting_user, staff, "reset the password of")
            if not may_grant(scope_of(acting_user).role, staff.role):
                raise StaffError("role", "this person's role has more power than your own", status=403)
        if not staff.is_active:
            raise StaffError.conflict("", "the account is deactivated")
        password = new_password()
        staff.user.password = first_password_hash(password)
        staff.user.save(update_fields=["password"])
        staff.must_change_password = True
        staff.save(update_fields=["must_change_password"])
        audit.record(actor=acting_user, action="staff.reset_password", target=staff, changes={})
    return password


def do_change_own_password(*, user, old_password: str, new_password: str) -> None:
    """The person's own new password (the change-password page); clears the first-password flag."""
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    if not user.check_password(old_password):
        raise StaffError("old_password", "the current password is wrong")
    if new_password == old_password:
        raise StaffError("new_password", "choose a password different from the current one")
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise StaffError("new_password", " ".join(exc.messages)) from None
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        Staff.objects.filter(user=user).update(must_change_password=False)
        audit.record(actor=user, action="staff.change_password", target_type="auth.user", target_id=user.pk)


def do_appoint_leader(*, unit: Unit, staff: Staff, duty: str = "", acting_user) -> UnitLeader:
    """包保: ``staff`` (a cadre the actor may see) answers for ``unit`` (in the actor's subtree)."""
    duty = (duty or "").strip()[:60]
    with transaction.atomic():
        if acting_user is not None:
            unit = _allowed_unit(acting_user, unit)
            staff = access_staff(acting_user, staff.pk)
        if not staff.is_active:
            raise StaffError.conflict("staff", "the account is deactivated")
        leader, created = UnitLeader.objects.get_or_create(unit=unit, staff=staff, defaults={"duty": duty})
        if not created and leader.duty == duty:
            return leader
        leader.duty = duty
        leader.save(update_fields=["duty"])
        audit.record(actor=acting_user, action="unit.appoint_leader", target=unit,
                     changes={"staff": staff.pk, "duty": duty})
    return leader


def do_remove_leader(*, leader: UnitLeader, acting_user) -> None:
    with transaction.atomic():
        if acting_user is not None:
            _allowed_unit(acting_user, leader.unit)
        audit.record(actor=acting_user, action="unit.remove_leader", target=leader.unit,
                     changes={"staff": leader.staff_id})
        leader.delete()


def do_set_no_property_management(*, unit: Unit, value: bool, acting_user) -> Unit:
    """Flag (or unflag) a compound as having no property management (三无小区)."""
    with transaction.atomic():
        if acting_user is not None:
            require(acting_user, Perm.EDIT_REGISTER)
            unit = access_unit(acting_user, unit.pk)
        if unit.level != MAX_LEVEL - 1:
            raise StaffError("no_property_management", "only compounds and villager groups (level 5) have property "
                                                       "management")
        if unit.no_property_management != value:
            unit.no_property_management = value
            unit.save(update_fields=["no_property_management"])
            audit.record(actor=acting_user, action="unit.no_property_management", target=unit,
                         changes={"no_property_management": value})
    return unit
