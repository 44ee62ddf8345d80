"""The register workbook: template, all-or-nothing import, audited export, and the round trip between them."""

import datetime as dt
import io
import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from openpyxl import Workbook, load_workbook

from bihuan.core.models import AuditEntry
from bihuan.core.personal import id_checksum
from bihuan.register.models import Household, Resident, Staff, Unit, subtree_q
from bihuan.register.workbook import (
    HOUSEHOLD_COLUMNS,
    RESIDENT_COLUMNS,
    UNIT_COLUMNS,
    export_workbook,
    import_workbook,
    template_bytes,
)
from bihuan.testing import create_household, create_resident, make_id_number

UNIT_HEAD = [c.header for c in UNIT_COLUMNS]
HOUSEHOLD_HEAD = [c.header for c in HOUSEHOLD_COLUMNS]
RESIDENT_HEAD = [c.header for c in RESIDENT_COLUMNS]


def write_xlsx(path, units=None, households=None, residents=None, heads=None):
    """A workbook with the given rows under the standard headers (a sheet given as None is left out)."""
    heads = heads or {}
    book = Workbook()
    book.remove(book.active)
    for title, head, rows in (("单位", UNIT_HEAD, units), ("户", HOUSEHOLD_HEAD, households),
                              ("居民", RESIDENT_HEAD, residents)):
        if rows is None:
            continue
        ws = book.create_sheet(title)
        for extra in heads.get(title, {}).get("above", []):
            ws.append(extra)
        ws.append(heads.get(title, {}).get("head", head))
        for row in rows:
            ws.append(list(row))
    book.save(path)
    return path


def register_counts():
    return Unit.objects.count(), Household.objects.count(), Resident.objects.count(), AuditEntry.objects.count()


def id15(region="141002", yymmdd="900101", serial="123"):
    return region + yymmdd + serial


def as_18(old: str) -> str:
    body = old[:6] + "19" + old[6:]
    return body + id_checksum(body)


def with_wrong_checksum(id_number: str) -> str:
    return id_number[:17] + ("1" if id_number[17] == "0" else "0")


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) - ord("0") + 0xFF10) if c.isdigit() else c for c in text)


class Good:
    """A good workbook under community A: a new compound with two grids, three households, five residents."""

    def __init__(self, district, tmp_path, name="good.xlsx"):
        self.ids = {
            "zsf": make_id_number(dt.date(1980, 5, 17), "M"),
            "ls": make_id_number(dt.date(1982, 8, 1), "F"),
            "zxb15": id15(),
            "ww": make_id_number(dt.date(1950, 2, 3), "M"),
        }
        grid_a = district.grid_a.code
        self.units = [
            ["U-C2", "锦绣小区", 5, "小区", district.community_a.code, "锦绣、锦绣家园"],
            ["U-G21", "锦绣小区第1网格", 6, "网格", "U-C2", None],
            ["U-G22", "锦绣小区第2网格", "6", "网格", "U-C2", ""],
        ]
        self.households = [
            ["HX001", "U-G21", "城镇", "1", "1", "101", None, "锦绣小区1号楼1单元101"],
            ["HX002", "U-G22", "城镇", 2, 1, 202, None, "锦绣小区2号楼1单元202"],
            ["HX003", grid_a, "城镇", "5", "1", "501", None, "锦悦小区5号楼1单元501"],
        ]
        self.residents = [
            ["HX001", "张三丰", self.ids["zsf"], "+86 138-0000-1111", "男", dt.datetime(1980, 5, 17), "户主", "在住"],
            ["HX001", "李四", fullwidth(self.ids["ls"]), "139 0000 2222", None, None, "配偶", None,
             None, None, None, "是", "否"],
            ["HX001", "张小宝", self.ids["zxb15"], None, None, "1990/1/1", "子女", "在住"],
            ["HX002", "王五", self.ids["ww"], 13800003333, "男", "1950年2月3日", None, "外出", "是"],
            ["HX003", "赵六", None, None, "女", "1985年3月4日", "户主", "在住"],
        ]
        self.path = write_xlsx(tmp_path / name, self.units, self.households, self.residents)


# --- template ----------------------------------------------------------------------------------------------

