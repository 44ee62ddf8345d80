"""The lookups of control and care that more than one page (and any API) uses: a case's status of the day, the
lists of the today page, the people a slot or a request can go to, the control types on offer. Reads only;
access is decided before (``register.access`` / ``checkins.care_access``), and the querysets given here are
already scoped where a list could reach beyond the user's subtree.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, OuterRef, Prefetch, Q
from django.utils import timezone

from bihuan.core.roles import RESPONSIBLE_ROLES, Role
from bihuan.loops.models import OPEN_STATES, Loop
from bihuan.register.access import scoped
from bihuan.register.models import MAX_LEVEL, SEGMENT, Staff, Unit, subtree_q

from . import actions, care, checkins
from .models import (
    ALERT_KINDS,
    OPEN_CASE_STATES,
    CaseState,
    CheckIn,
    CheckInSlot,
    ControlCase,
    ControlType,
    ServiceRequest,
    TeamSlot,
    TestResult,
    TestSample,
)

LIST_LIMIT = 300  # rows of one list on the today page (a community holds tens of cases)
CANDIDATE_LIMIT = 200  # staff offered for a five-for-one slot


def slot_labels() -> dict[str, str]:
    return {value: str(label) for value, label in CheckInSlot.choices}


def today_slots(case: ControlCase, today_checkins: list[CheckIn], now: dt.datetime | None = None) -> list[dict]:
    """Today's slots of a case: done (with the check-in), missing (deadline passed) or open."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    by_slot = {c.slot: c for c in today_checkins if c.date == today}
    out = []
    in_period = case.start_date <= today <= case.end_date and case.state in OPEN_CASE_STATES
    labels = slot_labels()
    for slot in checkins.slots_for(case.type) if in_period else ():
        c = by_slot.get(slot)
        status = ("abnormal" if c.abnormal else "done") if c else (
            "missing" if now >= checkins.slot_deadline(today, slot) else "open")
        out.append({"slot": slot, "label": labels[slot], "checkin": c, "status": status})
    return out


def next_slot(slots: list[dict]) -> str:
    """The slot a new check-in most likely is for: the first not recorded (missing before open)."""
    for s in slots:
        if s["checkin"] is None:
            return s["slot"]
    return slots[0]["slot"] if slots else CheckInSlot.MORNING


def case_rows(cases: list[ControlCase], today: dt.date) -> list[dict]:
    """Today's status of each case: check-ins, the day's test, requests not done (three queries)."""
    ids = [c.pk for c in cases]
    by_case: dict[int, list] = {pk: [] for pk in ids}
    for c in CheckIn.objects.filter(case_id__in=ids, date=today):
        by_case[c.case_id].append(c)
    tests = {t.case_id: t for t in TestSample.objects.filter(case_id__in=ids, date=today)}
    open_services = dict(ServiceRequest.objects.filter(case_id__in=ids).pending()
                         .values_list("case_id").annotate(n=Count("id")).order_by())
    now = timezone.now()
    return [{"case": c, "slots": today_slots(c, by_case[c.pk], now), "test": tests.get(c.pk),
             "services": open_services.get(c.pk, 0), "day": c.day_number(today),
             "days": (c.end_date - c.start_date).days + 1} for c in cases]


def current_types() -> list[ControlType]:
    """The control types on offer for new cases, mildest first."""
    return list(ControlType.objects.current().order_by("rank", "id"))


def stricter_types(case: ControlCase) -> list[ControlType]:
    """Where a case can move up to: current types ranked above its own."""
    return list(ControlType.objects.current().filter(rank__gt=case.type.rank).order_by("rank"))


