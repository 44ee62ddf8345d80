"""The daily care-visit list of a grid (关爱走访): the key-group residents the register flags — elderly living
alone, disabled, pregnant, chronically ill — and the people under home control there, with whether today's
visit (someone asked whether they need food bought, medicine …) is recorded. Three queries, whatever the
size of the grid. Visits are recorded by ``actions.do_record_care_visit``; views authorize the grid first
(``bihuan.register.access.access_unit``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from bihuan.register.models import KEY_GROUPS, Resident, ResidentStatus, Unit, subtree_q

from .models import OPEN_CASE_STATES, CareVisit, ControlCase

# The key groups visited every day (infants are looked after by their families).
CARE_GROUPS = ("elderly_alone", "disabled", "pregnant", "chronic_illness")


@dataclass
class CareRow:
    """One person to visit: a key-group resident, a person under home control, or both."""

    name: str
    address: str
    phone_masked: str
    groups: list[str] = field(default_factory=list)  # labels of the key groups, e.g. ["独居老人"]
    resident: Resident | None = None
    case: ControlCase | None = None  # an open home case (isolation or monitoring)
    visit: CareVisit | None = None  # today's, if recorded

    @property
    def visited(self) -> bool:
        return self.visit is not None

    @property
    def needs(self) -> list[str]:
        return list(self.visit.needs) if self.visit else []


def to_visit(unit: Unit, day: dt.date) -> tuple[QuerySet, QuerySet]:
    """THE rule of who is visited in ``unit``'s subtree on ``day``: (open cases at home begun by the day whose
    case or person is in the subtree, key-group residents present there). A person with both is one row,
    their case's; a visit counts for the resident or for the case."""
    flagged = Q()
    for group in CARE_GROUPS:
        flagged |= Q(**{group: True})
    cases = ControlCase.objects.filter(subtree_q(unit.path) | subtree_q(unit.path, "resident__path"),
                                       state__in=OPEN_CASE_STATES, site_kind="home", start_date__lte=day)
    residents = Resident.objects.filter(subtree_q(unit.path), flagged, status=ResidentStatus.PRESENT)
    return cases, residents


def care_visit_list(grid_unit: Unit, day: dt.date) -> list[CareRow]:
    """Who to visit in ``grid_unit`` (any unit: its whole subtree) on ``day`` (``to_visit``): people under home
    control first (by end date), then key-group residents (by household). Each row says whether the day's
    visit is done."""
    case_qs, resident_qs = to_visit(grid_unit, day)
    cases = list(case_qs.select_related("type", "resident__household").order_by("end_date", "id"))
    case_by_resident = {c.resident_id: c for c in cases if c.resident_id}
    residents = list(
        resident_qs.select_related("household")
        .order_by("household__building", "household__entrance", "household__room", "household__house_number",
                  "household_id", "id"))
    visits = list(CareVisit.objects.filter(
        Q(resident_id__in=[r.pk for r in residents] + list(case_by_resident))
        | Q(case_id__in=[c.pk for c in cases]), date=day))
    by_resident = {v.resident_id: v for v in visits if v.resident_id}
    by_case = {v.case_id: v for v in visits if v.case_id}

    def groups_of(resident: Resident | None) -> list[str]:
        return [str(KEY_GROUPS[g]) for g in CARE_GROUPS if resident is not None and getattr(resident, g)]

    rows: list[CareRow] = []
    for c in cases:
        visit = by_resident.get(c.resident_id) if c.resident_id else None
        rows.append(CareRow(name=c.name, address=c.site_address + (c.site_room or ""),
                            phone_masked=c.phone_masked, groups=groups_of(c.resident), resident=c.resident, case=c,
                            visit=visit or by_case.get(c.pk)))
    for r in residents:
        if r.pk in case_by_resident:
            continue
        rows.append(CareRow(name=r.name, address=r.household.address, phone_masked=r.phone_masked,
                            groups=groups_of(r), resident=r, visit=by_resident.get(r.pk)))
    return rows


def care_counts_by_grid(unit: Unit, day: dt.date) -> dict[int, tuple[int, int]]:
    """The same people as ``care_visit_list`` (``to_visit``), counted per grid they are visited from (where they
    live if that is inside ``unit``, else the unit answering for their case): {grid id: (to visit, visited)}.
    Three reads of plain values, for the pages above a grid, where hundreds of rows help nobody."""
    case_qs, resident_qs = to_visit(unit, day)
    cases = list(case_qs.values_list("id", "unit_id", "resident_id", "resident__unit_id", "resident__path"))
    residents = list(resident_qs.values_list("id", "unit_id"))
    people = [r for r, _u in residents] + [c[2] for c in cases if c[2]]
    visits = list(CareVisit.objects.filter(Q(resident_id__in=people) | Q(case_id__in=[c[0] for c in cases]), date=day)
                  .values_list("resident_id", "case_id"))
    visited_residents = {r for r, _c in visits if r}
    visited_cases = {c for _r, c in visits if c}
    counts: dict[int, list[int]] = {}

    def count(grid: int, visited: bool) -> None:
        c = counts.setdefault(grid, [0, 0])
        c[0] += 1
        c[1] += int(visited)

    covered = set()
    for case_id, case_unit, resident_id, resident_unit, resident_path in cases:
        inside = resident_id and resident_path and resident_path.startswith(unit.path)
        count(resident_unit if inside else case_unit,
              (resident_id in visited_residents if resident_id else False) or case_id in visited_cases)
        if resident_id:
            covered.add(resident_id)
    for resident_id, unit_id in residents:
        if resident_id not in covered:
            count(unit_id, resident_id in visited_residents)
    return {grid: (t, v) for grid, (t, v) in counts.items()}
