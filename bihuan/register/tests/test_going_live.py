"""Going live: a district imports its register with no staff, imports a 人员 sheet, appoints more people through the
pages, and sees its blind spots disappear as grids get their people; a deactivated person is locked out."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from bihuan.core.models import AuditEntry
from bihuan.register.models import Staff
from bihuan.register.workbook import (
    HOUSEHOLD_COLUMNS,
    STAFF_COLUMNS,
    UNIT_COLUMNS,
    import_workbook,
)

from .helpers import HOUSEHOLDS, STAFF, UNITS, blind, go_live, login, write


@pytest.mark.django_db
def test_a_district_goes_live_from_an_imported_register_and_its_blind_spots_close(tmp_path, client):
    state = go_live(tmp_path, client)
    assert blind("141002").blind_spots == blind("141002").units_without_staff == 3  # 办公室 and two compounds
    assert AuditEntry.objects.filter(action="staff.create").count() == 6
    client.logout()
    login(client, "zhou", state["passwords"]["zhou"])  # the page's first password works, once
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_a_staff_sheet_with_one_bad_row_writes_nothing_and_names_sheet_row_column_and_reason(tmp_path):
    import_workbook(write(tmp_path / "register.xlsx", {"单位": (UNIT_COLUMNS, UNITS),
                                                        "户": (HOUSEHOLD_COLUMNS, HOUSEHOLDS)}), acting_user=None)
    bad = [*STAFF, ("x1", "某人", "12345", "141002010101", "网格员", "", ""),
           ("x2", "某人", "", "999", "网格员", "", "")]
    path = write(tmp_path / "staff.xlsx", {"人员": (STAFF_COLUMNS, bad)})
    with pytest.raises(CommandError):
        call_command("import_staff", path, "--system", stderr=io.StringIO())
    result = import_workbook(path, acting_user=None, staff_only=True)
    assert [(e.sheet, e.row, e.field) for e in result.errors] == [
        ("人员", 6, "手机号"), ("人员", 7, "单位编码")]
    assert not Staff.objects.exists() and not result.logins
    grid_on_wrong_level = [("y", "某人", "", "141002010101", "网格员", "", "")]
    result = import_workbook(write(tmp_path / "s2.xlsx", {"人员": (STAFF_COLUMNS, grid_on_wrong_level)}),
                             acting_user=None, staff_only=True)
    assert [(e.sheet, e.row, e.field) for e in result.errors] == [("人员", 2, "角色")]
    assert not Staff.objects.exists()


@pytest.mark.django_db
def test_a_deactivated_person_cannot_log_in_or_use_the_api(tmp_path, client):
    from bihuan.testing import bearer

    state = go_live(tmp_path, client)
    zhou = Staff.objects.get(user__username="zhou")
    headers = bearer(zhou.user)
    assert client.get("/api/v1/me", **headers).status_code == 200
    response = client.post(reverse("register:staff_deactivate", args=[zhou.id]), {"reason": "调离"})
    assert response.status_code == 302
    assert client.get("/api/v1/me", **headers).status_code == 401
    client.logout()
    response = client.post(reverse("login"), {"username": "zhou", "password": state["passwords"]["zhou"]})
    assert response.status_code == 200  # the login form again, refused
    assert blind("141002").grids_without_responsible == 1  # the grid is a blind spot again