def test_template_has_the_three_sheets_with_chinese_headers_and_a_sheet_of_allowed_values():
    book = load_workbook(io.BytesIO(template_bytes()))
    assert book.sheetnames == ["单位", "户", "居民", "人员", "说明"]
    assert [c.value for c in book["单位"][1]] == [
        "单位编码", "单位名称", "层级", "类型", "上级单位编码", "别名"]
    assert [c.value for c in book["户"][1]] == [
        "户编码", "所属单位编码", "类型", "楼栋", "单元", "房号", "门牌号", "详细地址"]
    assert [c.value for c in book["居民"][1]] == [
        "户编码", "姓名", "身份证号", "手机号", "性别", "出生日期", "与户主关系", "状态",
        "独居老人", "残疾人", "孕产妇", "慢性病患者", "婴幼儿"]
    notes = "\n".join(str(c.value) for row in book["说明"].iter_rows() for c in row if c.value)
    for value in ("疫情防控指挥部办公室", "村民小组", "平房区", "网格", "城镇", "农村", "孙子女", "兄弟姐妹",
                  "已迁出", "已故"):
        assert value in notes
    assert book["居民"].column_dimensions["C"].number_format == "@"  # ID numbers are typed as text


def test_the_empty_template_imports_as_nothing(district, tmp_path):
    path = tmp_path / "template.xlsx"
    path.write_bytes(template_bytes())
    before = register_counts()
    result = import_workbook(path, acting_user=district.users["township_a"])
    assert result.ok, result.errors
    assert register_counts()[:3] == before[:3]


# --- a good import -----------------------------------------------------------------------------------------

def test_a_good_workbook_imports_units_households_and_residents(district, tmp_path):
    good = Good(district, tmp_path)
    before = register_counts()
    result = import_workbook(good.path, acting_user=district.users["township_a"])

    assert result.ok, result.errors
    assert result.counts == {"units": {"created": 3, "updated": 0, "unchanged": 0},
                             "households": {"created": 3, "unchanged": 0},
                             "residents": {"created": 5, "unchanged": 0}}
    assert register_counts() == (before[0] + 3, before[1] + 3, before[2] + 5, before[3] + 1)

    compound, grid1, grid2 = (Unit.objects.get(code=c) for c in ("U-C2", "U-G21", "U-G22"))
    assert compound.parent == district.community_a and compound.level == 5 and compound.kind == "compound"
    assert compound.path == district.community_a.path + "0002"  # compound_a has 0001
    assert (grid1.path, grid2.path) == (compound.path + "0001", compound.path + "0002")
    assert grid1.parent == compound and grid1.kind == "grid"
    assert compound.aliases == "锦绣|锦绣家园"

    hx1 = Household.objects.get(code="HX001")
    assert (hx1.unit, hx1.path, hx1.kind, hx1.building, hx1.entrance, hx1.room) == (grid1, grid1.path, "urban", "1",
                                                                                     "1", "101")
    assert Household.objects.get(code="HX002").room == "202"
    assert (hx1.head_name, hx1.head_initials, hx1.member_count) == ("张三丰", "zsf", 3)
    hx2 = Household.objects.get(code="HX002")
    assert (hx2.head_name, hx2.member_count) == ("王五", 1)  # no 户主: the first member
    hx3 = Household.objects.get(code="HX003")
    assert (hx3.unit, hx3.head_name, hx3.head_initials) == (district.grid_a, "赵六", "zl")

    zsf = Resident.objects.get(name="张三丰")
    assert zsf.reveal_id_number() == good.ids["zsf"]
    assert zsf.id_masked == good.ids["zsf"][:6] + "********" + good.ids["zsf"][-4:]
    assert zsf.id_tail == good.ids["zsf"][-4:]
    assert zsf.reveal_phone() == "13800001111" and zsf.phone_masked == "138****1111"
    assert (zsf.name_initials, zsf.sex, zsf.birth_date, zsf.relation, zsf.status) == (
        "zsf", "M", dt.date(1980, 5, 17), "head", "present")
    assert (zsf.unit, zsf.path) == (grid1, grid1.path)

    ls = Resident.objects.get(name="李四")  # full-width digits; sex and birth date from the ID number
    assert ls.reveal_id_number() == good.ids["ls"]
    assert (ls.sex, ls.birth_date, ls.relation, ls.chronic_illness, ls.infant) == (
        "F", dt.date(1982, 8, 1), "spouse", True, False)
    assert ls.reveal_phone() == "13900002222"

    zxb = Resident.objects.get(name="张小宝")  # a 15-digit number is converted to 18
    assert zxb.reveal_id_number() == as_18(good.ids["zxb15"]) and zxb.birth_date == dt.date(1990, 1, 1)

    ww = Resident.objects.get(name="王五")
    assert (ww.reveal_phone(), ww.status, ww.elderly_alone, ww.relation) == ("13800003333", "away", True, "other")

    zl = Resident.objects.get(name="赵六")  # no ID number: sex and birth date as given
    assert (zl.id_sealed, zl.id_hash, zl.id_masked, zl.sex, zl.birth_date) == (
        b"", "", "", "F", dt.date(1985, 3, 4))

    entry = AuditEntry.objects.get(action="register.import")
    assert entry.actor == district.users["township_a"]
    assert entry.actor_unit_id == district.township_a.id
    assert entry.changes["file"] == "good.xlsx"
    assert entry.changes["residents"] == {"created": 5, "unchanged": 0}
    assert entry.changes["units"]["created"] == 3 and entry.changes["households"]["created"] == 3


