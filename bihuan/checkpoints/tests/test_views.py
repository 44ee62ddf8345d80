"""The pages: registration on one page without script, the public self-report page (no login, throttled, a
honeypot, sealed data), the household screening at the door and by link, the ledger."""

import datetime as dt
import io
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from openpyxl import load_workbook

from bihuan.checkpoints import views
from bihuan.checkpoints.actions import do_start_campaign
from bihuan.checkpoints.models import Registration, ScreeningAnswer, SelfReport, Throttle
from bihuan.core import links
from bihuan.directives.models import Reach, ReachStatus
from bihuan.pushes.models import PushedPerson
from bihuan.testing import make_id_number

from .conftest import today


def form(d, **people):
    data = {"token": "t-1", "vehicle_type": "car", "plate": "晋L12345"}
    data.update(people)
    return data


def test_a_car_is_registered_from_the_one_page_form_and_the_result_says_who_goes_to_verification(ctx, client):
    d = ctx
    client.force_login(d.users["community_a"])
    url = reverse("checkpoints:register", args=[d.checkpoint.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="p4_name"' in page.content.decode()
    response = client.post(url, form(d, p0_name="司机", p0_id_number=make_id_number(dt.date(1980, 1, 1)),
                                     p0_origin="上海市浦东新区", p0_destination="锦悦小区", p0_temperature="36.6",
                                     p0_health_code="green", p0_test_hours="24",
                                     p1_name="乘客", p1_phone="13900001234", p1_health_code="green"))
    assert response.status_code == 302
    result = client.get(response["Location"]).content.decode()
    assert "已登记 2 人" in result and "转社区核查" in result and "高风险区" in result
    again = client.post(url, form(d, p0_name="司机", p0_id_number=make_id_number(dt.date(1980, 1, 1))))
    assert again.status_code == 302 and Registration.objects.count() == 1


def test_a_bad_plate_is_shown_with_the_form_kept(ctx, client):
    d = ctx
    client.force_login(d.users["community_a"])
    page = client.post(reverse("checkpoints:register", args=[d.checkpoint.pk]),
                       form(d, plate="晋L1234", p0_name="司机", p0_phone="13900001234")).content.decode()
    assert "车牌号应为 7 位" in page and 'value="司机"' in page


@pytest.mark.parametrize("user, status", [("community_a", 200), ("grid_a", 404), ("village_b", 404),
                                          ("township_b", 404), ("commander", 200)])
def test_an_outsider_cannot_open_or_read_another_units_checkpoint(ctx, client, user, status):
    client.force_login(ctx.users[user])
    assert client.get(reverse("checkpoints:register", args=[ctx.checkpoint.pk])).status_code == status
    assert client.get(reverse("checkpoints:registrations", args=[ctx.checkpoint.pk])).status_code == status


def report_data(**kw):
    return {"name": "孙立", "id_number": make_id_number(dt.date(1979, 9, 9)), "phone": "13900008888",
            "origin": "上海市浦东新区", "transport": "train", "arrival_date": today().isoformat(),
            "destination": "锦悦小区3号楼2单元401", "companions": "孙小立 儿子", **kw}


def test_the_public_self_report_needs_no_login_and_gives_a_receipt_code_and_qr(ctx, client):
    page = client.get(reverse("self_report"))
    assert page.status_code == 200 and 'name="website"' in page.content.decode()
    response = client.post(reverse("self_report"), report_data())
    assert response.status_code == 302
    receipt = client.get(response["Location"]).content.decode()
    report = SelfReport.objects.get()
    assert report.code in receipt and "<svg" in receipt and report.companions == [{"name": "孙小立", "relation": "儿子"}]
    assert PushedPerson.objects.get().sources == "报备"
    # update and cancel from the receipt
    client.post(response["Location"], {"origin": "上海市浦东新区", "transport": "car", "arrival_date": today().isoformat(),
                                       "destination": "锦悦小区3号楼2单元402"})
    report.refresh_from_db()
    assert report.transport == "car" and report.destination.endswith("402")
    client.post(response["Location"], {"cancel": "1"})
    report.refresh_from_db()
    assert report.status == "cancelled"
    bad = links.token_for(views.REPORT_PURPOSE, report.pk)[:-1] + "x"
    assert client.get(reverse("self_report_receipt", args=[bad])).status_code == 404


def test_the_self_report_validates_every_field(ctx, client):
    page = client.post(reverse("self_report"), report_data(id_number="141002197909091231"))
    assert page.status_code == 400 and "校验位" in page.content.decode() and not SelfReport.objects.exists()


def test_a_robot_filling_the_honeypot_is_told_thanks_and_nothing_is_stored(ctx, client):
    response = client.post(reverse("self_report"), report_data(website="http://spam"))
    assert response.status_code == 200 and not SelfReport.objects.exists()


def test_a_flood_is_answered_429_in_chinese_per_address_and_per_phone(ctx, client):
    for _i in range(views.PER_PHONE[0]):
        assert client.post(reverse("self_report"), report_data()).status_code == 302
    response = client.post(reverse("self_report"), report_data())
    assert response.status_code == 429 and "提交过于频繁" in response.content.decode()
    for i in range(views.PER_ADDRESS[0]):
        client.post(reverse("self_report"), report_data(phone=f"1390000{i:04d}", name=""))
    response = client.post(reverse("self_report"), report_data(phone="13700000000"))
    assert response.status_code == 429 and response["Retry-After"]
    assert SelfReport.objects.count() == views.PER_PHONE[0] and Throttle.objects.exists()
    other = client.post(reverse("self_report"), report_data(phone="13600000000"), REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 302


def test_an_oversized_self_report_is_refused(ctx, client):
    response = client.post(reverse("self_report"), report_data(companions="甲 " * 5000))
    assert response.status_code == 413


@pytest.mark.django_db(transaction=True)
def test_no_clear_id_number_or_phone_of_a_self_report_or_registration_reaches_the_database_file(client):
    from bihuan.checkpoints.actions import do_create_checkpoint, do_register
    from bihuan.testing import build_base_district

    if connection.vendor != "sqlite":
        pytest.skip("reads the SQLite database file; on PostgreSQL the rows live in the server's files")
    path = Path(connection.settings_dict["NAME"])
    if not path.is_file():
        pytest.skip("the test database is in memory: there is no file to scan")
    d = build_base_district()
    id_number, phone = make_id_number(dt.date(1966, 6, 6)), "13912345670"
    assert client.post(reverse("self_report"), report_data(id_number=id_number, phone=phone)).status_code == 302
    cp = do_create_checkpoint(unit=d.community_a, name="卡口", kind="other", acting_user=d.users["community_a"])
    other_id, other_phone = make_id_number(dt.date(1977, 7, 7)), "13698765432"
    do_register(cp, token="x", vehicle_type="car", plate="晋L12345", acting_user=d.users["community_a"],
                people=[{"name": "甲", "id_number": other_id, "phone": other_phone, "origin": "北京"}])
    from bihuan.checkpoints.actions import push_pending

    assert push_pending() == 1
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists())
    for clear in (id_number, phone, other_id, other_phone):
        assert clear.encode() not in data
    assert SelfReport.objects.get().id_masked.encode() in data


def test_a_screening_answer_at_the_door_rolls_up_pushes_the_arrival_and_proposes_the_member_change(ctx, client):
    d = ctx
    c = do_start_campaign(title="第一轮拉网式排查", since=today() - dt.timedelta(days=7), acting_user=d.users["commander"])
    client.force_login(d.users["grid_a"])
    url = reverse("checkpoints:screen", args=[c.pk, d.household_a.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"present": "3", "arrived_name_0": "王小军", "arrived_from_0": "上海市浦东新区",
                                 "arrived_phone_0": "13900002468", "member_change": "儿子王小军从上海回来住"})
    assert response.status_code == 302
    answer = ScreeningAnswer.objects.get()
    assert answer.via == "door" and answer.arrived[0]["name"] == "王小军" and "13900002468" not in str(answer.arrived)
    assert Reach.objects.get(directive=c.directive, household=d.household_a).status == ReachStatus.REACHED
    person = PushedPerson.objects.get(name="王小军")
    assert person.sources == "排查" and person.unit_id == d.grid_a.pk
    page = client.get(reverse("checkpoints:campaign", args=[c.pk])).content.decode()
    assert "已排查 1 / 1 户" in page
    client.force_login(d.users["community_a"])
    page = client.get(reverse("checkpoints:campaign", args=[c.pk])).content.decode()
    assert "儿子王小军从上海回来住" in page
    d.household_a.refresh_from_db()
    before = d.household_a.member_count
    from bihuan.checkpoints.models import RegisterChange

    change = RegisterChange.objects.get()
    client.post(reverse("checkpoints:decide_change", args=[change.pk]), {"confirm": "1"})
    d.household_a.refresh_from_db()
    assert d.household_a.member_count == 3 != before
    xlsx = client.get(reverse("checkpoints:campaign_xlsx", args=[c.pk]))
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    assert ws.cell(2, 6).value == "户址" and ws.cell(3, 6).value == d.household_a.address
    assert ws.cell(3, 10).value == "王小军（上海市浦东新区）" and ws.cell(3, 15).value == "网格员上门"


def test_the_resident_answers_through_the_household_link_without_login(ctx, client):
    d = ctx
    c = do_start_campaign(title="排查", since=today(), acting_user=d.users["commander"])
    reach = Reach.objects.get(directive=c.directive, household=d.household_b)
    url = views.screen_path(reach.pk)
    assert client.get(url).status_code == 200
    assert client.post(url, {"present": "1"}).status_code == 200
    assert ScreeningAnswer.objects.get().via == "link"
    assert client.get(url[:-3] + "xx/").status_code == 404
