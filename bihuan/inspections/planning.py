"""Weekly plans of unannounced visits (四不两直): targets drawn at random from a group's territory, weighted by risk
and by lagging indicators, with the seed kept so the draw can be repeated for audit.

Candidates (in a fixed order, so the same data and seed give the same draw):
- homes under control (open cases at home): weight = the control type's rank (home isolation 2, monitoring 1)
  plus the lag of the home's community;
- communities and villages (level 4): weight 1 + lag;
- compounds (level 5): weight 0.5 + lag.
The lag of a community is its overdue directive receipts and pushed-people verifications at the moment of
drawing (``overdue_q``, the engine's one definition), one point per 5, at most 3.

The draw is weighted sampling without replacement (Efraimidis–Spirakis: each candidate's key is u^(1/w) with u
from ``random.Random(seed)``, the k largest keys win).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import Substr

from bihuan.loops.models import Loop, overdue_q
from bihuan.register.models import SEGMENT, Unit, UnitKind, subtree_q

from .models import InspectionGroup, TargetKind

LAG_KINDS = ("directive.receipt", "push.verification")
COMMUNITY_LEVEL = 4


@dataclass(frozen=True)
class Candidate:
    kind: str
    unit_id: int  # the place (a home's grid or case unit, a community, a compound)
    path: str
    responsible_path: str  # the unit that owns rectification
    case_id: int | None
    label: str
    weight: float


def territory_filter(group: InspectionGroup, field: str = "path") -> Q:
    q = Q(pk__in=[])
    for path in group.territory.values_list("path", flat=True):
        q |= subtree_q(path, field)
    return q


def lag_by_community(q: Q, at: dt.datetime) -> dict[str, float]:
    """Community path → lag points (overdue receipts and verifications in its subtree at ``at``)."""
    rows = (Loop.objects.filter(q, overdue_q(at), kind__in=LAG_KINDS, level__gte=COMMUNITY_LEVEL)
            .annotate(c=Substr("path", 1, SEGMENT * COMMUNITY_LEVEL)).values("c").annotate(n=Count("id"))
            .values_list("c", "n"))
    return {c: min(3.0, n / 5) for c, n in rows}


def candidates(group: InspectionGroup, at: dt.datetime) -> list[Candidate]:
    from bihuan.control.models import OPEN_CASE_STATES, ControlCase

    q = territory_filter(group)
    lag = lag_by_community(q, at)
    out: list[Candidate] = []
    cases = (ControlCase.objects.filter(q, state__in=OPEN_CASE_STATES, site_kind="home", start_date__lte=at.date())
             .order_by("id").values_list("id", "unit_id", "path", "site_address", "type__rank"))
    for case_id, unit_id, path, address, rank in cases:
        community = path[: SEGMENT * COMMUNITY_LEVEL]
        out.append(Candidate(TargetKind.HOME, unit_id, path, community, case_id, address,
                             round(float(rank) + lag.get(community, 0.0), 3)))
    units = (Unit.objects.filter(q, Q(level=COMMUNITY_LEVEL) | Q(level=5, kind=UnitKind.COMPOUND))
             .order_by("path").values_list("id", "path", "level", "name"))
    for unit_id, path, level, name in units:
        community = path[: SEGMENT * COMMUNITY_LEVEL]
        if level == COMMUNITY_LEVEL:
            out.append(Candidate(TargetKind.COMMUNITY, unit_id, path, path, None, name, 1.0 + lag.get(community, 0.0)))
        else:
            out.append(Candidate(TargetKind.COMPOUND, unit_id, path, path, None, name, 0.5 + lag.get(community, 0.0)))
    return out


def digest(cands: list[Candidate]) -> str:
    data = json.dumps([(c.kind, c.case_id or c.unit_id, c.weight) for c in cands], separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def draw(cands: list[Candidate], k: int, seed: int) -> list[Candidate]:
    """k candidates, weighted, without replacement; the same list and seed give the same draw."""
    rng = random.Random(seed)
    keyed = [(rng.random() ** (1.0 / c.weight), i) for i, c in enumerate(cands) if c.weight > 0]
    keyed.sort(reverse=True)
    return [cands[i] for _key, i in keyed[:k]]


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())
