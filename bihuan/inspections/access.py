"""Who sees what of inspections, in one place (on top of ``bihuan.register.access``).

- The district command (district commander, command office) sees and does everything: groups, plans, every
  visit including planned ones, findings, scores, bulletins.
- An inspector (a member of a group) sees their groups' visits — planned ones too, they make them — and,
  read-only, the findings and scores of their groups' territory.
- Everyone else sees visits and findings of their own subtree once a visit has started, never before:
  **no one in the target unit or above it, except the district command, can see a planned visit.** A planned
  visit outside a user's view is a 404 (its existence is not given away).
- Rectification is done by the responsible unit's subtree people with ``sign_receipt`` (they also sign for
  directives); closing or returning it is the inspectors' (the visit's group) or the command's.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from bihuan.core.roles import Perm, Role
from bihuan.register.access import Scope, scope_of
from bihuan.register.models import Unit, subtree_q

from .models import Finding, InspectionGroup, Visit, VisitState

COMMAND_ROLES = frozenset({Role.DISTRICT_COMMANDER, Role.COMMAND_OFFICE})


def is_command(user) -> bool:
    """The district command: the district commander and the command office (levels 1–2)."""
    scope = scope_of(user)
    return scope.role in COMMAND_ROLES and scope.unit.level <= 2


def group_ids(user) -> list[int]:
    cached = getattr(user, "_inspection_groups", None)
    if cached is None:
        cached = list(InspectionGroup.objects.filter(members=user).values_list("id", flat=True))
        user._inspection_groups = cached
    return cached


def is_inspector(user) -> bool:
    return bool(group_ids(user))


def territory_q(user, field: str = "path") -> Q:
    """The subtrees of the user's groups (nothing if they are in none)."""
    through = InspectionGroup.territory.through.objects.filter(inspectiongroup_id__in=group_ids(user))
    paths = Unit.objects.filter(pk__in=through.values("unit_id")).values_list("path", flat=True)
    q = Q(pk__in=[])
    for p in set(paths):
        q |= subtree_q(p, field)
    return q


def require_viewer(user) -> Scope:
    """Anyone bound to a unit with ``view_register`` may open the inspection pages (what they see is scoped)."""
    scope = scope_of(user)
    if not scope.can(Perm.VIEW_REGISTER):
        raise PermissionDenied("your role may not view inspections")
    return scope


def require_command(user) -> Scope:
    scope = require_viewer(user)
    if not is_command(user):
        raise PermissionDenied("only the district command manages inspection groups and plans")
    return scope


def visible_visits(user, queryset: QuerySet | None = None) -> QuerySet:
    """Visits the user may see (see the module docstring)."""
    scope = require_viewer(user)
    qs = Visit.objects.all() if queryset is None else queryset
    if is_command(user):
        return qs
    started = ~Q(state=VisitState.PLANNED)
    mine = Q(group_id__in=group_ids(user))
    if is_inspector(user):  # their territory, not their account's unit (an inspector's post is the district's)
        return qs.filter(mine | (started & territory_q(user)))
    return qs.filter(started & subtree_q(scope.root.path))


def visible_findings(user, queryset: QuerySet | None = None) -> QuerySet:
    scope = require_viewer(user)
    qs = Finding.objects.all() if queryset is None else queryset
    if is_command(user):
        return qs
    if is_inspector(user):
        return qs.filter(Q(visit__group_id__in=group_ids(user)) | territory_q(user))
    return qs.filter(subtree_q(scope.root.path))


def access_visit(user, visit_id: int, *, for_update: bool = False) -> Visit:
    qs = Visit.objects.select_related("group", "unit", "responsible_unit", "template", "inspector")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    visit = visible_visits(user, qs).filter(pk=visit_id).first()
    if visit is None:
        raise Http404("no such visit")
    return visit


def access_finding(user, finding_id: int) -> Finding:
    finding = visible_findings(user, Finding.objects.select_related("visit", "visit__group", "unit", "loop")) \
        .filter(pk=finding_id).first()
    if finding is None:
        raise Http404("no such finding")
    return finding


def may_inspect(user, visit: Visit) -> bool:
    """Carry out the visit: a member of its group (or the command)."""
    return visit.group_id in group_ids(user) or is_command(user)


def may_rectify(user, finding: Finding) -> bool:
    """Report the rectification: people of the responsible unit's subtree who sign for work, or its ancestors."""
    scope = scope_of(user)
    return scope.can(Perm.SIGN_RECEIPT) and finding.path.startswith(scope.root.path) and not is_inspector(user)


def may_judge(user, finding: Finding) -> bool:
    """Close (销号) or return (退回) a rectification: the visit's group or the command."""
    return finding.visit.group_id in group_ids(user) or is_command(user)


def score_root(user) -> Unit:
    """The top unit whose scores a user sees: the district for the command and inspectors, else their root."""
    scope = require_viewer(user)
    if is_command(user) or is_inspector(user):
        return Unit.objects.filter(level=1).order_by("path").first() or scope.root
    return scope.root
