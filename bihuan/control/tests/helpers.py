"""Helpers the tests of this app share (imported, never copied)."""

from __future__ import annotations

import base64
import datetime as dt
from datetime import timedelta
from types import SimpleNamespace

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from bihuan.control.models import ControlCase, ControlType, TeamMember, TeamSlot
from bihuan.control.models import TestSample as Sample
from bihuan.core.roles import Role
from bihuan.notify.models import InboxItem
from bihuan.policy.models import Protocol
from bihuan.pushes.actions import do_save_verification
from bihuan.pushes.models import Outcome, Verification
from bihuan.testing import Clock, create_staff, freeze_clock

from ..actions import do_mark_measure, do_open_case
from ..models import TestResult as Result

VOLUNTEER_PHONE = "13700001111"


PERSON_PHONE = "13812345678"


def make_case(unit, *, resident=None, type_code: str = "home_isolation", start: dt.date | None = None, days: int = 7,
              tests=(1, 4, 7), phone: str = PERSON_PHONE, name: str | None = None, site_kind: str = "home",
              site_address: str | None = None, site_room: str = "", state: str = "active",
              past_result: str = "negative") -> ControlCase:
    """A case made with the ORM, with one sample per test day (what opening a case writes); samples of days
    before today carry ``past_result`` ("" leaves them untaken)."""
    ctype = ControlType.objects.current().get(code=type_code)
    start = start or timezone.localdate() - timedelta(days=2)
    household = resident.household if resident is not None else None
    case = ControlCase(type=ctype, unit=unit, path=unit.path, resident=resident,
                       name=name or (resident.name if resident else "测试人员"), start_date=start,
                       end_date=start + timedelta(days=days - 1), site_kind=site_kind,
                       site_address=site_address or (household.address if household else f"{unit.name}某处"),
                       site_room=site_room, state=state,
                       phases=[{"type": type_code, "days": days, "tests": list(tests)}])
    case.set_phone(phone)
    case.save()
    today = timezone.localdate()
    for n in tests:
        date = start + timedelta(days=n - 1)
        Sample.objects.create(case=case, day=n, date=date, result=past_result if date < today else "")
    return case


def add_team(case, *, grid_worker=None, doctor=None, volunteer_phone: str | None = VOLUNTEER_PHONE, cadre=None):
    if cadre is not None:
        TeamMember.objects.create(case=case, slot=TeamSlot.CADRE, user=cadre, name=cadre.username)
    if grid_worker is not None:
        TeamMember.objects.create(case=case, slot=TeamSlot.GRID_WORKER, user=grid_worker, name=grid_worker.username)
    if doctor is not None:
        TeamMember.objects.create(case=case, slot=TeamSlot.DOCTOR, user=doctor, name=doctor.username)
    if volunteer_phone:
        member = TeamMember(case=case, slot=TeamSlot.VOLUNTEER, name="志愿者小李")
        member.set_phone(volunteer_phone)
        member.save()


def build_care(d) -> SimpleNamespace:
    """The base district plus: a doctor of the health bureau (outside branch A, but on the team), a volunteer
    account in grid A, and a home-isolation case of 王建国 in grid A whose team is the grid worker, the doctor
    and a volunteer known only by phone."""
    c = SimpleNamespace(d=d)
    c.doctor = create_staff(d.department, "doctor_a", Role.DEPARTMENT).user
    c.volunteer = create_staff(d.grid_a, "volunteer_a", Role.VOLUNTEER).user
    c.case = make_case(d.grid_a, resident=d.resident_a)
    add_team(c.case, grid_worker=d.users["grid_a"], doctor=c.doctor)
    c.team = {"grid_a", "doctor_a"}
    return c


def freeze(monkeypatch, date: dt.date, hour: int, minute: int = 0) -> Clock:
    """The shared frozen clock, set to a local time of ``date``."""
    return freeze_clock(monkeypatch, timezone.make_aware(dt.datetime.combine(date, dt.time(hour, minute))))


def inbox_users() -> set[str]:
    return set(InboxItem.objects.values_list("user__username", flat=True))


def sms_phones(server) -> list[str]:
    return [r["json"]["phone"] for r in server.to("/sms")]







PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


HOTEL = "尧都区隔离酒店（迎宾路88号）"


def today() -> dt.date:
    return timezone.localdate()


def days_ago(n: int) -> dt.date:
    return today() - dt.timedelta(days=n)


def photo(name: str = "协议书.png", data: bytes = PNG) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


def protocol(name: str) -> Protocol:
    return Protocol.objects.get(name=name)


def open_case(d, type_code: str = "home_isolation", *, start: dt.date | None = None, user: str = "community_a",
              resident=None, unit=None, **kw) -> ControlCase:
    """A case in grid A for 王建国 (resident_a) under the 第九版 rules unless ``phases`` / ``protocol_name`` say
    otherwise; centralized quarantine is at the hotel, the others at home."""
    resident = resident if resident is not None else d.resident_a
    hotel = not ControlType.objects.get(code=type_code).at_home
    values = {"site_kind": "hotel" if hotel else "home", "site_address": HOTEL if hotel else "",
              "site_room": "1203" if hotel else "", "protocol_name": "第九版", **kw}
    return do_open_case(type_code=type_code, unit=unit or d.grid_a, name=resident.name if resident else "外来人员",
                        resident=resident or None, start_date=start or today(), acting_user=d.users[user], **values)


def set_results(case: ControlCase, result: str = Result.NEGATIVE, days: list[int] | None = None) -> None:
    qs = Sample.objects.filter(case=case)
    if days is not None:
        qs = qs.filter(day__in=days)
    qs.update(result=result, recorded_at=timezone.now())


def sample_days(case: ControlCase) -> list[tuple[int, dt.date]]:
    return list(Sample.objects.filter(case=case).order_by("day").values_list("day", "date"))


def mark_all_measures(d, case: ControlCase, user: str = "grid_a") -> None:
    for item in case.type.measures:
        do_mark_measure(case, item["key"], acting_user=d.users[user], photo=photo() if item["photo"] else None)


def verified(d, measure: str, *, arrival: str, override: str = "", origin: str = "上海市浦东新区",
             resident=None) -> Verification:
    from bihuan.pushes.tests.helpers import routed

    resident = resident or d.resident_a
    [person] = routed(d, {"name": resident.name, "resident": resident, "phone": "13812345678", "origin": origin,
                          "id_number": resident.reveal_id_number()})
    ver = Verification.objects.get(person=person)
    data = {"arrival_date": arrival, "outcome": Outcome.NEW_CONTROL, "measure": measure}
    if override:
        data["override_reason"] = override
    return do_save_verification(ver, data, acting_user=d.users["grid_a"])