def test_headers_are_matched_despite_spaces_brackets_and_a_title_row(district, tmp_path):
    good = Good(district, tmp_path)
    heads = {
        "单位": {"above": [["锦绣小区单位表"]],
               "head": [" 单位编码 ", "单位名称（必填）", "层级(1-6)", "类型", "上级单位编码", "别名"]},
        "居民": {"head": ["户编码", "姓名", "身份证号（18位）", "手机号码", "性别", "出生日期", "与户主关系", "状态",
                        "独居老人", "残疾人", "孕产妇", "慢性病患者", "婴幼儿"]},
    }
    path = write_xlsx(tmp_path / "heads.xlsx", good.units, good.households, good.residents, heads=heads)
    result = import_workbook(path, acting_user=district.users["township_a"])
    assert result.ok, result.errors
    assert result.counts["residents"]["created"] == 5


def test_a_missing_required_column_is_an_error_naming_the_header(district, tmp_path):
    book = Workbook()
    ws = book.active
    ws.title = "居民"
    ws.append(["户编码", "姓名", "手机号"])
    ws.append([district.household_a.code, "王小二", "13800001111"])
    book.save(tmp_path / "cols.xlsx")
    result = import_workbook(tmp_path / "cols.xlsx", acting_user=district.users["township_a"])
    assert [(e.sheet, e.row, e.field) for e in result.errors] == [("居民", 1, "身份证号")]


# --- a bad import --------------------------------------------------------------------------------------------

