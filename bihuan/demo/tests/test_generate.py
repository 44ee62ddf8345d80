import datetime as dt
import io
import logging
from collections import Counter
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F

from bihuan.core.personal import (
    birth_date_from_id,
    mask_id_number,
    mask_phone,
    normalize_id_number,
    normalize_phone,
    sex_from_id,
)
from bihuan.core.roles import RESPONSIBLE_ROLES
from bihuan.demo.generate import PASSWORD, RegisterNotEmpty, generate_district, reset_register
from bihuan.register import coverage
from bihuan.register.models import (
    ACTIVE_STATUSES,
    Household,
    LevelName,
    Relation,
    Resident,
    Staff,
    Unit,
    UnitKind,
)


def quiet(line: str) -> None:
    pass


@pytest.fixture
def tiny(db):
    return generate_district("tiny", seed=1, out=quiet)


def kinds(level):
    return set(Unit.objects.filter(level=level).values_list("kind", flat=True))


def snapshot():
    """What a seed decides: the tree, the addresses, the people (not the encryption nonces)."""
    return (
        list(Unit.objects.order_by("path").values_list("path", "code", "name", "kind")),
        list(Household.objects.order_by("code").values_list("code", "address", "head_name", "member_count")),
        list(Resident.objects.order_by("household__code", "id").values_list(
            "name", "sex", "birth_date", "id_masked", "phone_masked", "relation", "status")),
        list(Staff.objects.order_by("unit__path", "role", "user__username").values_list(
            "user__username", "name", "role", "phone_masked")),
    )


def test_tiny_has_every_level_and_at_least_two_units_at_levels_3_to_6(tiny):
    counts = {level: Unit.objects.filter(level=level).count() for level in range(1, 7)}
    assert counts == tiny["units"]
    assert counts[1] == 1
    assert kinds(2) == {UnitKind.COMMAND_OFFICE, UnitKind.DEPARTMENT}
    assert all(counts[level] >= 2 for level in range(3, 7)), counts
    assert {UnitKind.SUBDISTRICT, UnitKind.TOWN} <= kinds(3)
    assert kinds(4) == {UnitKind.COMMUNITY, UnitKind.VILLAGE}
    assert {UnitKind.COMPOUND, UnitKind.VILLAGER_GROUP} <= kinds(5)
    assert Unit.objects.get(level=1).code == "141002"
    # level 3 hangs under the command office, departments have no children
    office = Unit.objects.get(kind=UnitKind.COMMAND_OFFICE)
    assert set(Unit.objects.filter(level=3).values_list("parent_id", flat=True)) == {office.id}
    assert not Unit.objects.filter(parent__kind=UnitKind.DEPARTMENT).exists()
    assert Household.objects.count() == tiny["households"]
    assert Resident.objects.count() == tiny["residents"]
    assert Staff.objects.count() == tiny["staff"]
    assert 200 <= tiny["residents"] <= 1000
    assert LevelName.objects.count() == 7
    assert LevelName.objects.get(level=7).name_zh == "村民居民"


def test_paths_and_codes_are_fixed_width_and_unique(tiny):
    for unit in Unit.objects.select_related("parent"):
        assert len(unit.path) == 4 * unit.level
        if unit.parent:
            assert unit.path.startswith(unit.parent.path)
            assert unit.code.startswith(unit.parent.code)
    widths = {level: {len(c) for c in Unit.objects.filter(level=level).values_list("code", flat=True)}
              for level in range(1, 7)}
    assert all(len(w) == 1 for w in widths.values()), widths


def test_households_and_residents_carry_the_path_and_unit_of_their_grid(tiny):
    assert not Household.objects.exclude(path=F("unit__path")).exists()
    assert not Household.objects.exclude(unit__level=6).exists()
    assert not Resident.objects.exclude(path=F("household__path")).exists()
    assert not Resident.objects.exclude(unit_id=F("household__unit_id")).exists()
    sizes = Counter(Resident.objects.values_list("household_id", flat=True))
    for household in Household.objects.all():
        assert household.member_count == sizes[household.id]
        head = household.residents.get(relation=Relation.HEAD)
        assert household.head_name == head.name and household.head_initials == head.name_initials
        assert household.address.startswith(("解放路街道", "屯里镇"))
    urban = Household.objects.filter(kind="urban").first()
    assert urban.address.endswith(f"{urban.building}号楼{urban.entrance}单元{urban.room}室")
    rural = Household.objects.filter(kind="rural").first()
    assert rural.address.endswith(f"组{rural.house_number}号")
    for grid in Unit.objects.filter(level=6):
        assert 30 <= grid.households.count() <= 150


def test_every_grid_has_a_responsible_person_and_there_are_no_blind_spots(tiny):
    for grid in Unit.objects.filter(level=6):
        assert Staff.objects.filter(unit=grid, role__in=list(RESPONSIBLE_ROLES)).exists(), grid.name
    for unit in Unit.objects.filter(level__lt=6):
        assert Staff.objects.filter(unit=unit).exists(), unit.name
    units, totals = coverage.rollup()
    root = totals[Unit.objects.get(level=1).id]
    assert root.blind_spots == 0
    flagged = Unit.objects.filter(no_property_management=True)
    assert flagged.exists() and all(u.leaders.exists() for u in flagged)  # 三无小区, each with its 包保 cadre
    assert root.households == tiny["households"]
    assert root.residents == Resident.objects.filter(status__in=ACTIVE_STATUSES).count()
    assert root.units_below == {level: n for level, n in tiny["units"].items() if level > 1}


