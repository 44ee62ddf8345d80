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
