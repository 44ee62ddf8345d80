"""Weekly plans of unannounced visits (四不两直): targets drawn at random from a group's territory, weighted by risk
and by lagging indicators, with the seed and every candidate's weight kept so the draw can be repeated for audit.

Candidates (in a fixed order, so the same data and seed give the same draw):
- homes under control (open cases at home): weight = the control type's rank (home isolation 2, monitoring 1)
  plus the lag of the home's community;
- communities and villages (level 4): weight 1 + lag;
- compounds (level 5): weight 0.5 + lag;
- posts of the duty roster (``bihuan.forces``: checkpoints and gates as checkpoints, sampling points): weight
  0.5 + the post's own roster gap + lag.

The lag of a community is read at the moment of drawing:
- ``overdue``: its subtree's overdue directive receipts and pushed-people verifications (``overdue_q``, the
  engine's one definition), one point per 5, at most 3;
- ``roster``: its posts that are short on the roster in the plan's week (fewer people rostered than required at
  some hour, ``forces.roster.week_by_post``), one point per post, at most 2.
A post's own gap adds 1 point plus one per 24 short hours, at most 3. Every candidate carries these parts
(``why``); the plan keeps them all (``Plan.weights``), so an auditor sees why each target weighed what it did and
can repeat the draw from the plan alone (``draw_recorded``).

The draw is weighted sampling without replacement (Efraimidis–Spirakis: each candidate's key is u^(1/w) with u
from ``random.Random(seed)``, the k largest keys win).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import Substr

from bihuan.loops.models import Loop, overdue_q
from bihuan.register.models import SEGMENT, Unit, UnitKind, subtree_q

from .models import InspectionGroup, TargetKind

LAG_KINDS = ("directive.receipt", "push.verification")
COMMUNITY_LEVEL = 4
OVERDUE_PER_POINT, OVERDUE_MAX = 5, 3.0
ROSTER_PER_POST, ROSTER_MAX = 1.0, 2.0
POST_GAP_BASE, POST_GAP_HOURS, POST_GAP_MAX = 1.0, 24, 3.0
POST_TARGETS = {"checkpoint": TargetKind.CHECKPOINT, "gate": TargetKind.CHECKPOINT,
                "sampling": TargetKind.SAMPLING_POINT}


@dataclass(frozen=True)
class Candidate:
    kind: str
    unit_id: int  # the place (a home's grid or case unit, a community, a compound, a post's unit)
    path: str
    responsible_path: str  # the unit that owns rectification
    case_id: int | None
    label: str
    weight: float
    post_id: int | None = None
    why: tuple[tuple[str, float], ...] = ()  # the parts of the weight: (("base", 1.0), ("overdue", 0.4), …)

    @property
    def target_id(self) -> int:
        return self.case_id or self.post_id or self.unit_id

    def record(self) -> list:
        """What the plan keeps of it: [kind, target id, weight, {part: points}]."""
        return [self.kind, self.target_id, self.weight, dict(self.why)]


def territory_filter(group: InspectionGroup, field: str = "path") -> Q:
    q = Q(pk__in=[])
    for path in group.territory.values_list("path", flat=True):
        q |= subtree_q(path, field)
    return q


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def overdue_by_community(q: Q, at: dt.datetime) -> dict[str, int]:
    """Community path → overdue directive receipts and verifications in its subtree at ``at``."""
    rows = (Loop.objects.filter(q, overdue_q(at), kind__in=LAG_KINDS, level__gte=COMMUNITY_LEVEL)
            .annotate(c=Substr("path", 1, SEGMENT * COMMUNITY_LEVEL)).values("c").annotate(n=Count("id"))
            .values_list("c", "n"))
    return dict(rows)


def posts_with_gaps(group: InspectionGroup, week_start: dt.date) -> tuple[list[tuple], dict[int, float]]:
    """The active posts of the group's territory that are inspected (checkpoints, gates, sampling points), in a
    fixed order, as (id, unit id, path, name, kind); and post id → short hours on the roster of the week (posts
    without a gap are absent). Read through the forces app's public roster functions."""
    from bihuan.forces import roster
    from bihuan.forces.models import Post

    q = territory_filter(group)
    posts = list(Post.objects.filter(q, active=True, kind__in=list(POST_TARGETS)).order_by("path", "id")
                 .values_list("id", "unit_id", "path", "name", "kind"))
    gaps: dict[int, float] = {}
    if posts:
        for path in sorted(set(group.territory.values_list("path", flat=True))):
            for post_id, week in roster.week_by_post(week_start, path).items():
                if week.gap_seconds:
                    gaps[post_id] = round(week.gap_seconds / 3600, 2)
    return posts, gaps


