"""Staff roles and the one declarative permission table."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    DISTRICT_COMMANDER = "district_commander", _("区指挥长")
    COMMAND_OFFICE = "command_office", _("指挥部办公室")
    DEPARTMENT = "department", _("区直部门")
    TOWNSHIP_STAFF = "township_staff", _("乡镇（街道）干部")
    COMMUNITY_STAFF = "community_staff", _("村（社区）干部")
    PROPERTY_MANAGER = "property_manager", _("物业 / 村民小组长")
    GRID_WORKER = "grid_worker", _("网格员")
    BUILDING_LEADER = "building_leader", _("楼长 / 片长")
    VILLAGER_REP = "villager_rep", _("村民代表")
    INSPECTOR = "inspector", _("督查组")
    VOLUNTEER = "volunteer", _("志愿者")


# Level-6 roles: the people a grid's households answer to. A grid without one is a blind spot.
RESPONSIBLE_ROLES = frozenset({Role.GRID_WORKER, Role.BUILDING_LEADER, Role.VILLAGER_REP})


class Perm(models.TextChoices):
    VIEW_REGISTER = "view_register"  # counts, units, households, residents (masked)
    REVEAL_PERSONAL = "reveal_personal"  # full ID number / phone on purpose, audited
    EDIT_REGISTER = "edit_register"  # change households and residents
    IMPORT_REGISTER = "import_register"  # load the Excel workbook
    EXPORT_REGISTER = "export_register"  # download the Excel workbook (personal data, audited)
    VIEW_AUDIT = "view_audit"
    ISSUE_DIRECTIVE = "issue_directive"  # issue, update, cancel and close directives (levels 1–5)
    SIGN_RECEIPT = "sign_receipt"  # sign for, relay and report on a directive for one's unit
    MARK_REACH = "mark_reach"  # mark households reached / unreachable
    IMPORT_PUSH = "import_push"  # upload pushed lists (大数据推送)
    VERIFY_PUSH = "verify_push"  # verify pushed people, transfer and return them
    DISPATCH_PUSH = "dispatch_push"  # the command office's manual-dispatch queue
    EDIT_POLICY = "edit_policy"  # risk-area lists and protocol versions
    MANAGE_CONTROL = "manage_control"  # open, extend, move up and release control cases
    CARE = "care"  # check-ins, tests, measures and service requests of cases one answers for
    REGISTER_CHECKPOINT = "register_checkpoint"  # register people and vehicles at a checkpoint (卡口登记)
    MANAGE_STAFF = "manage_staff"  # appoint, edit, move and deactivate the staff of one's subtree; 包保 leaders


_ALL = frozenset(Perm)
_FIELD = frozenset({Perm.VIEW_REGISTER, Perm.REVEAL_PERSONAL, Perm.EDIT_REGISTER, Perm.SIGN_RECEIPT,
                    Perm.MARK_REACH, Perm.VERIFY_PUSH, Perm.CARE, Perm.REGISTER_CHECKPOINT})
# Township and community staff do everything in their subtree but the district's own desk work;
# opening, moving up and releasing control cases (MANAGE_CONTROL) is theirs and above, not the grid's.
_LOCAL = _ALL - {Perm.DISPATCH_PUSH, Perm.EDIT_POLICY}

PERMISSIONS: dict[str, frozenset[str]] = {
    Role.DISTRICT_COMMANDER: _ALL,
    Role.COMMAND_OFFICE: _ALL,
    Role.DEPARTMENT: frozenset({Perm.VIEW_REGISTER, Perm.ISSUE_DIRECTIVE, Perm.SIGN_RECEIPT}),
    Role.TOWNSHIP_STAFF: _LOCAL,
    Role.COMMUNITY_STAFF: _LOCAL,
    # A compound's property manager (or a villager group's head) appoints the grid workers and building leaders
    # of its own compound: the unit's leader, one level above the grids.
    Role.PROPERTY_MANAGER: _FIELD | {Perm.EXPORT_REGISTER, Perm.ISSUE_DIRECTIVE, Perm.MANAGE_STAFF},
    Role.GRID_WORKER: _FIELD,
    Role.BUILDING_LEADER: _FIELD,
    Role.VILLAGER_REP: _FIELD,
    Role.INSPECTOR: frozenset({Perm.VIEW_REGISTER, Perm.VIEW_AUDIT}),
    Role.VOLUNTEER: frozenset({Perm.VIEW_REGISTER, Perm.MARK_REACH, Perm.CARE, Perm.REGISTER_CHECKPOINT}),
}


# The levels a role may hold a post at (the unit's level decides which roles are offered for it).
ROLE_LEVELS: dict[str, frozenset[int]] = {
    Role.DISTRICT_COMMANDER: frozenset({1}),
    Role.COMMAND_OFFICE: frozenset({1, 2}),
    Role.DEPARTMENT: frozenset({2}),
    Role.TOWNSHIP_STAFF: frozenset({3}),
    Role.COMMUNITY_STAFF: frozenset({4}),
    Role.PROPERTY_MANAGER: frozenset({5}),
    Role.GRID_WORKER: frozenset({6}),
    Role.BUILDING_LEADER: frozenset({6}),
    Role.VILLAGER_REP: frozenset({6}),
    Role.INSPECTOR: frozenset({1, 2}),
    Role.VOLUNTEER: frozenset({4, 5, 6}),
}


def roles_for_level(level: int) -> list[str]:
    """The roles a post at a unit of ``level`` may have, in the order of ``Role``."""
    return [role for role in Role.values if level in ROLE_LEVELS[role]]


def may_grant(granter_role: str, role: str) -> bool:
    """A role may be given only by one whose permissions include all of its own (never more power)."""
    return PERMISSIONS.get(role, frozenset()) <= PERMISSIONS.get(granter_role, frozenset())


def has_perm(role: str, perm: str) -> bool:
    return perm in PERMISSIONS.get(role, frozenset())