def candidates(case: ControlCase) -> list[Staff]:
    """Staff of the case's community (or the case's own unit, if it sits higher) for a five-for-one slot."""
    community_path = case.path[: SEGMENT * min(len(case.path) // SEGMENT, checkins.COMMUNITY_LEVEL)]
    return list(Staff.objects.filter(subtree_q(community_path, "unit__path")).select_related("unit")
                .order_by("unit__path", "name")[:CANDIDATE_LIMIT])


# Which staff fit which five-for-one slot (by role); a slot missing here (doctor, police: no such role in the
# register) offers every candidate.
SLOT_ROLES = {
    TeamSlot.CADRE: frozenset({Role.COMMUNITY_STAFF, Role.TOWNSHIP_STAFF, Role.PROPERTY_MANAGER}),
    TeamSlot.GRID_WORKER: RESPONSIBLE_ROLES,
    TeamSlot.VOLUNTEER: frozenset({Role.VOLUNTEER, Role.BUILDING_LEADER, Role.VILLAGER_REP}),
}


def own_grid_workers(case: ControlCase) -> list[Staff]:
    """The grid worker(s) answering for the case's household (its grid's responsible people, those who answer for
    named households only if the household is one of them)."""
    household_id = grid_id = None
    if case.resident_id:
        household_id, grid_id = (case.resident.household_id, case.resident.household.unit_id)
    elif case.unit.level == MAX_LEVEL:
        grid_id = case.unit_id
    if grid_id is None:
        return []
    qs = Staff.objects.filter(unit_id=grid_id, role__in=list(RESPONSIBLE_ROLES), deactivated_at__isnull=True)
    mine = Q(households=None) | Q(households=household_id) if household_id else Q(households=None)
    return list(qs.filter(mine).select_related("unit").distinct().order_by("role", "name"))


def slot_candidates(case: ControlCase) -> dict[str, list[dict]]:
    """Each slot's offer: the candidates whose role fits it; the grid-worker slot starts with the household's own
    grid worker(s), marked ``own`` (suggested when the slot is empty)."""
    own = own_grid_workers(case)
    own_ids = {s.pk for s in own}
    staff = own + [s for s in candidates(case) if s.pk not in own_ids]
    out: dict[str, list[dict]] = {}
    for slot in TeamSlot:
        roles = SLOT_ROLES.get(slot)
        fitting = [s for s in staff if roles is None or s.role in roles]
        if slot != TeamSlot.GRID_WORKER:
            fitting.sort(key=lambda s: (s.unit.path, s.name))
        out[slot.value] = [{"staff": s, "own": slot == TeamSlot.GRID_WORKER and s.pk in own_ids} for s in fitting]
    return out


def services_of(case: ControlCase) -> list[ServiceRequest]:
    """A case's requests, newest first, with their loops (where each stands) and assignees."""
    return list(case.service_requests.select_related("loop__owner_user__staff"))


def assignees(team: list) -> list[tuple[int, str]]:
    """The team's accounts a request can be handed to, from ``actions.team_of``."""
    return [(m.user_id, f"{m.name}（{m.get_slot_display()}）") for _s, _l, m in team if m is not None and m.user_id]


def due_checkin_rows(unit: Unit, user, today: dt.date) -> tuple[list[dict], bool]:
    """Open cases whose period covers today with today's check-ins: abnormal first, then missing, then done.
    Two queries (the cases, their check-ins of today); the second value says whether the list was cut."""
    base = (scoped(user, ControlCase.objects).filter(subtree_q(unit.path), state__in=OPEN_CASE_STATES,
                                                      start_date__lte=today, end_date__gte=today))
    qs = (base.select_related("type", "unit")
          .annotate(any_abnormal=Exists(CheckIn.objects.filter(case=OuterRef("pk"), date=today, abnormal=True)),
                    any_done=Exists(CheckIn.objects.filter(case=OuterRef("pk"), date=today)))
          .order_by("-any_abnormal", "any_done", "path", "id")
          .prefetch_related(Prefetch("checkins", queryset=CheckIn.objects.filter(date=today), to_attr="today_checkins")))
    cases = list(qs[:LIST_LIMIT + 1])
    now = timezone.now()
    rows = [{"case": c, "slots": today_slots(c, c.today_checkins, now)} for c in cases[:LIST_LIMIT]]
    for r in rows:
        statuses = {s["status"] for s in r["slots"]}
        r["status"] = ("abnormal" if "abnormal" in statuses else "missing" if "missing" in statuses
                       else "open" if "open" in statuses else "done")
    order = {"abnormal": 0, "missing": 1, "open": 2, "done": 3}
    rows.sort(key=lambda r: order[r["status"]])
    return rows, len(cases) > LIST_LIMIT


def open_service_requests(unit: Unit) -> list[ServiceRequest]:
    """Requests of open cases in the subtree not confirmed by the person yet (their loop open or reported),
    oldest first, each with ``assignee_options`` (the team's accounts)."""
    requests = list(
        ServiceRequest.objects.filter(subtree_q(unit.path, "case__path"), case__state__in=OPEN_CASE_STATES)
        .unconfirmed().select_related("case", "loop__owner_user__staff").prefetch_related("case__team")
        .order_by("requested_at", "id")[:LIST_LIMIT])
    for r in requests:
        r.assignee_options = [(m.user_id, f"{m.name}（{m.get_slot_display()}）") for m in r.case.team.all()
                              if m.user_id]
    return requests


def open_alerts(unit: Unit) -> list[Loop]:
    """Open alert loops (abnormal check-ins, positive and missed tests, missed check-ins) in the subtree."""
    return list(Loop.objects.filter(subtree_q(unit.path), kind__in=ALERT_KINDS, state__in=OPEN_STATES)
                .order_by("created_at", "id")[:LIST_LIMIT])


def ending_cases(unit: Unit, user, day: dt.date) -> list[ControlCase]:
    """Cases whose period ends on ``day`` or that wait for release, each with ``can_release``."""
    ending = list(scoped(user, ControlCase.objects).filter(subtree_q(unit.path), state__in=OPEN_CASE_STATES)
                  .filter(Q(end_date=day) | Q(state=CaseState.RELEASE_PROPOSED))
                  .annotate(blocked=Exists(TestSample.objects.filter(case=OuterRef("pk"))
                                           .exclude(result=TestResult.NEGATIVE)))
                  .select_related("type").order_by("-state", "end_date", "id")[:LIST_LIMIT])
    for c in ending:
        c.can_release = not c.blocked and (c.state == CaseState.RELEASE_PROPOSED or not actions.has_next_phase(c))
    return ending


def care_overview(unit: Unit, units: list, day: dt.date) -> dict:
    """The care visits as the today page shows them: at a grid, every person (``care.care_visit_list``); above
    it, per grid how many to visit and how many are done (``care.care_counts_by_grid``, the same people by the
    same rule) — a community visits through its grid workers, and a phone page of hundreds of rows helps nobody."""
    if unit.level == MAX_LEVEL:
        return {"care_rows": care.care_visit_list(unit, day)[:LIST_LIMIT], "care_grids": None}
    names = {u.id: u for u in units}
    grids = [{"unit": names[uid], "total": t, "visited": v}
             for uid, (t, v) in care.care_counts_by_grid(unit, day).items() if uid in names]
    grids.sort(key=lambda g: (g["visited"] >= g["total"], g["unit"].path))
    return {"care_rows": None, "care_grids": grids, "care_total": sum(g["total"] for g in grids),
            "care_visited": sum(g["visited"] for g in grids)}