def test_a_workbook_with_bad_rows_reports_each_one_and_writes_nothing(district, tmp_path):
    grid_a, community_a = district.grid_a, district.community_a
    good_id = make_id_number(dt.date(1990, 1, 2), "F")
    bad_checksum = with_wrong_checksum(good_id)
    dup = make_id_number(dt.date(1970, 7, 7), "M")
    male = make_id_number(dt.date(1966, 6, 6), "M")
    registered = district.resident_a.reveal_id_number()
    units = [
        ["U-OK", "好小区", 5, "小区", community_a.code, ""],  # 2 valid
        ["U-X1", "无上级", 5, "小区", "NOPE", ""],  # 3 unknown parent
        ["U-X2", "层级错", 4, "小区", community_a.code, ""],  # 4 wrong level
        ["U-X3", "类型错", 5, "村", community_a.code, ""],  # 5 wrong kind for the level
    ]
    households = [
        ["HB001", grid_a.code, "城镇", "1", "1", "101", None, "好地址"],  # 2 valid
        ["HB002", "NOPE-GRID", "城镇", "1", "1", "102", None, "没有这个网格"],  # 3 unknown unit
    ]
    residents = [
        ["HB001", "好人", good_id, "13800001111"],  # 2 valid
        ["HB001", "校验错", bad_checksum],  # 3
        ["HB001", "科学计数", 1.41002199001011e17],  # 4 a numeric cell: Excel kept 15 digits
        ["HB001", "科学计数文本", "1.41002E+17"],  # 5 the same, pasted as text
        ["HB001", "重复甲", dup],  # 6
        ["HB001", "重复乙", dup],  # 7 duplicate of row 6
        ["HNOPE", "无户", make_id_number(dt.date(1991, 1, 1))],  # 8 unknown household
        ["HB001", "坏电话", make_id_number(dt.date(1992, 1, 1)), "12345"],  # 9
        ["HB001", "坏日期", None, None, "男", "明年春天"],  # 10 unparseable date
        ["HB001", "已登记", registered],  # 11 already registered in household A
        ["HB001", "性别不符", male, None, "女"],  # 12
        ["HB001", "不存在的日期", None, None, "女", "1980-13-45"],  # 13
        ["HB001", "", make_id_number(dt.date(1993, 1, 1))],  # 14 no name
    ]
    path = write_xlsx(tmp_path / "bad.xlsx", units, households, residents)
    before = register_counts()

    result = import_workbook(path, acting_user=district.users["township_a"])

    assert register_counts() == before
    found = {(e.sheet, e.row, e.field): e.reason for e in result.errors}
    assert set(found) == {
        ("单位", 3, "上级单位编码"), ("单位", 4, "层级"), ("单位", 5, "类型"),
        ("户", 3, "所属单位编码"),
        ("居民", 3, "身份证号"), ("居民", 4, "身份证号"), ("居民", 5, "身份证号"), ("居民", 7, "身份证号"),
        ("居民", 8, "户编码"), ("居民", 9, "手机号"), ("居民", 10, "出生日期"), ("居民", 11, "身份证号"),
        ("居民", 12, "性别"), ("居民", 13, "出生日期"), ("居民", 14, "姓名"),
    }, result.errors
    assert "不存在" in found[("单位", 3, "上级单位编码")]
    assert "应为 5" in found[("单位", 4, "层级")]
    assert "不是层级 5 的类型" in found[("单位", 5, "类型")]
    assert "校验位错误" in found[("居民", 3, "身份证号")] and "GB 11643" in found[("居民", 3, "身份证号")]
    assert "被 Excel 改成了科学计数法" in found[("居民", 4, "身份证号")]
    assert "被 Excel 改成了科学计数法" in found[("居民", 5, "身份证号")]
    assert "第 6 行" in found[("居民", 7, "身份证号")]
    assert "HNOPE" in found[("居民", 8, "户编码")]
    assert district.household_a.code in found[("居民", 11, "身份证号")]
    assert "必填" in found[("居民", 14, "姓名")]
    assert result.counts["residents"]["created"] == 0
    # errors come in sheet and row order and never repeat a personal value
    assert result.errors == sorted(result.errors, key=lambda e: (["单位", "户", "居民"].index(e.sheet), e.row))
    text = "\n".join(str(e) for e in result.errors)
    for value in (good_id, bad_checksum, dup, male, registered):
        assert value not in text


def test_an_integer_that_lost_its_last_digits_is_refused_not_stored(district, tmp_path):
    real = make_id_number(dt.date(1990, 1, 1))
    mangled = int(real[:15]) * 1000  # what Excel keeps of an 18-digit number typed into a General cell
    path = write_xlsx(tmp_path / "int.xlsx", residents=[[district.household_a.code, "整数", mangled]])
    result = import_workbook(path, acting_user=district.users["township_a"])
    assert [(e.row, e.field) for e in result.errors] == [(2, "身份证号")]
    assert "科学计数法" in result.errors[0].reason
    assert not Resident.objects.filter(name="整数").exists()


def test_a_file_that_is_no_workbook_is_an_error_not_a_crash(district, tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"not a zip")
    result = import_workbook(path, acting_user=district.users["township_a"])
    assert not result.ok and "xlsx" in result.errors[0].reason


# --- idempotence and updates ---------------------------------------------------------------------------------

def snapshot_register():
    return (
        list(Unit.objects.order_by("id").values()),
        list(Household.objects.order_by("id").values()),
        list(Resident.objects.order_by("id").values_list("id", "household_id", "name", "id_hash", "phone_hash",
                                                         "relation", "status", "updated_at")),
    )


def test_importing_the_same_file_twice_changes_nothing_the_second_time(district, tmp_path):
    good = Good(district, tmp_path)
    user = district.users["township_a"]
    assert import_workbook(good.path, acting_user=user).ok
    before = snapshot_register()

    again = import_workbook(good.path, acting_user=user)

    assert again.ok, again.errors
    assert snapshot_register() == before
    assert again.counts == {"units": {"created": 0, "updated": 0, "unchanged": 3},
                            "households": {"created": 0, "unchanged": 3},
                            "residents": {"created": 0, "unchanged": 5}}


