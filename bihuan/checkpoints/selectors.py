"""The reads pages and the API share: a checkpoint's registrations, the day's figures per checkpoint, the
self-reports' states, campaigns a user sees and their live rollup per unit. Access is decided before these are
called (``register.access``, ``actions.access_checkpoint``); nothing here writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q
from django.http import Http404

from bihuan.directives.models import Reach
from bihuan.directives.selectors import visible_directives
from bihuan.pushes import report as push_report
from bihuan.register.access import scope_of
from bihuan.register.coverage import fold_up, load_units
from bihuan.register.models import MAX_LEVEL, Unit, subtree_q

from .models import Campaign, Checkpoint, Registration, ScreeningAnswer, SelfReport
from .report import checkpoint_days


def day_figures(root_path: str, day: dt.date) -> list[dict]:
    return checkpoint_days(root_path, day)


def registrations_of(checkpoint: Checkpoint, day: dt.date, *, limit: int = 200) -> list[Registration]:
    """The day's registrations of a checkpoint with their people (two queries)."""
    low, high = push_report.day_bounds(day)
    return list(Registration.objects.filter(checkpoint=checkpoint, registered_at__gte=low, registered_at__lt=high)
                .prefetch_related("travellers").order_by("-registered_at")[:limit])


def self_report_states(scope, day: dt.date) -> dict:
    """The day's self-reports by state, at the units of the user's part (where their person is verified)."""
    low, high = push_report.day_bounds(day)
    qs = SelfReport.objects.filter(created_at__gte=low, created_at__lt=high)
    qs = qs.filter(subtree_q(scope.root.path, "pushed_person__path"))
    return dict(qs.values_list("status").annotate(n=Count("id")).order_by())


def visible_campaigns(user):
    return (Campaign.objects.filter(directive__in=visible_directives(user)).select_related("directive")
            .order_by("-created_at"))


def campaign_for(user, campaign_id: int) -> Campaign:
    c = visible_campaigns(user).select_related("directive__scope_unit").filter(pk=campaign_id).first()
    if c is None:
        raise Http404("no such campaign in your part of the district")
    return c


@dataclass
class ScreenCounts:
    households: int = 0
    answered: int = 0
    arrived: int = 0
    fever: int = 0
    elderly_alone: int = 0
    needs: int = 0

    def add(self, other: ScreenCounts) -> None:
        for k in ("households", "answered", "arrived", "fever", "elderly_alone", "needs"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    @property
    def percent(self) -> float:
        return round(100 * self.answered / self.households, 1) if self.households else 0.0


def campaign_rollup(c: Campaign, root: Unit) -> tuple[list[tuple], ScreenCounts]:
    """Live per unit, like directive coverage: households in scope (the reach rows), answered, arrivals found,
    fever, elderly living alone, needs. Two GROUP BYs at the grid level and one walk up the tree. Rows: the
    units one level below ``root`` (grids below a community)."""
    base = c.directive.scope_unit if c.directive.scope_unit.path.startswith(root.path) else root
    units = load_units(base.path)
    own = {u.id: ScreenCounts() for u in units}
    for unit_id, n in (Reach.objects.filter(subtree_q(base.path), directive=c.directive).values_list("unit_id")
                       .annotate(n=Count("id")).order_by()):
        if unit_id in own:
            own[unit_id].households += n
    answers = (ScreeningAnswer.objects.filter(subtree_q(base.path), campaign=c).values_list("unit_id")
               .annotate(n=Count("id"), arrived=Count("id", filter=~Q(arrived=[])),
                         fever=Count("id", filter=Q(fever=True)), alone=Count("id", filter=Q(elderly_alone=True)),
                         needs=Count("id", filter=~Q(needs=""))).order_by())
    for unit_id, n, arrived, fever, alone, needs in answers:
        if unit_id in own:
            o = own[unit_id]
            o.answered, o.arrived, o.fever, o.elderly_alone, o.needs = n, arrived, fever, alone, needs
    fold_up(units, own, ScreenCounts.add)
    top = next(u for u in units if u.id == base.id)
    depth = min(MAX_LEVEL, top.level + 1)
    rows = [(u, own[u.id]) for u in units if u.level == depth]
    return rows, own[top.id]


def campaign_households(c: Campaign, user, *, limit: int = 300) -> list[dict]:
    """The user's households in the campaign (a grid worker's list), with their answer if any. Two queries."""
    root = scope_of(user).root
    reaches = list(Reach.objects.filter(subtree_q(root.path), directive=c.directive)
                   .select_related("household").order_by("path", "household_id")[:limit])
    answers = {a.household_id: a for a in ScreeningAnswer.objects.filter(
        campaign=c, household_id__in=[r.household_id for r in reaches])}
    return [{"reach": r, "household": r.household, "answer": answers.get(r.household_id)} for r in reaches]
