"""create_* helpers and the base district used by the tests (see conftest.py)."""

from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace

from bihuan.core.personal import id_checksum
from bihuan.core.roles import Role

from .register.actions import do_create_household, do_create_resident, do_create_staff, do_create_unit
from .register.models import HouseholdKind, Unit, UnitKind

PASSWORD = "bihuan-test-pass"
_seq = itertools.count(1)


def make_id_number(birth: dt.date, sex: str = "M", region: str = "141002") -> str:
    """A valid ID number (GB 11643) for the birth date and sex, unique within a test run."""
    serial = next(_seq) % 500 * 2 + (1 if sex == "M" else 0)
    body = f"{region}{birth:%Y%m%d}{serial:03d}"
    return body + id_checksum(body)


def create_unit(parent: Unit | None, name: str, kind: str, code: str | None = None) -> Unit:
    code = code or f"T{next(_seq):06d}"
    return do_create_unit(parent=parent, code=code, name=name, kind=kind, acting_user=None)


def create_household(unit: Unit, address: str | None = None, kind: str = HouseholdKind.URBAN, **parts):
    n = next(_seq)
    return do_create_household(unit=unit, code=f"H{n:08d}", kind=kind, address=address or f"{unit.name}{n}号",
                               acting_user=None, **parts)


def create_resident(household, name: str = "张三", birth: dt.date = dt.date(1980, 5, 17), sex: str = "M",
                    phone: str | None = None, **kw):
    return do_create_resident(household=household, name=name, id_number=make_id_number(birth, sex),
                              phone=phone if phone is not None else f"138{next(_seq):08d}", acting_user=None, **kw)


def create_staff(unit: Unit, username: str, role: str, name: str | None = None):
    return do_create_staff(unit=unit, username=username, name=name or username, role=role, password=PASSWORD,
                           phone=f"139{next(_seq):08d}", acting_user=None)


def build_base_district() -> SimpleNamespace:
    """Two branches of the tree, A and B, with a named staff account at every level of each.

    Records under branch A are seen by ``insiders`` and never by ``outsiders``.
    """
    d = SimpleNamespace()
    d.district = create_unit(None, "尧都区", UnitKind.DISTRICT, code="141002")
    d.office = create_unit(d.district, "区疫情防控指挥部办公室", UnitKind.COMMAND_OFFICE)
    d.department = create_unit(d.district, "区卫健局", UnitKind.DEPARTMENT)
    d.township_a = create_unit(d.office, "解放路街道", UnitKind.SUBDISTRICT)
    d.township_b = create_unit(d.office, "屯里镇", UnitKind.TOWN)
    d.community_a = create_unit(d.township_a, "鼓楼社区", UnitKind.COMMUNITY)
    d.village_b = create_unit(d.township_b, "东羊村", UnitKind.VILLAGE)
    d.compound_a = create_unit(d.community_a, "锦悦小区", UnitKind.COMPOUND)
    d.group_b = create_unit(d.village_b, "东羊一组", UnitKind.VILLAGER_GROUP)
    d.grid_a = create_unit(d.compound_a, "锦悦小区第1网格", UnitKind.GRID)
    d.grid_b = create_unit(d.group_b, "东羊一组网格", UnitKind.GRID)

    d.household_a = create_household(d.grid_a, "锦悦小区3号楼2单元401", building="3", entrance="2", room="401")
    d.resident_a = create_resident(d.household_a, "王建国", dt.date(1975, 3, 9), "M", phone="13812345678")
    d.resident_a2 = create_resident(d.household_a, "李秀英", dt.date(1978, 11, 2), "F", relation="spouse")
    d.household_b = create_household(d.grid_b, "东羊村一组12号", kind=HouseholdKind.RURAL, house_number="12")
    d.resident_b = create_resident(d.household_b, "赵桂兰", dt.date(1941, 6, 30), "F",
                                   flags={"elderly_alone": True})

    users = {
        "commander": (d.district, Role.DISTRICT_COMMANDER),
        "office": (d.office, Role.COMMAND_OFFICE),
        "department": (d.department, Role.DEPARTMENT),
        "township_a": (d.township_a, Role.TOWNSHIP_STAFF),
        "township_b": (d.township_b, Role.TOWNSHIP_STAFF),
        "community_a": (d.community_a, Role.COMMUNITY_STAFF),
        "village_b": (d.village_b, Role.COMMUNITY_STAFF),
        "property_a": (d.compound_a, Role.PROPERTY_MANAGER),
        "group_head_b": (d.group_b, Role.PROPERTY_MANAGER),
        "grid_a": (d.grid_a, Role.GRID_WORKER),
        "rep_b": (d.grid_b, Role.VILLAGER_REP),
    }
    d.users = {}
    for username, (unit, role) in users.items():
        d.users[username] = create_staff(unit, username, role).user
    d.insiders = ["commander", "office", "department", "township_a", "community_a", "property_a", "grid_a"]
    d.outsiders = ["township_b", "village_b", "group_head_b", "rep_b"]
    return d