def test_an_existing_unit_gets_its_new_name_but_is_never_moved(district, tmp_path):
    a = district.compound_a
    rename = write_xlsx(tmp_path / "rename.xlsx", units=[[a.code, "锦悦花园", 5, "小区", district.community_a.code,
                                                         "锦悦"]])
    result = import_workbook(rename, acting_user=district.users["township_a"])
    assert result.ok and result.counts["units"] == {"created": 0, "updated": 1, "unchanged": 0}
    a.refresh_from_db()
    assert (a.name, a.aliases, a.parent_id) == ("锦悦花园", "锦悦", district.community_a.id)

    move = write_xlsx(tmp_path / "move.xlsx", units=[[a.code, "锦悦花园", 5, "小区", district.village_b.code, ""]])
    result = import_workbook(move, acting_user=district.users["commander"])
    assert [(e.row, e.field) for e in result.errors] == [(2, "上级单位编码")]
    assert "不移动" in result.errors[0].reason


def test_a_resident_already_in_the_same_household_is_unchanged_but_in_another_household_is_an_error(
        district, tmp_path):
    known = district.resident_a.reveal_id_number()
    same = write_xlsx(tmp_path / "same.xlsx", residents=[[district.household_a.code, "王建国", known]])
    result = import_workbook(same, acting_user=district.users["commander"])
    assert result.ok and result.counts["residents"] == {"created": 0, "unchanged": 1}

    other = create_household(district.grid_a, "锦悦小区9号楼")
    elsewhere = write_xlsx(tmp_path / "elsewhere.xlsx", residents=[[other.code, "王建国", known]])
    result = import_workbook(elsewhere, acting_user=district.users["commander"])
    assert [(e.row, e.field) for e in result.errors] == [(2, "身份证号")]
    assert district.household_a.code in result.errors[0].reason


# --- who may import ------------------------------------------------------------------------------------------

def test_an_outsider_cannot_import_into_branch_a(district, tmp_path):
    good = Good(district, tmp_path)
    residents_only = write_xlsx(tmp_path / "into-a.xlsx",
                                residents=[[district.household_a.code, "外人", make_id_number(dt.date(1990, 3, 3))]])
    before = register_counts()
    for path in (good.path, residents_only):
        result = import_workbook(path, acting_user=district.users["township_b"])
        assert result.errors
        assert all("不在您的管辖范围内" in e.reason for e in result.errors), result.errors
    assert register_counts() == before
    result = import_workbook(good.path, acting_user=district.users["township_b"])
    assert {(e.sheet, e.row, e.field) for e in result.errors} == {("单位", 2, "上级单位编码"), ("户", 4, "所属单位编码")}


def test_an_import_limited_to_a_unit_refuses_rows_outside_it(district, tmp_path):
    good = Good(district, tmp_path)
    result = import_workbook(good.path, acting_user=district.users["commander"], root_unit=district.compound_a)
    assert {(e.sheet, e.row, e.field) for e in result.errors} == {("单位", 2, "上级单位编码")}
    with pytest.raises(Http404):
        import_workbook(good.path, acting_user=district.users["township_b"], root_unit=district.compound_a)


@pytest.mark.parametrize("username", ["grid_a", "property_a", "department"])
def test_roles_without_the_import_permission_are_refused(district, tmp_path, username):
    good = Good(district, tmp_path)
    with pytest.raises(PermissionDenied):
        import_workbook(good.path, acting_user=district.users[username])
    assert not Unit.objects.filter(code="U-C2").exists()


# --- export and the round trip -------------------------------------------------------------------------------

