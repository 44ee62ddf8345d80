"""Who may configure which group robots: the unit admins (``Perm.MANAGE_STAFF``: whoever appoints a unit's staff
also wires its group robots), for their own unit and the units below it — their own unit's subtree, never a
sibling's. Outside it, a robot or unit is "not found" (404), as everywhere in Bihuan."""

from __future__ import annotations

from django.http import Http404

from bihuan.core.roles import Perm
from bihuan.register.access import Scope, require
from bihuan.register.models import Unit, subtree_q

from .models import Robot

MANAGE_ROBOTS = Perm.MANAGE_STAFF


def require_robot_admin(user) -> Scope:
    return require(user, MANAGE_ROBOTS)


def robot_units(scope: Scope):
    """The units whose robots ``scope`` manages: its own unit's subtree."""
    return Unit.objects.filter(subtree_q(scope.unit.path))


def access_robot_unit(user, unit_id: int) -> Unit:
    unit = robot_units(require_robot_admin(user)).filter(pk=unit_id).first()
    if unit is None:
        raise Http404("no such unit in your part of the district")
    return unit


def access_robot(user, robot_id: int) -> Robot:
    scope = require_robot_admin(user)
    robot = (Robot.objects.select_related("unit").filter(subtree_q(scope.unit.path, field="unit__path"))
             .filter(pk=robot_id).first())
    if robot is None:
        raise Http404("no such robot in your part of the district")
    return robot
