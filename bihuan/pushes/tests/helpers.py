"""Helpers the tests of this app share (imported, never copied)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import uuid

from django.utils import timezone

from bihuan.core import crypto
from bihuan.core.personal import mask_id_number
from bihuan.loops.models import Loop, LoopState
from bihuan.pushes.models import (
    TRANSFER,
    VERIFICATION,
    PushBatch,
    PushedPerson,
    Transfer,
    TransferState,
    Verification,
)
from bihuan.pushes.routing import route_people
from bihuan.register.models import Unit

_n = itertools.count(1)
_seq = itertools.count(1)

def make_batch(unit: Unit, user=None, source: str = "省大数据中心") -> PushBatch:
    n = next(_n)
    return PushBatch.objects.create(source=source, file_name=f"推送{n}.xlsx",
                                    file_sha256=hashlib.sha256(str(n).encode()).hexdigest(), file_data=b"",
                                    unit=unit, uploaded_by=user)


def push(batch: PushBatch, name: str = "", *, address: str = "", township: str = "", community: str = "",
         id_number: str | None = None, phone: str | None = "13900000000", origin: str = "上海市浦东新区",
         at: dt.datetime | None = None, resident=None, **kw) -> PushedPerson:
    at = at or timezone.now()
    p = PushedPerson(name=name or f"推送人员{next(_n)}", first_batch=batch, first_pushed_at=at, last_pushed_at=at,
                     address_text=address, township_text=township, community_text=community, origin=origin,
                     sources=batch.source, resident=resident, **kw)
    if id_number:
        p.id_sealed, p.id_hash = crypto.seal(id_number), crypto.lookup_hash("id", id_number)
        p.id_masked, p.id_tail = mask_id_number(id_number), id_number[-4:]
    if phone:
        p.set_phone(phone)
    p.save()
    return p


def routed(d, *specs: dict, user=None, deadline: str | None = None) -> list[PushedPerson]:
    """Push people (each spec: ``push`` keyword arguments) from the command office and route them."""
    batch = make_batch(d.office, d.users["office"])
    people = [push(batch, **spec) for spec in specs]
    route_people([p.pk for p in people], acting_user=user or d.users["office"], deadline=deadline)
    return [PushedPerson.objects.select_related("unit").get(pk=p.pk) for p in people]


def loop_of(person: PushedPerson) -> Loop:
    return Loop.objects.get(kind=VERIFICATION, subject_id=person.pk)


def assert_one_owner(person: PushedPerson) -> None:
    """The invariant: a person has exactly one owning unit — ``person.unit`` — which owns their one verification
    loop; at most one transfer of theirs waits for an answer."""
    person.refresh_from_db()
    assert person.unit_id is not None and person.path == person.unit.path
    loops = list(Loop.objects.filter(kind=VERIFICATION, subject_id=person.pk))
    assert len(loops) == 1, loops
    assert loops[0].owner_unit_id == person.unit_id and loops[0].path == person.path
    assert Verification.objects.get(person=person).loop_id == loops[0].pk
    assert Transfer.objects.pending().filter(person=person).count() <= 1


DAY = dt.date(2022, 3, 4)


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.get_current_timezone())


NOW = local(DAY, 20)


YESTERDAY = DAY - dt.timedelta(days=1)


class Builder:
    """Pushed people, verifications, loops and transfers written with the models directly."""

    def __init__(self, d, now: dt.datetime | None = None):
        self.d = d
        self.now = now or timezone.now()
        self.batch = PushBatch.objects.create(source="省大数据中心", file_name="推送名单.xlsx",
                                              file_sha256=uuid.uuid4().hex * 2, unit=d.office)

    def person(self, unit: Unit | None, *, method: str = "address", at: dt.datetime | None = None,
               name: str | None = None, **kw) -> PushedPerson:
        at = at or self.now
        n = next(_seq)
        p = PushedPerson(name=name or f"推送人员{n}", first_batch=self.batch, first_pushed_at=at, last_pushed_at=at,
                         unit=unit, path=unit.path if unit else "", route_method=method if unit else "",
                         routed_at=at if unit else None, sources=self.batch.source, **kw)
        p.set_phone(f"139{n:08d}")
        p.save()
        return p

    def verify(self, person: PushedPerson, outcome: str, measure: str = "", at: dt.datetime | None = None,
               **kw) -> Verification:
        return Verification.objects.create(person=person, outcome=outcome, measure=measure,
                                           verified_at=at or self.now, **kw)

    def loop(self, person: PushedPerson, unit: Unit, *, due_at: dt.datetime, state: str = LoopState.ISSUED,
             kind: str = VERIFICATION, created_at: dt.datetime | None = None, **kw) -> Loop:
        return Loop.objects.create(kind=kind, subject_id=person.pk, title=f"核查 {person.name}", owner_unit=unit,
                                   path=unit.path, level=unit.level, originator_unit=self.d.office, state=state,
                                   due_at=due_at, created_at=created_at or self.now - dt.timedelta(hours=12), **kw)

    def transfer(self, person: PushedPerson, from_unit: Unit, to_unit: Unit, *, at: dt.datetime | None = None,
                 state: str = TransferState.PENDING, answered_at: dt.datetime | None = None,
                 ping_pong: bool = False) -> Transfer:
        t = Transfer.objects.create(person=person, from_unit=from_unit, to_unit=to_unit, reason="不在本辖区",
                                    answered_at=answered_at, ping_pong=ping_pong,
                                    return_reason="查无此人" if state == TransferState.RETURNED else "")
        # The transfer's status is its loop's state.
        loop_state = {TransferState.PENDING: LoopState.ISSUED, TransferState.ACCEPTED: LoopState.CLOSED,
                      TransferState.RETURNED: LoopState.RETURNED}[state]
        loop = Loop.objects.create(kind=TRANSFER, subject_id=t.pk, title=f"转办：{person.name}", owner_unit=to_unit,
                                   path=to_unit.path, level=to_unit.level, originator_unit=from_unit,
                                   state=loop_state, created_at=at or self.now)
        Transfer.objects.filter(pk=t.pk).update(created_at=at or self.now, loop=loop)
        t.refresh_from_db()
        return t


def build_day(d) -> Builder:
    """A day of pushed lists in both branches: routed every way, verified with outcomes and measures,
    overdue loops, transfers in and out, a return and a ping-pong — and records of the day before."""
    b = Builder(d, now=NOW)
    today, before = local(DAY, 9), local(YESTERDAY, 10)
    a1 = b.person(d.grid_a, method="resident", at=today)
    b.verify(a1, "new_control", "centralized_quarantine", at=local(DAY, 11))
    a2 = b.person(d.compound_a, method="address", at=today)
    b.verify(a2, "no_control_needed", "none", at=local(DAY, 12))
    a3 = b.person(d.grid_a, method="address", at=today)
    b.loop(a3, d.grid_a, due_at=local(DAY, 12))  # overdue
    a4 = b.person(d.community_a, method="manual", at=today)
    b.loop(a4, d.community_a, due_at=local(DAY + dt.timedelta(days=1), 9))  # not yet due
    a5 = b.person(d.grid_a, method="resident", at=before)
    b.verify(a5, "left", at=local(DAY, 8))
    a6 = b.person(d.grid_a, method="resident", at=before)
    b.verify(a6, "no_such_person", at=local(YESTERDAY, 18))  # verified the day before
    b.loop(a6, d.grid_a, due_at=local(YESTERDAY, 12), state=LoopState.REPORTED, reported_at=local(YESTERDAY, 18))
    b.person(d.office, method="manual", at=today)  # the manual-dispatch queue
    b.person(None, at=local(DAY, 19))  # not routed yet (its import is still running)
    b.person(d.office, method="manual", at=before)

    b1 = b.person(d.grid_b, method="resident", at=today)
    b.verify(b1, "already_controlled", "home_isolation", at=local(DAY, 15))
    b.loop(b1, d.grid_b, due_at=local(DAY, 10), state=LoopState.REPORTED, reported_at=local(DAY, 15))  # late, done
    b2 = b.person(d.grid_b, method="address", at=today)
    b.loop(b2, d.grid_b, due_at=local(DAY + dt.timedelta(days=1), 9), ack_due_at=local(DAY, 10))  # not signed
    b.loop(b2, d.grid_a, due_at=local(DAY, 10), kind="directive.receipt")  # another kind of loop

    moved = b.person(d.village_b, method="transfer", at=today)  # routed to community A, transferred to B
    b.transfer(moved, d.community_a, d.village_b, at=local(DAY, 10), state=TransferState.ACCEPTED,
               answered_at=local(DAY, 13))
    b.verify(moved, "new_control", "home_isolation", at=local(DAY, 16))
    bounced = b.person(d.grid_a, method="address", at=today)  # sent to grid B, which returned it
    b.transfer(bounced, d.grid_a, d.grid_b, at=local(DAY, 10), state=TransferState.RETURNED,
               answered_at=local(DAY, 14))
    pingpong = b.person(d.village_b, method="transfer", at=before)  # A → B → A
    b.transfer(pingpong, d.community_a, d.village_b, at=local(YESTERDAY, 11), state=TransferState.ACCEPTED,
               answered_at=local(DAY, 9))
    b.transfer(pingpong, d.village_b, d.community_a, at=local(DAY, 17), ping_pong=True)
    b.verify(pingpong, "elsewhere_in_district", at=local(DAY, 17))
    return b