def snapshot_branch(unit):
    """Everything under ``unit`` that an export carries, keyed by codes (ids change on re-import)."""
    sub = subtree_q(unit.path)
    units = sorted(Unit.objects.filter(sub).values_list("code", "name", "level", "kind", "parent__code", "aliases",
                                                        "path"))
    households = sorted(Household.objects.filter(sub).values_list(
        "code", "unit__code", "path", "kind", "building", "entrance", "room", "house_number", "address", "head_name",
        "head_initials", "member_count"))
    residents = sorted(
        (r.household.code, r.unit.code, r.path, r.name, r.name_initials, r.sex, r.birth_date, r.id_masked, r.id_hash,
         r.id_tail, r.phone_masked, r.phone_hash, r.phone_tail, r.relation, r.status, r.elderly_alone, r.disabled,
         r.pregnant, r.chronic_illness, r.infant, r.reveal_id_number(), r.reveal_phone())
        for r in Resident.objects.filter(sub).select_related("household", "unit"))
    return units, households, residents


def test_an_export_of_township_a_reimports_to_the_same_register(district, tmp_path):
    user = district.users["township_a"]
    assert import_workbook(Good(district, tmp_path).path, acting_user=user).ok
    before = snapshot_branch(district.township_a)
    data = export_workbook(district.township_a, acting_user=user, full_reason="correct")  # only a full file re-imports

    sub = subtree_q(district.township_a.path)
    Resident.objects.filter(sub).delete()
    Household.objects.filter(sub).delete()
    assert Household.objects.filter(subtree_q(district.township_b.path)).count() == 1  # branch B untouched

    result = import_workbook(io.BytesIO(data), acting_user=user)
    assert result.ok, result.errors
    assert result.counts == {"units": {"created": 0, "updated": 0, "unchanged": 7},
                             "households": {"created": 4, "unchanged": 0},
                             "residents": {"created": 7, "unchanged": 0}}
    assert snapshot_branch(district.township_a) == before

    entry = AuditEntry.objects.filter(action="register.export").get()
    assert (entry.actor, entry.target_type, entry.target_id) == (user, "register.unit", str(district.township_a.id))
    assert entry.changes == {"unit": district.township_a.code, "units": 7, "households": 4, "residents": 7,
                             "staff": 4, "full": True, "reason": "correct"}
    assert result.staff_counts == {"created": 0, "updated": 4} and not result.logins  # the same people again


def test_an_export_of_the_district_rebuilds_the_same_tree_in_an_empty_register(district, tmp_path):
    assert import_workbook(Good(district, tmp_path).path, acting_user=district.users["township_a"]).ok
    before = snapshot_branch(district.district)
    data = export_workbook(district.district, acting_user=district.users["commander"], full_reason="correct")

    people = Staff.objects.count()
    Staff.objects.all().delete()
    get_user_model().objects.all().delete()
    Resident.objects.all().delete()
    Household.objects.all().delete()
    for level in range(6, 0, -1):
        Unit.objects.filter(level=level).delete()

    result = import_workbook(io.BytesIO(data), acting_user=None)  # the system loads a new district
    assert result.ok, result.errors
    assert snapshot_branch(Unit.objects.get(level=1)) == before
    entry = AuditEntry.objects.filter(action="register.import").latest("id")
    assert entry.actor is None and entry.changes["units"]["created"] == 14
    assert result.staff_counts["created"] == people == len(result.logins)  # each with a first password


def test_the_export_writes_id_numbers_and_phones_as_text_cells(district):
    data = export_workbook(district.township_a, acting_user=district.users["township_a"], full_reason="correct")
    ws = load_workbook(io.BytesIO(data))["居民"]
    assert [c.value for c in ws[1]] == RESIDENT_HEAD
    rows = list(ws.iter_rows(min_row=2))
    assert len(rows) == 2
    for row in rows:
        id_cell, phone_cell = row[2], row[3]
        assert id_cell.data_type == "s" and id_cell.number_format == "@" and len(id_cell.value) == 18
        assert phone_cell.data_type == "s" and phone_cell.number_format == "@"
    assert {r[2].value for r in rows} == {district.resident_a.reveal_id_number(),
                                          district.resident_a2.reveal_id_number()}
    units = load_workbook(io.BytesIO(data))["单位"]
    root = next(units.iter_rows(min_row=2, values_only=True))
    assert root[0] == district.township_a.code and root[4] == district.office.code  # its real parent


def test_an_outsider_cannot_export_branch_a_and_a_role_without_the_permission_is_refused(district):
    with pytest.raises(Http404):
        export_workbook(district.township_a, acting_user=district.users["township_b"])
    with pytest.raises(Http404):
        export_workbook(district.grid_a, acting_user=district.users["group_head_b"])
    for username in ("grid_a", "department"):
        with pytest.raises(PermissionDenied):
            export_workbook(district.grid_a, acting_user=district.users[username])
    assert not AuditEntry.objects.filter(action="register.export").exists()
    # an insider with the permission may
    assert export_workbook(district.grid_a, acting_user=district.users["property_a"])


