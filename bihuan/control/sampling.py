"""Test schedules (上门核酸检测): the day's door-to-door sampling list, results, and escalation.

The samples themselves are written when a case opens (one ``TestSample`` per test day of its phase). Here:

- ``sampling_list(unit, day)``: that day's samples of open cases in a community's or grid's subtree, grouped
  by grid and then by building (urban households), villager group house (rural: one group per grid) or
  quarantine hotel, in walking order (building, entrance, room).
- ``do_record_result``: negative / positive / pending (sampled, result awaited) / missed.
- A **positive** result escalates at once: a ``TEST_POSITIVE`` loop owned by the community, and messages to
  the five-for-one team, the community's staff and the district command office's staff.
- A **missed** test (recorded as missed, or a past day's sample still not taken — the ``control.samples``
  worker marks those) escalates at once too: a ``TEST_MISSED`` loop and messages to the team and the
  community's staff (not the command office: a missed swab is the community's to put right).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from bihuan.core import audit
from bihuan.loops.models import Loop
from bihuan.register.models import Unit, subtree_q

from .checkins import (
    CareError,
    alert_deadlines,
    care_access,
    command_office_of,
    community_of,
    local,
    open_alert,
    place_of,
    staff_users,
    team_recipients,
)
from .models import OPEN_CASE_STATES, TEST_MISSED, TEST_POSITIVE, ControlCase, TestResult, TestSample

MISSED_PER_TICK = 500
ESCALATING = {TestResult.POSITIVE: TEST_POSITIVE, TestResult.MISSED: TEST_MISSED}


class SampleError(CareError):
    pass


# ---- the day's list --------------------------------------------------------------------------------------

def _natural(text: str) -> tuple:
    """'3' < '10', and '3号楼' sorts with '3'."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text or ""))


@dataclass
class SamplingGroup:
    """One stop of the round: a building (or a hotel, or the rest of a grid) and its samples in door order."""

    unit: Unit  # the case's unit, normally the grid
    place: str  # "3" (building), a hotel's address, or "" (households without a building)
    samples: list[TestSample] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(1 for s in self.samples if s.result)

    @property
    def label(self) -> str:
        if not self.place:
            return self.unit.name
        return f"{self.place}号楼" if self.place.isdigit() else self.place


def _place_and_door(case: ControlCase) -> tuple[str, tuple]:
    if case.site_kind == "hotel":
        return case.site_address, _natural(case.site_room)
    household = getattr(case.resident, "household", None) if case.resident_id else None
    if household is not None and household.building:
        return household.building, (_natural(household.entrance), _natural(household.room))
    if household is not None:
        return "", (_natural(household.house_number), _natural(household.address))
    return "", (_natural(case.site_address),)


def sampling_list(unit: Unit, day: dt.date) -> list[SamplingGroup]:
    """The door-to-door sampling list of ``day`` for a community or grid (any unit: its whole subtree). The
    caller authorizes the unit (``register.access.access_unit``). One query; each sample carries its case."""
    samples = (TestSample.objects.filter(subtree_q(unit.path, "case__path"), date=day,
                                         case__state__in=OPEN_CASE_STATES)
               .select_related("case__type", "case__unit", "case__resident__household")
               .order_by("case__path", "case_id"))
    groups: dict[tuple[int, str], SamplingGroup] = {}
    doors: dict[int, tuple] = {}
    for sample in samples:
        case = sample.case
        place, door = _place_and_door(case)
        doors[sample.pk] = (door, case.name, case.pk)
        key = (case.unit_id, place)
        if key not in groups:
            groups[key] = SamplingGroup(unit=case.unit, place=place)
        groups[key].samples.append(sample)
    out = sorted(groups.values(), key=lambda g: (g.unit.path, g.place == "", _natural(g.place)))
    for group in out:
        group.samples.sort(key=lambda s: doors[s.pk])
    return out


# ---- results ---------------------------------------------------------------------------------------------

