"""Registration at a checkpoint: validated, matched by hashes, pushed once, alerted at once, idempotent."""

import datetime as dt

import pytest

from bihuan.checkpoints.actions import do_register, do_submit_self_report, push_pending
from bihuan.checkpoints.models import ALERT, Registration, SelfReportStatus, Traveller
from bihuan.checkpoints.validation import CheckpointError, clean_id_number, clean_plate
from bihuan.core.errors import Refused
from bihuan.loops.models import Loop
from bihuan.pushes import importing, selectors
from bihuan.pushes.models import VERIFICATION, Evidence, PushedPerson
from bihuan.testing import make_id_number

from .conftest import person, today, token


@pytest.mark.parametrize("raw, plate", [("晋L12345", "晋L12345"), ("晋 l·123 45", "晋L12345"), ("京AD12345", "京AD12345"),
                                        ("沪A12345D", "沪A12345D"), ("粤BF1234A".replace("A", "9"), "粤BF12349"),
                                        ("晋L1234挂", "晋L1234挂")])
def test_chinese_plates_including_eight_character_new_energy_plates_are_accepted(raw, plate):
    assert clean_plate(raw) == plate


@pytest.mark.parametrize("raw, says", [("", "请填写车牌号"), ("AB12345", "省份简称"), ("晋112345", "发牌机关字母"),
                                       ("晋LO1234", "不使用字母 I 和 O"), ("晋L1234", "7 位"),
                                       ("晋LA123456", "新能源"), ("晋L123456", "新能源")])
def test_bad_plates_are_refused_with_a_message_that_says_what_is_wrong(raw, says):
    with pytest.raises(CheckpointError) as exc:
        clean_plate(raw)
    assert exc.value.field == "plate" and says in exc.value.message


def test_id_numbers_are_checksum_validated_and_fifteen_digits_become_eighteen():
    good = make_id_number(dt.date(1990, 1, 1))
    assert clean_id_number(good) == good
    assert len(clean_id_number("141002900101123")) == 18
    with pytest.raises(CheckpointError, match="校验位"):
        clean_id_number(good[:17] + ("1" if good[17] != "1" else "2"))
    with pytest.raises(CheckpointError, match="18 位"):
        clean_id_number("12345")


def car(d, people, plate="晋L12345", vehicle="car", user="community_a", **kw):
    """Register, then run the worker's ``checkpoints.push`` once (people who need verification are pushed)."""
    result = do_register(d.checkpoint, token=kw.pop("tok", token()), vehicle_type=vehicle, plate=plate,
                         people=people, acting_user=d.users[user], **kw)
    push_pending()
    return result


def test_a_car_with_a_driver_and_three_passengers_is_one_registration_of_four(ctx):
    d = ctx
    reg, created = car(d, [person("司机", dt.date(1980, 1, 1)), person("乘客一", dt.date(1981, 2, 2), destination=""),
                           person("乘客二", dt.date(1982, 3, 3), origin="", destination=""),
                           person("乘客三", dt.date(1983, 4, 4), origin="", test_hours="")] + [{}])
    assert created and reg.persons == 4
    seats = list(Traveller.objects.filter(registration=reg).values_list("seat", "origin", "destination"))
    assert seats[0][0] == "driver" and {s for s, _o, _d in seats[1:]} == {"passenger"}
    assert {o for _s, o, _d in seats} == {"上海市浦东新区"}  # blank origin and destination follow the driver
    assert reg.from_risk == 4 and reg.to_verify == 4
    assert PushedPerson.objects.count() == 4 and Evidence.objects.count() == 4
    assert Loop.objects.filter(kind=VERIFICATION).count() == 4


def test_a_repeated_submission_does_not_create_a_second_registration(ctx):
    d = ctx
    first, created = car(d, [person()], tok="same-form")
    again, created_again = car(d, [person()], tok="same-form")
    assert created and not created_again and first.pk == again.pk
    assert Registration.objects.count() == 1 and PushedPerson.objects.count() == 1


def test_a_returning_resident_from_no_risk_area_with_a_test_is_registered_only(ctx):
    d = ctx
    reg, _ = car(d, [person("王建国", id_number=d.resident_a.reveal_id_number(), origin="太原市")])
    t = reg.travellers.get()
    assert t.resident_id == d.resident_a.pk and t.reasons == "" and reg.to_verify == 0
    assert not PushedPerson.objects.exists()


