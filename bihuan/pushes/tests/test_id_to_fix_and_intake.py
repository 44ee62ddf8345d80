"""No one is dropped for a bad ID ("ID to fix"), and people found by other sources join the same pipeline
(``intake.push_findings``) with one piece of evidence each."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from bihuan.core import crypto
from bihuan.core.errors import Refused
from bihuan.core.models import AuditEntry
from bihuan.loops.models import Loop
from bihuan.pushes import importing, intake, selectors
from bihuan.pushes.actions import do_fix_id_number
from bihuan.pushes.models import VERIFICATION, Evidence, PushedPerson, RowResult
from bihuan.pushes.normalize import ID_TO_FIX, normalize_row
from bihuan.testing import make_id_number


def upload(d, rows, name="推送.csv"):
    text = "姓名,身份证号,手机号,来源地,抵达时间,现住址\n" + "\n".join(rows) + "\n"
    return importing.create_batch(text.encode("gbk"), name, source="省大数据中心", unit=d.office,
                                  acting_user=d.users["office"])


def test_a_row_with_a_mangled_id_but_a_phone_enters_as_id_to_fix_and_is_listed_by_name_and_masked_phone(
        district, client):
    d = district
    batch = upload(d, ["王强,1.41002E+17,13900004444,上海市浦东新区,2022-07-01,锦悦小区3号楼",
                       "王强,,13900004444,上海市浦东新区,2022-07-01,锦悦小区3号楼",  # the same person by phone
                       "无名,123,,北京市,2022-07-01,"])  # no phone, no address: still rejected
    assert (batch.imported, batch.merged, batch.rejected) == (1, 1, 1)
    person = PushedPerson.objects.get(name="王强")
    assert person.id_problem and not person.id_hash and person.phone_hash
    assert Loop.objects.filter(kind=VERIFICATION, subject_id=person.pk).count() == 1  # verified by phone
    rows = selectors.id_to_fix_rows(batch)
    assert [(r["row_number"], r["name"], r["phone"]) for r in rows] == [(2, "王强", "139****4444"),
                                                                         (3, "王强", "139****4444")]
    client.force_login(d.users["office"])
    page = client.get(reverse("pushes:batch", args=[batch.pk])).content.decode()
    assert "王强" in page and "139****4444" in page and "13900004444" not in page
    person_page = client.get(reverse("pushes:person", args=[person.pk])).content.decode()
    assert 'data-testid="id-to-fix"' in person_page


def test_the_verifier_records_the_right_id_number_validated_and_audited(district):
    d = district
    upload(d, ["王强,1.41002E+17,13900004444,上海市浦东新区,2022-07-01,锦悦小区3号楼"])
    person = PushedPerson.objects.get(name="王强")
    with pytest.raises(Refused) as exc:
        do_fix_id_number(person, "141002199001011235", acting_user=d.users["office"])
    assert exc.value.field == "id_number" and "校验位" in exc.value.message
    right = make_id_number(dt.date(1990, 1, 1))
    do_fix_id_number(person, right, acting_user=d.users["office"])
    person.refresh_from_db()
    assert person.id_hash == crypto.lookup_hash("id", right) and person.id_problem == ""
    assert person.birth_date == dt.date(1990, 1, 1)
    entry = AuditEntry.objects.get(action="push.person.fix_id")
    assert right not in str(entry.changes) and person.id_masked in str(entry.changes)


def test_a_fifteen_digit_id_is_recorded_as_eighteen(district):
    d = district
    upload(d, ["王强,123,13900004444,上海市浦东新区,2022-07-01,"])
    person = PushedPerson.objects.get(name="王强")
    do_fix_id_number(person, "141002900101123", acting_user=d.users["office"])
    person.refresh_from_db()
    assert person.id_masked.startswith("141002") and len(person.id_masked) == 18


def test_a_broken_id_with_a_name_and_address_but_no_phone_is_not_dropped():
    row = normalize_row(2, {"name": "赵四", "id_number": "141002", "address": "鼓楼社区南街5号"},
                        today=dt.date(2022, 7, 1))
    assert row.rejected is None and row.id_problem and row.notes[0].startswith(ID_TO_FIX)


def finding(d, name, id_number, phone, ref_id, source_ref="checkpoints.traveller"):
    row = normalize_row(0, {"name": name, "id_number": id_number, "phone": phone, "origin": "上海市浦东新区",
                            "address": "锦悦小区3号楼2单元401"}, today=timezone.localdate())
    return intake.Finding(row=row, ref_type=source_ref, ref_id=ref_id, summary=f"{name} 经卡口", unit_id=d.grid_a.pk)


def test_findings_join_a_big_data_push_of_the_same_person_and_are_idempotent(district):
    d = district
    id_number = make_id_number(dt.date(1988, 8, 8))
    upload(d, [f"张伟,{id_number},13900005555,上海市浦东新区,2022-07-01,锦悦小区3号楼2单元401"])
    person = PushedPerson.objects.get(name="张伟")
    got = intake.push_findings([finding(d, "张伟", id_number, "", 1)], source=intake.CHECKPOINT, unit=d.grid_a,
                               acting_user=d.users["grid_a"])
    again = intake.push_findings([finding(d, "张伟", id_number, "", 1)], source=intake.CHECKPOINT,
                                 unit=d.grid_a, acting_user=d.users["grid_a"])
    assert got[0].pk == again[0].pk == person.pk
    assert PushedPerson.objects.count() == 1 and Evidence.objects.count() == 1
    assert Loop.objects.filter(kind=VERIFICATION, subject_id=person.pk).count() == 1
    person.refresh_from_db()
    assert person.sources == "省大数据中心|卡口"
    evidence = selectors.evidence_of(person)
    assert [e["source"] for e in evidence] == ["省大数据中心", "卡口"]


def test_a_new_finding_is_routed_and_verified_like_a_push(district):
    d = district
    id_number = make_id_number(dt.date(1977, 7, 7))
    [person] = intake.push_findings([finding(d, "李雷", id_number, "13900006666", 5)], source=intake.CHECKPOINT,
                                    unit=d.grid_a, acting_user=d.users["grid_a"])
    person.refresh_from_db()
    assert person.unit_id is not None and person.routed_at is not None
    assert Loop.objects.filter(kind=VERIFICATION, subject_id=person.pk).count() == 1
    assert person.first_batch.source == "卡口" and person.first_batch.rows_total == 1
    assert not person.first_batch.rows.exclude(result=RowResult.IMPORTED).exists()
