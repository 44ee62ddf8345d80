"""Helpers the tests of this app share (imported, never copied)."""

from __future__ import annotations

import io

from django.core.management import call_command
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from bihuan.register.coverage import rollup
from bihuan.register.models import Staff, Unit
from bihuan.register.workbook import (
    HOUSEHOLD_COLUMNS,
    STAFF_COLUMNS,
    UNIT_COLUMNS,
    import_workbook,
)

UNITS = [  # 单位编码, 单位名称, 层级, 类型, 上级单位编码
    ("141002", "尧都区", 1, "区", ""),
    ("14100201", "区疫情防控指挥部办公室", 2, "疫情防控指挥部办公室", "141002"),
    ("1410020101", "解放路街道", 3, "街道", "14100201"),
    ("141002010101", "鼓楼社区", 4, "社区", "1410020101"),
    ("14100201010101", "锦悦小区", 5, "小区", "141002010101"),
    ("14100201010102", "纺织厂宿舍", 5, "小区", "141002010101"),
    ("1410020101010101", "锦悦小区第1网格", 6, "网格", "14100201010101"),
    ("1410020101010102", "锦悦小区第2网格", 6, "网格", "14100201010101"),
    ("1410020101010201", "纺织厂宿舍网格", 6, "网格", "14100201010102"),
]


HOUSEHOLDS = [(f"H{g[-4:]}{n}", g, "城镇", "1", "1", f"{n}01", "", f"锦悦小区{g[-4:]}-{n}01")
              for g in ("1410020101010101", "1410020101010102", "1410020101010201") for n in (1, 2)]


STAFF = [  # 登录名, 姓名, 手机号, 单位编码, 角色, 负责户, 语言
    ("zhihui", "赵指挥", "13900000001", "141002", "区指挥长", "", ""),
    ("jiedao", "钱街道", "13900000002", "1410020101", "乡镇（街道）干部", "", ""),
    ("shequ", "孙社区", "13900000003", "141002010101", "村（社区）干部", "", "简体中文"),
    ("", "李网格", "139 0000 0004", "1410020101010101", "网格员", "H01011|H01012", ""),
]


def write(path, sheets: dict[str, tuple]) -> str:
    book = Workbook()
    book.remove(book.active)
    for title, (columns, rows) in sheets.items():
        ws = book.create_sheet(title)
        ws.append([c.header for c in columns])
        for row in rows:
            ws.append(list(row))
    book.save(path)
    return str(path)


def blind(code: str):
    unit = Unit.objects.get(code=code)
    return rollup(unit)[1][unit.id]


def login(client, username: str, password: str) -> None:
    response = client.post(reverse("login"), {"username": username, "password": password})
    assert response.status_code == 302, response.content.decode()


def go_live(tmp_path, client) -> dict:
    # 1. The register, by the workbook route, with no staff at all: every grid is a blind spot.
    result = import_workbook(write(tmp_path / "register.xlsx", {"单位": (UNIT_COLUMNS, UNITS),
                                                                 "户": (HOUSEHOLD_COLUMNS, HOUSEHOLDS)}),
                             acting_user=None)
    assert result.ok, result.errors
    assert not Staff.objects.exists()
    district = blind("141002")
    assert district.grids_without_responsible == 3 and district.units_without_staff == 6

    # 2. A 人员 sheet through the command: four people, their first passwords in a file, not on the terminal.
    logins_path = tmp_path / "logins.xlsx"
    out = io.StringIO()
    call_command("import_staff", write(tmp_path / "staff.xlsx", {"人员": (STAFF_COLUMNS, STAFF)}), "--system",
                 "--logins", str(logins_path), stdout=out)
    rows = list(load_workbook(logins_path).active.iter_rows(min_row=2, max_row=5, values_only=True))
    passwords = {r[0]: r[1] for r in rows}
    assert set(passwords) == {"zhihui", "jiedao", "shequ", "lwg1"}
    assert not any(p in out.getvalue() for p in passwords.values())
    assert list(Staff.objects.get(user__username="lwg1").households.values_list("code", flat=True)) == [
        "H01011", "H01012"]
    assert blind("141002").grids_without_responsible == 2

    # 3. The community's admin signs in with the first password, must change it, then appoints through the pages.
    login(client, "shequ", passwords["shequ"])
    assert client.get(reverse("home"))["Location"].startswith(reverse("register:change_password"))
    response = client.post(reverse("register:change_password"), {
        "old_password": passwords["shequ"], "new_password": "Gulou-community-22", "new_password2": "Gulou-community-22"})
    assert response.status_code == 302
    grid2, textile = Unit.objects.get(code="1410020101010102"), Unit.objects.get(code="1410020101010201")
    created = {}
    for grid, username, name in ((grid2, "zhou", "周网格"), (textile, "wu", "吴楼长")):
        response = client.post(reverse("register:staff_create", args=[grid.id]), {
            "username": username, "name": name, "phone": "13700000009", "role": "building_leader"})
        assert response.status_code == 200, response.content.decode()
        created[username] = response.context["password"]
    assert blind("141002").grids_without_responsible == 0

    # 4. 三无小区: the old works compound is a blind spot until a cadre answers for it (包保).
    client.post(reverse("register:no_property", args=[textile.parent_id]), {"value": "1"})
    assert blind("141002").compounds_without_cadre == 1
    client.post(reverse("register:leader_appoint", args=[textile.parent_id]), {"username": "shequ", "duty": "包保"})
    page = client.get(reverse("register:unit", args=[textile.parent_id])).content.decode()
    assert "孙社区" in page and "包保" in page
    assert blind("141002").compounds_without_cadre == 0
    return {"passwords": passwords | created}
