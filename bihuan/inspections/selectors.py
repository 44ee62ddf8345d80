"""Lookups the pages and the API share: the dashboard figures, a person's visits, finding rows with their loop's
state, the ranking with its trend, and the records behind a lost point (drill-down)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.db.models import Count, Q
from django.utils import timezone

from bihuan.loops.models import OPEN_STATES, Loop, LoopState, overdue_q
from bihuan.register.models import Unit, subtree_q

from . import access, scoring
from .models import RECTIFY_KIND_LIST, Answer, Finding, Severity, Visit, VisitState

LIST_LIMIT = 300


def my_visits(user) -> list[Visit]:
    """The visits of the user's groups not yet done (planned ones included: they make them)."""
    return list(Visit.objects.filter(group_id__in=access.group_ids(user)).exclude(state=VisitState.DONE)
                .select_related("group").order_by("planned_for", "id")[:50])


def finding_state(loop: Loop | None, now) -> str:
    if loop is None:
        return "open"
    if loop.state == LoopState.CLOSED:
        return "closed"
    if loop.state == LoopState.REPORTED:
        return "reported"
    return "overdue" if loop.is_overdue(now) else "open"


FINDING_STATES = ("open", "overdue", "reported", "closed", "all")


def filter_findings(qs, state: str = "open", severity: str = "", unit: Unit | None = None, now=None):
    """Findings in a state (``open``: waiting for rectification; ``overdue``: its loop past the deadline, the
    engine's one definition; ``reported``: waiting for the re-check; ``closed``; ``all``), of a severity, in a
    unit's subtree. The board's figures link here with the same filters."""
    now = now or timezone.now()
    if state == "overdue":
        qs = qs.filter(loop__in=Loop.objects.filter(overdue_q(now), kind__in=RECTIFY_KIND_LIST))
    else:
        qs = qs.filter({"open": Q(loop__state__in=OPEN_STATES), "reported": Q(loop__state=LoopState.REPORTED),
                        "closed": Q(loop__state=LoopState.CLOSED)}.get(state, Q()))
    if severity in Severity.values:
        qs = qs.filter(severity=severity)
    if unit is not None:
        qs = qs.filter(subtree_q(unit.path))
    return qs


def finding_rows(qs, state: str = "open", severity: str = "", unit: Unit | None = None) -> list[tuple[Finding, str]]:
    now = timezone.now()
    qs = filter_findings(qs, state, severity, unit, now)
    return [(f, finding_state(f.loop, now)) for f in qs.order_by("-created_at", "-id")[:LIST_LIMIT]]


def dashboard(user) -> dict:
    """Open findings by severity and unit, rectification overdue, inspection coverage of the territory."""
    findings = access.visible_findings(user)
    loops = Loop.objects.filter(kind__in=RECTIFY_KIND_LIST, pk__in=findings.values("loop_id"))
    now = timezone.now()
    by_severity = dict(findings.filter(loop__state__in=OPEN_STATES).values_list("severity").annotate(n=Count("id"))
                       .values_list("severity", "n"))
    by_unit = list(findings.filter(loop__state__in=OPEN_STATES).values("unit__name", "unit_id")
                   .annotate(n=Count("id")).order_by("-n", "unit__name")[:15])
    overdue = loops.filter(overdue_q(now)).count()
    visits = access.visible_visits(user).filter(state=VisitState.DONE)
    if access.is_command(user) or access.is_inspector(user):
        root = access.score_root(user)
    else:
        root = access.scope_of(user).root
    communities = Unit.objects.filter(subtree_q(root.path), level=4)
    since = now - dt.timedelta(days=28)
    visited = visits.filter(finished_at__gte=since).values("responsible_unit__path")
    covered = sum(1 for p in communities.values_list("path", flat=True)
                  if any(v.startswith(p) for v in {r["responsible_unit__path"] for r in visited}))
    total = communities.count()
    return {
        "severity": [(label, by_severity.get(value, 0), value) for value, label in Severity.choices],
        "by_unit": by_unit, "overdue": overdue, "open": sum(by_severity.values()),
        "reported": loops.filter(state=LoopState.REPORTED).count(),
        "coverage": {"visited": covered, "total": total, "percent": round(100 * covered / total) if total else 0},
        "chart": {"labels": [str(label) for _v, label in Severity.choices],
                  "values": [by_severity.get(v, 0) for v, _l in Severity.choices],
                  "units": [r["unit__name"] for r in by_unit], "unit_values": [r["n"] for r in by_unit]},
    }


