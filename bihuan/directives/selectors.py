"""The lookups that pages, the API and the actions share: which directives a user sees, one directive or
receipt the user may see (else 404: an outsider learns nothing), and the unit whose part of a directive a
page or a response shows. Access itself is decided by ``bihuan.register.access``; these only apply it."""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404

from bihuan.loops.models import Loop
from bihuan.register.access import access_unit, scope_of, scoped
from bihuan.register.models import Unit, subtree_q

from .models import RECEIPT, Directive


def visible_directives(user):
    """Directives the user issued or that reach into the user's part of the district."""
    scope = scope_of(user)
    unit_ids = Loop.objects.filter(kind=RECEIPT, owner_unit=scope.unit).values("subject_id")
    return Directive.objects.filter(subtree_q(scope.root.path, "issuer_unit__path") |
                                    subtree_q(scope.root.path, "scope_unit__path") | Q(pk__in=unit_ids))


def directive_for(user, directive_id: int) -> Directive:
    """A directive the user may see (with its issuer and scope units), else 404."""
    directive = (visible_directives(user).select_related("issuer_unit", "scope_unit")
                 .filter(pk=directive_id).first())
    if directive is None:
        raise Http404("no such directive in your part of the district")
    return directive


def receipt_for(user, loop_id: int) -> Loop:
    """A receipt (a ``directive.receipt`` loop) of a unit in the user's part of the district, else 404."""
    qs = scoped(user, Loop.objects.filter(kind=RECEIPT)).select_related("owner_unit")
    loop = qs.filter(pk=loop_id).first()
    if loop is None:
        raise Http404("no such receipt in your part of the district")
    return loop


def focus_unit(user, directive: Directive, unit_id: int | None) -> Unit:
    """The unit whose part of the directive is shown: ``unit_id`` (if the user may see it; a unit above the
    directive's scope shows the whole directive) or, by default, the deeper of the user's root and the
    directive's scope. 404 for a unit beside the scope."""
    scope = scope_of(user)
    unit = access_unit(user, unit_id) if unit_id is not None else scope.root
    dscope = directive.scope_unit
    if unit.path.startswith(dscope.path):
        return unit
    if dscope.path.startswith(unit.path) and scope.contains(dscope.path):
        return dscope
    raise Http404("that unit is not in this directive's scope")


def own_receipts(user, directive_ids: list[int]) -> tuple[dict[int, Loop], Unit]:
    """The user's own unit's receipt of each directive (by directive id), and that unit."""
    unit = scope_of(user).unit
    loops = Loop.objects.filter(kind=RECEIPT, owner_unit=unit, subject_id__in=directive_ids)
    return {lp.subject_id: lp for lp in loops}, unit


def receipts_of(directive: Directive, unit_ids) -> dict[int, Loop]:
    """The receipts of the directive held by the given units, by unit id."""
    return {lp.owner_unit_id: lp for lp in
            Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk, owner_unit_id__in=list(unit_ids))}