def test_matching_uses_hashes_and_the_reasons_are_shown(ctx):
    d = ctx
    reg, _ = car(d, [person(test_hours="")], plate="京AD12345", vehicle="new_energy")
    t = reg.travellers.get()
    assert "高风险区 上海市浦东新区" in t.reasons and "无 48 小时内核酸阴性证明" in t.reasons
    assert t.id_hash and t.id_masked and not Traveller.objects.filter(name__contains="1988").exists()
    p = PushedPerson.objects.get()
    assert p.sources == "卡口" and p.unit_id == d.grid_a.pk  # routed to the destination's grid (the building)


def test_bad_input_is_refused_naming_the_person_and_field(ctx):
    d = ctx
    with pytest.raises(Refused) as exc:
        car(d, [person(), person("乘客", id_number="123")])
    assert exc.value.field == "people[1].id_number" and "18 位" in exc.value.message
    with pytest.raises(Refused) as exc:
        car(d, [person()], plate="晋L1234")
    assert exc.value.field == "plate"
    with pytest.raises(Refused) as exc:
        car(d, [person(temperature="50")])
    assert exc.value.field == "people[0].temperature"
    assert not Registration.objects.exists()


def test_a_bad_id_with_a_phone_is_registered_as_id_to_fix(ctx):
    d = ctx
    reg, _ = car(d, [person(id_number="141002198808081", phone="13900007777")])
    t = reg.travellers.get()
    assert t.id_problem and t.phone_hash and PushedPerson.objects.get().id_problem


def test_a_red_code_or_fever_alerts_the_checkpoint_unit_and_the_destination_community_at_once(ctx):
    d = ctx
    from bihuan.notify.models import Message

    reg, _ = car(d, [person("李红", dt.date(1990, 5, 5), health_code="red", origin="太原市"),
                     person("赵热", dt.date(1991, 6, 6), temperature="38.2", origin="太原市", destination="东羊村一组12号",
                            destination_unit=d.village_b.pk)])
    loops = Loop.objects.filter(kind=ALERT)
    owners = {(lp.subject_id, lp.owner_unit_id) for lp in loops}
    red, fever = reg.travellers.order_by("id")
    assert (red.pk, d.checkpoint.unit_id) in owners and (fever.pk, d.village_b.pk) in owners
    assert (fever.pk, d.checkpoint.unit_id) in owners and reg.abnormal == 2
    assert Message.objects.filter(subject__startswith="卡口异常").exists()


def test_an_outsider_cannot_register_at_another_units_checkpoint(ctx):
    from django.http import Http404

    with pytest.raises(Http404):
        car(ctx, [person()], user="village_b")


def test_the_same_person_at_a_checkpoint_self_reported_and_pushed_the_same_day_is_verified_once_with_three_pieces_of_evidence(ctx):
    d = ctx
    id_number = make_id_number(dt.date(1979, 9, 9))
    text = ("姓名,身份证号,手机号,来源地,抵达时间,现住址\n"
            f"孙立,{id_number},13900008888,上海市浦东新区,{today():%Y-%m-%d},锦悦小区3号楼2单元401\n")
    importing.create_batch(text.encode("gbk"), "推送.csv", source="省大数据中心", unit=d.office,
                           acting_user=d.users["office"])
    report = do_submit_self_report({"name": "孙立", "id_number": id_number, "phone": "13900008888",
                                    "origin": "上海市浦东新区", "transport": "train",
                                    "arrival_date": today().isoformat(), "destination": "锦悦小区3号楼2单元401"})
    reg, _ = car(d, [{"report": report.code, "temperature": "36.4", "health_code": "green", "test_hours": ""}])

    person_ = PushedPerson.objects.get()
    assert Loop.objects.filter(kind=VERIFICATION, subject_id=person_.pk).count() == 1
    evidence = selectors.evidence_of(person_)
    assert [e["source"] for e in evidence] == ["省大数据中心", "报备", "卡口"]
    assert set(person_.sources.split("|")) == {"省大数据中心", "报备", "卡口"}
    t = reg.travellers.get()
    assert t.self_report_id == report.pk and t.name == "孙立" and t.id_hash == report.id_hash
    report.refresh_from_db()
    assert report.status == SelfReportStatus.ARRIVED


def test_people_who_need_verification_are_pushed_by_the_worker_seconds_later_not_in_the_request(ctx):
    from bihuan.core.worker import run_tick

    d = ctx
    reg, _ = do_register(d.checkpoint, token="w1", vehicle_type="car", plate="晋L12345", people=[person()],
                         acting_user=d.users["community_a"])
    t = reg.travellers.get()
    assert t.push_state == "pending" and not PushedPerson.objects.exists()
    assert run_tick()["checkpoints.push"] == 1
    t.refresh_from_db()
    assert t.push_state == "done" and t.pushed_person_id == PushedPerson.objects.get().pk
    assert run_tick()["checkpoints.push"] == 0  # idempotent