def test_id_numbers_are_valid_unique_and_match_birth_date_and_sex(tiny):
    today = dt.date.today()
    residents = list(Resident.objects.select_related("household"))
    assert len({r.id_hash for r in residents}) == len(residents)
    for r in residents:
        number = r.reveal_id_number()
        assert normalize_id_number(number) == number
        assert number.startswith("141002")
        assert birth_date_from_id(number) == r.birth_date
        assert sex_from_id(number) == r.sex
        assert r.id_masked == mask_id_number(number) and r.id_tail == number[-4:]
        age = r.age(today)
        assert 0 <= age <= 100
        assert r.infant == (age < 3)
        if r.elderly_alone:
            assert age >= 65 and r.household.member_count == 1
        if r.pregnant:
            assert r.sex == "F" and 22 <= age <= 38
        if r.phone_hash:
            phone = r.reveal_phone()
            assert normalize_phone(phone) == phone and phone[:2] in {"13", "15", "17", "18", "19"}
            assert r.phone_masked == mask_phone(phone)


def test_demo_logins_are_one_per_level_and_share_the_password(tiny):
    logins = tiny["logins"]
    assert [login["level"] for login in logins] == [1, 2, 3, 4, 5, 6]
    assert [login["username"] for login in logins] == [
        "commander", "office", "township1", "community1", "compound1", "grid1"]
    for login in logins:
        user = get_user_model().objects.get(username=login["username"])
        assert user.check_password(PASSWORD)
        assert user.staff.unit.level == login["level"]
        assert user.staff.unit.name == login["unit"]
        assert user.staff.role == login["role"]
        assert user.staff.phone_masked


def test_the_same_seed_gives_the_same_district_and_another_seed_another(tiny):
    first = snapshot()
    reset_register(out=quiet)
    assert not Unit.objects.exists() and not Staff.objects.exists()
    generate_district("tiny", seed=1, out=quiet)
    assert snapshot() == first
    reset_register(out=quiet)
    generate_district("tiny", seed=2, out=quiet)
    other = snapshot()
    assert [r[0] for r in other[2]] != [r[0] for r in first[2]]  # resident names
    assert [u[2] for u in other[0]] != [u[2] for u in first[0]]  # unit names


def test_generate_refuses_a_non_empty_register_unless_reset(tiny):
    with pytest.raises(RegisterNotEmpty):
        generate_district("tiny", out=quiet)
    with pytest.raises(CommandError, match="--reset"):
        call_command("generate", "--preset", "tiny", stdout=io.StringIO())
    out = io.StringIO()
    call_command("generate", "--preset", "tiny", "--seed", "3", "--reset", stdout=out)
    text = out.getvalue()
    assert "commander" in text and "grid1" in text and PASSWORD in text
    assert Resident.objects.count() > 0
    assert not get_user_model().objects.filter(username="s141002").exists()


@pytest.mark.django_db(transaction=True)
def test_no_clear_id_number_or_phone_reaches_the_database_file_or_the_logs_after_generation_and_import(caplog, capsys, settings):
    if connection.vendor != "sqlite":
        pytest.skip("reads the SQLite database file; on PostgreSQL the rows live in the server's files")
    path = Path(connection.settings_dict["NAME"])
    if not path.is_file():
        pytest.skip("the test database is in memory: there is no file to scan")
    settings.DEBUG = True  # Django logs every query with its parameters at DEBUG
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    out = io.StringIO()
    call_command("generate", "--preset", "tiny", stdout=out)
    # … and after an import: a grid's households go out as a workbook and come back in.
    from bihuan.register.models import Household, Unit
    from bihuan.register.workbook import export_workbook, import_workbook

    grid = Unit.objects.filter(level=6).order_by("path").first()
    commander = Staff.objects.get(unit__level=1, role="district_commander").user
    workbook = export_workbook(grid, acting_user=commander, full_reason="correct")
    Resident.objects.filter(household__unit=grid).delete()
    Household.objects.filter(unit=grid).delete()
    assert import_workbook(io.BytesIO(workbook), acting_user=commander).ok
    assert Household.objects.filter(unit=grid).exists()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists())

    clear = [r.reveal_id_number() for r in Resident.objects.all()]
    clear += [r.reveal_phone() for r in Resident.objects.exclude(phone_hash="")]
    clear += [s.reveal_phone() for s in Staff.objects.all()]
    assert len(clear) > 400 and all(clear)
    logs = caplog.text + out.getvalue() + capsys.readouterr().out
    assert "SELECT" in caplog.text  # the query log was captured
    leaked_file = [mask_id_number(v) for v in clear if v.encode() in data]
    leaked_logs = [mask_id_number(v) for v in clear if v in logs]
    assert not leaked_file and not leaked_logs
    # and the masked forms are there, so the scan looked at the right file
    assert Resident.objects.first().id_masked.encode() in data
