import datetime as dt

from django.core.management import call_command

from bihuan.core.models import AuditEntry
from bihuan.register.coverage import rollup
from bihuan.register.models import Resident
from bihuan.testing import create_resident


def test_purge_removes_personal_data_of_people_gone_long_ago_and_keeps_counts(district):
    gone = create_resident(district.household_a, "钱多多", status="moved_out")
    Resident.objects.filter(pk=gone.pk).update(updated_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    stayed = create_resident(district.household_a, "周到", status="moved_out")  # changed today: kept
    before = rollup()[1][district.district.id].as_dict()
    call_command("purge_personal", "--before", "2021-01-01")
    gone.refresh_from_db()
    assert gone.name == "" and gone.id_sealed in (b"", memoryview(b"")) and gone.phone_hash == ""
    assert gone.birth_date and gone.sex  # anonymous facts stay
    assert Resident.objects.get(pk=stayed.pk).name == "周到"
    assert rollup()[1][district.district.id].as_dict() == before
    assert AuditEntry.objects.filter(action="register.purge", changes__residents=1).exists()
    call_command("purge_personal", "--before", "2021-01-01")  # again: nothing left to do
    assert AuditEntry.objects.filter(action="register.purge", changes__residents=0).exists()


def test_every_app_registers_its_purge_and_the_command_runs_them(district, capsys):
    from bihuan.core.retention import PURGERS

    assert set(PURGERS) == {"residents moved out or deceased", "pushed people", "closed control cases",
                            "delivered or dead notifications"}
    call_command("purge_personal", "--days", "30")
    out = capsys.readouterr().out
    assert all(name in out for name in PURGERS)


def test_pushed_people_last_seen_before_the_cutoff_lose_their_personal_data(district):
    from bihuan.pushes.models import PushBatch, PushedPerson

    batch = PushBatch.objects.create(source="省大数据中心", file_name="a.xlsx", file_sha256="0" * 64, file_data=b"",
                                     unit=district.community_a)
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    person = PushedPerson(name="孙悟空", first_batch=batch, first_pushed_at=old, last_pushed_at=old,
                          unit=district.community_a, path=district.community_a.path)
    person.set_id_number(district.resident_a.reveal_id_number())
    person.set_phone("13900001111")
    person.save()
    call_command("purge_personal", "--before", "2021-01-01")
    person.refresh_from_db()
    assert person.name == "" and person.id_hash == "" and person.phone_masked == ""
    assert person.unit == district.community_a  # where they were handled still counts