def candidates(group: InspectionGroup, at: dt.datetime, week_start: dt.date | None = None) -> list[Candidate]:
    from bihuan.control.models import OPEN_CASE_STATES, ControlCase

    week_start = monday(week_start or at.date())
    q = territory_filter(group)
    overdue = overdue_by_community(q, at)
    posts, gaps = posts_with_gaps(group, week_start)
    gap_posts = Counter(path[: SEGMENT * COMMUNITY_LEVEL] for pk, _u, path, _n, _k in posts if pk in gaps)

    def lag(community: str) -> tuple[tuple[str, float], ...]:
        parts = []
        if overdue.get(community):
            parts.append(("overdue", round(min(OVERDUE_MAX, overdue[community] / OVERDUE_PER_POINT), 3)))
        if gap_posts.get(community):
            parts.append(("roster", min(ROSTER_MAX, ROSTER_PER_POST * gap_posts[community])))
        return tuple(parts)

    def make(kind, unit_id, path, responsible, case_id, label, base, post_id=None, extra=()):
        why = (("base", float(base)), *extra, *lag(path[: SEGMENT * COMMUNITY_LEVEL]))
        return Candidate(kind, unit_id, path, responsible, case_id, label, round(sum(v for _k, v in why), 3),
                         post_id, why)

    out: list[Candidate] = []
    cases = (ControlCase.objects.filter(q, state__in=OPEN_CASE_STATES, site_kind="home", start_date__lte=at.date())
             .order_by("id").values_list("id", "unit_id", "path", "site_address", "type__rank"))
    for case_id, unit_id, path, address, rank in cases:
        out.append(make(TargetKind.HOME, unit_id, path, path[: SEGMENT * COMMUNITY_LEVEL], case_id, address, rank))
    units = (Unit.objects.filter(q, Q(level=COMMUNITY_LEVEL) | Q(level=5, kind=UnitKind.COMPOUND))
             .order_by("path").values_list("id", "path", "level", "name"))
    for unit_id, path, level, name in units:
        if level == COMMUNITY_LEVEL:
            out.append(make(TargetKind.COMMUNITY, unit_id, path, path, None, name, 1.0))
        else:
            out.append(make(TargetKind.COMPOUND, unit_id, path, path, None, name, 0.5))
    for post_id, unit_id, path, name, kind in posts:
        own = ()
        if post_id in gaps:
            own = (("post_gap", round(min(POST_GAP_MAX, POST_GAP_BASE + gaps[post_id] / POST_GAP_HOURS), 3)),)
        out.append(make(POST_TARGETS[kind], unit_id, path, path[: SEGMENT * COMMUNITY_LEVEL], None, name, 0.5,
                        post_id, own))
    return out


def digest(cands: list[Candidate] | list[list]) -> str:
    """sha256 of the (kind, target, weight) list: equal digests, equal draws for a seed."""
    rows = [(c.kind, c.target_id, c.weight) if isinstance(c, Candidate) else (c[0], c[1], c[2]) for c in cands]
    data = json.dumps(rows, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def _keys(weights: list[float], k: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    keyed = [(rng.random() ** (1.0 / w), i) for i, w in enumerate(weights) if w > 0]
    keyed.sort(reverse=True)
    return [i for _key, i in keyed[:k]]


def draw(cands: list[Candidate], k: int, seed: int) -> list[Candidate]:
    """k candidates, weighted, without replacement; the same list and seed give the same draw."""
    return [cands[i] for i in _keys([c.weight for c in cands], k, seed)]


def draw_recorded(records: list[list], k: int, seed: int) -> list[tuple[str, int]]:
    """The draw repeated from a plan's kept weights alone: (kind, target id) per visit, in draw order."""
    return [(records[i][0], records[i][1]) for i in _keys([float(r[2]) for r in records], k, seed)]