def ranking(root: Unit, week: dt.date, level: int, weeks_back: int = 4) -> dict:
    units, rules = scoring.score_week(week, root=root if root.level > 1 else None)
    at_level = sorted([u for u in units if u.level == level and u.score is not None and u.path.startswith(root.path)],
                      key=lambda u: u.rank)
    past = [week - dt.timedelta(days=7 * i) for i in range(weeks_back, 0, -1)]
    trend = scoring.trend([u.unit_id for u in at_level], past) if at_level else {}
    weights = {k: float(w) for k, w in rules.weights.items() if k in scoring.INDICATORS}
    rows = []
    for u in at_level:
        history = trend.get(u.unit_id, [])
        last = next((s for s in reversed(history) if s is not None), None)
        rows.append({"u": u, "trend": history, "delta": None if last is None else round(u.score - last, 2),
                     "lost": [(k, scoring.INDICATORS[k][0], pts) for k, pts in u.lost(weights).items() if pts]})
    red, black = rows[:5], list(reversed(rows[-5:])) if len(rows) > 5 else []
    formula = [(k, scoring.INDICATORS[k][0], scoring.INDICATORS[k][1], w) for k, w in weights.items()]
    return {"rows": rows, "red": red, "black": black, "rules": rules, "formula": formula, "past": past,
            "chart": {"names": [r["u"].name for r in rows[:15]], "scores": [r["u"].score for r in rows[:15]]}}


def drill(unit: Unit, key: str, week: dt.date, limit: int = 200) -> list[dict]:
    """The records behind the points ``unit`` lost on ``key`` in ``week``: those not done in time."""
    start, end = scoring.week_bounds(week)
    at = min(timezone.now(), end)
    sub = subtree_q(unit.path)
    rows: list[dict] = []
    loop_kinds = {"directive_signed": ["directive.receipt"], "directive_relayed": ["directive.receipt"],
                  "directive_reported": ["directive.receipt"], "pushes_verified": ["push.verification"],
                  "rectified_on_time": list(RECTIFY_KIND_LIST), "services_closed": ["control.service"]}
    if key in loop_kinds:
        deadline = "ack_due_at" if key == "directive_signed" else "due_at"
        done = {"directive_signed": "acknowledged_at", "directive_relayed": "started_at"}.get(key, "reported_at")
        qs = Loop.objects.filter(sub, kind__in=loop_kinds[key], **{f"{deadline}__gte": start, f"{deadline}__lt": at})
        if key == "directive_relayed":
            qs = qs.filter(level__lt=6)
        if key == "services_closed":
            qs = Loop.objects.filter(sub, kind="control.service", created_at__gte=start - dt.timedelta(hours=24),
                                     created_at__lt=at - dt.timedelta(hours=24))
        for lp in qs.select_related("owner_unit").order_by(deadline, "id")[:limit * 5]:
            due = lp.created_at + dt.timedelta(hours=24) if key == "services_closed" else getattr(lp, deadline)
            finished = getattr(lp, done) or (lp.closed_at if key == "services_closed" else None)
            if key == "rectified_on_time" and (lp.closed_at is None or lp.closed_at > at):
                finished = None
            if finished is None or finished > due:
                rows.append({"what": lp.title, "unit": lp.owner_unit.name, "due": due, "done": finished})
            if len(rows) >= limit:
                break
    elif key == "households_reached":
        # Level 7: the households of the unit's subtree whose reach of a directive was due in the week and not
        # marked (reached or unreachable) by its deadline — the records behind the grid's (and above) points.
        from django.db.models import Q as Q_

        from bihuan.directives.models import Directive, Reach

        due = {pk: issued + dt.timedelta(hours=hours) for pk, issued, hours in Directive.objects.filter(
            issued_at__gte=start - dt.timedelta(hours=scoring.MAX_REACH_HOURS), issued_at__lt=end)
            .values_list("id", "issued_at", "reach_hours")}
        due = {pk: deadline for pk, deadline in due.items() if start <= deadline < end and deadline < at}
        late = Q_(pk__in=[])
        for pk, deadline in due.items():
            late |= Q_(directive_id=pk) & (Q_(status="pending") | Q_(marked_at__gt=deadline) | Q_(marked_at__gt=at))
        for r in (Reach.objects.filter(sub).filter(late).select_related("directive", "household")
                  .order_by("path", "household_id", "directive_id")[:limit]):
            done = r.marked_at if r.status != "pending" and r.marked_at and r.marked_at <= at else None
            rows.append({"what": r.directive.title, "unit": r.household.address, "due": due[r.directive_id],
                         "done": done})
    elif key == "checkins_done":
        from bihuan.control.models import MissedCheckIn

        for m in MissedCheckIn.objects.filter(sub, date__gte=week, date__lt=week + dt.timedelta(days=7),
                                              due_at__lte=at).with_resolved_at().select_related("case")[:limit]:
            rows.append({"what": f"{m.case.name} {m.date} {m.slot}", "unit": "", "due": m.due_at, "done": m.resolved_at})
    elif key == "tests_done":
        from bihuan.control.models import TestSample

        for t in TestSample.objects.filter(subtree_q(unit.path, "case__path"), date__gte=week,
                                           date__lt=min(week + dt.timedelta(days=7), timezone.localdate()),
                                           ).exclude(result__in=["negative", "positive", "pending"]) \
                .select_related("case")[:limit]:
            rows.append({"what": f"{t.case.name} 第{t.day}天", "unit": "", "due": t.date, "done": None})
    elif key == "inspection_passed":
        for a in Answer.objects.filter(sub, result="fail", answered_at__gte=start, answered_at__lt=at) \
                .select_related("item", "visit")[:limit]:
            rows.append({"what": a.item.text, "unit": a.visit.label, "due": a.answered_at, "done": None})
    return rows


def severity_counts(findings) -> Counter:
    return Counter(f.severity for f in findings)