def do_record_result(sample: TestSample, result: str, *, acting_user) -> TestSample:
    """Record a sample's result (team member or Perm.CARE staff in scope). The same result again changes
    nothing; a different one corrects it (audited). Positive and missed escalate at once."""
    if result not in TestResult.values:
        raise SampleError(f"result: one of {TestResult.values}")
    case = care_access(acting_user, sample.case_id)
    with transaction.atomic():
        sample = TestSample.objects.select_for_update().get(pk=sample.pk)
        if sample.date > timezone.localdate():
            raise SampleError("result: this test is not due yet")
        before = sample.result
        if before == result:
            return sample
        now = timezone.now()
        sample.result = result
        if result != TestResult.MISSED:
            sample.sampled_at = sample.sampled_at or now
        sample.recorded_by, sample.recorded_at = acting_user, now
        sample.save(update_fields=["result", "sampled_at", "recorded_by", "recorded_at"])
        audit.record(actor=acting_user, action="control.test_result", target=sample,
                     changes={"case": case.pk, "day": sample.day, "result": [before, result]})
        if result in ESCALATING:
            escalate(case, sample, acting_user=acting_user)
    return sample


def escalate(case: ControlCase, sample: TestSample, *, acting_user=None) -> Loop:
    """A positive or missed test: the community's alert loop and the messages (see the module docstring)."""
    positive = sample.result == TestResult.POSITIVE
    what = "核酸检测阳性" if positive else "核酸检测未采样"
    kind = ESCALATING[sample.result]
    community = community_of(case.unit)
    others = team_recipients(case)
    office = command_office_of(case.unit) if positive else None
    if office is not None:
        others.add_users(staff_users(office))
    ack, due = alert_deadlines(kind)
    if positive:
        body = (f"{case.name}（{place_of(case)}）第 {sample.day} 天（{sample.date:%m-%d}）核酸检测结果阳性。"
                f"请立即落实转运和流调，{community.name}于 {local(ack)} 前签收、{local(due)} 前反馈。")
    else:
        body = (f"{case.name}（{place_of(case)}）第 {sample.day} 天（{sample.date:%m-%d}）的上门核酸未采样。"
                f"请尽快安排补采，{community.name}于 {local(due)} 前反馈。")
    loop, told = open_alert(case, kind=kind, subject_id=sample.pk,
                            title=f"{what}：{case.name} 第 {sample.day} 天（{sample.date:%m-%d}）",
                            data={"sample": sample.pk, "result": sample.result}, subject=f"{what}：{case.name}",
                            body=body, others=others, key=f"control.test:{sample.pk}:{sample.result}",
                            deadlines=(ack, due), acting_user=acting_user)
    audit.record(actor=acting_user, action="control.alert", target=loop, unit=case.unit,
                 changes={"reason": f"test_{sample.result}", "case": case.pk, "sample": sample.pk,
                          "community": community.pk, "office": getattr(office, "pk", None), **told.summary()})
    return loop


def mark_missed_samples(now: dt.datetime | None = None, *, limit: int = MISSED_PER_TICK) -> int:
    """The ``control.samples`` worker step: samples of open cases dated before today and never taken become
    missed and escalate. The conditional UPDATE is the claim: of two workers only one changes a row, and only
    that one escalates (in the same transaction), so each sample escalates once. Returns samples marked."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    ids = list(TestSample.objects.filter(date__lt=today, result="", case__state__in=OPEN_CASE_STATES)
               .order_by("date", "pk").values_list("pk", flat=True)[:limit])
    marked = 0
    for pk in ids:
        with transaction.atomic():
            if not TestSample.objects.filter(pk=pk, result="").update(result=TestResult.MISSED, recorded_at=now):
                continue
            sample = TestSample.objects.select_related("case__type", "case__unit").get(pk=pk)
            audit.record(actor=None, action="control.test_result", target=sample, unit=sample.case.unit,
                         changes={"case": sample.case_id, "day": sample.day, "result": ["", TestResult.MISSED],
                                  "by": "worker"})
            escalate(sample.case, sample)
            marked += 1
    return marked