def test_the_export_takes_the_same_number_of_queries_for_any_number_of_rows(district):
    user = type(district.users["township_a"]).objects.get(username="township_a")  # as in a new request
    with CaptureQueriesContext(connection) as small:
        export_workbook(district.township_a, acting_user=user)
    for n in range(15):
        household = create_household(district.grid_a)
        create_resident(household, f"居民{n}", phone="")
        create_resident(household, f"家属{n}", relation="spouse")
    user = type(user).objects.get(pk=user.pk)  # a fresh scope cache, as in a new request
    with CaptureQueriesContext(connection) as large:
        export_workbook(district.township_a, acting_user=user)
    assert len(large.captured_queries) == len(small.captured_queries)
    assert len(large.captured_queries) <= 12


# --- commands ------------------------------------------------------------------------------------------------

def test_register_template_command_writes_the_template(tmp_path):
    out = tmp_path / "t.xlsx"
    call_command("register_template", str(out), stdout=io.StringIO())
    assert load_workbook(out).sheetnames == ["单位", "户", "居民", "人员", "说明"]


def test_import_command_prints_a_summary(district, tmp_path):
    good = Good(district, tmp_path)
    stdout = io.StringIO()
    call_command("import_register", str(good.path), "--user", "township_a", stdout=stdout)
    assert "新建居民：5" in stdout.getvalue() and "新建单位：3" in stdout.getvalue()
    assert Household.objects.filter(code="HX003").exists()


def test_import_command_lists_the_errors_and_exits_with_status_1(district, tmp_path):
    wrong = with_wrong_checksum(make_id_number(dt.date(1990, 1, 1)))
    bad = write_xlsx(tmp_path / "bad.xlsx", residents=[[district.household_a.code, "坏", wrong]])
    stderr = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("import_register", str(bad), "--user", "township_a", stderr=stderr)
    assert excinfo.value.returncode == 1
    assert "居民\t2\t身份证号\t身份证号校验位错误" in stderr.getvalue()
    assert wrong not in stderr.getvalue()
    with pytest.raises(CommandError, match="permission"):
        call_command("import_register", str(bad), "--user", "grid_a", stderr=io.StringIO())


def test_export_command_writes_a_workbook_that_imports_and_refuses_an_outsider(district, tmp_path):
    out = tmp_path / "a.xlsx"
    stdout = io.StringIO()
    call_command("export_register", district.township_a.code, str(out), "--user", "township_a", "--full",
                 "--reason", "correct", stdout=stdout)
    assert "2 residents" in stdout.getvalue()
    result = import_workbook(out, acting_user=district.users["township_a"])
    assert result.ok and result.counts["residents"] == {"created": 0, "unchanged": 2}
    refused = tmp_path / "b.xlsx"
    with pytest.raises(CommandError):
        call_command("export_register", district.township_a.code, str(refused), "--user", "township_b",
                     stdout=io.StringIO())
    assert not refused.exists()


# --- personal data stays out of audit rows and logs -----------------------------------------------------------

def test_no_clear_id_number_or_phone_reaches_audit_rows_or_logs(district, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    good = Good(district, tmp_path)
    bad = write_xlsx(tmp_path / "bad.xlsx",
                     residents=[[district.household_a.code, "坏", with_wrong_checksum(good.ids["zsf"])]])
    assert not import_workbook(bad, acting_user=district.users["township_a"]).ok
    assert import_workbook(good.path, acting_user=district.users["township_a"]).ok
    export_workbook(district.township_a, acting_user=district.users["township_a"], full_reason="correct")

    clear = [*good.ids.values(), as_18(good.ids["zxb15"]), "13800001111", "13900002222", "13800003333",
             district.resident_a.reveal_id_number()]
    audit_text = json.dumps([e.changes for e in AuditEntry.objects.all()], ensure_ascii=False)
    assert "register.import" in {e.action for e in AuditEntry.objects.all()}
    for value in clear:
        assert value not in audit_text
        assert value not in caplog.text
