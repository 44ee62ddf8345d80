"""The pages: registration on one page without script, the public self-report page (no login, throttled, a
honeypot, sealed data), the household screening at the door and by link, the ledger."""

import datetime as dt
import io
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from bihuan.checkpoints import views
from bihuan.checkpoints.actions import do_start_campaign
from bihuan.checkpoints.models import Campaign, Registration, ScreeningAnswer, SelfReport
from bihuan.core import links
from bihuan.core.models import RateCounter
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


def test_the_destination_is_suggested_from_units_and_the_registers_addresses_never_who_lives_there(ctx, client):
    from bihuan.register.models import Household

    home = Household.objects.exclude(address="").order_by("id").first()
    client.force_login(ctx.users["community_a"])
    url = reverse("checkpoints:destinations")
    found = client.get(url, {"q": home.address[-6:]}).json()["results"]
    assert {"id": home.unit_id, "name": home.address, "level": 7} in found
    assert all(set(r) == {"id", "name", "level"} for r in found)  # no names, no phones
    units = client.get(url, {"q": ctx.community_a.name}).json()["results"]
    assert units[0] == {"id": ctx.community_a.pk, "name": ctx.community_a.name, "level": ctx.community_a.level}


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
    assert SelfReport.objects.count() == views.PER_PHONE[0]
    # one mechanism: the counters are core.ratelimit's, keyed hashes only (no address or phone in clear)
    keys = list(RateCounter.objects.filter(key__startswith="report.").values_list("key", flat=True))
    assert {k.split(":")[0] for k in keys} == {"report.addr", "report.phone"}
    assert not any("13700000000" in k or "127.0.0.1" in k for k in keys)
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
                                 "arrived_phone_0": "13900002468", "member_change": "儿子王小军从上海回来住",
                                 "add_name_0": "王小军", "add_id_0": make_id_number(dt.date(2001, 6, 1), "M"),
                                 "add_relation_0": "child"})
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


def test_a_member_change_is_only_proposed_and_confirming_applies_it_through_the_register_with_audit(ctx, client):
    from bihuan.checkpoints.actions import do_answer_screening, do_decide_register_change
    from bihuan.checkpoints.models import RegisterChange
    from bihuan.core.models import AuditEntry
    from bihuan.register.models import Resident

    d = ctx
    c = do_start_campaign(title="排查", since=today(), acting_user=d.users["commander"])
    new_id = make_id_number(dt.date(1999, 2, 3), "F")
    do_answer_screening(c, d.household_a, {"present": "2", "add_name_0": "赵小梅", "add_id_0": new_id,
                                           "add_phone_0": "13700001111", "add_relation_0": "other",
                                           f"leave_{d.resident_a2.pk}": "moved_out"}, acting_user=d.users["grid_a"])
    change = RegisterChange.objects.get()
    assert "新住进 赵小梅" in change.text and "李秀英 已迁出" in change.text
    assert new_id not in str(change.adds) and "13700001111" not in str(change.adds)
    # proposed only: the register is untouched
    assert not Resident.objects.filter(name="赵小梅").exists()
    assert Resident.objects.get(pk=d.resident_a2.pk).status == "present"
    do_decide_register_change(change, confirm=True, acting_user=d.users["community_a"])
    added = Resident.objects.get(name="赵小梅")
    assert added.household_id == d.household_a.pk and added.reveal_id_number() == new_id
    assert added.reveal_phone() == "13700001111"
    assert Resident.objects.get(pk=d.resident_a2.pk).status == "moved_out"
    d.household_a.refresh_from_db()
    # the register's own rule: every registered member counts (the one who left is kept, marked 已迁出)
    assert d.household_a.member_count == Resident.objects.filter(household=d.household_a).count() == 3
    actions = list(AuditEntry.objects.filter(actor=d.users["community_a"]).values_list("action", flat=True))
    assert {"resident.create", "resident.update", "register.change.decide"} <= set(actions)
    # deciding again changes nothing
    do_decide_register_change(change, confirm=True, acting_user=d.users["community_a"])
    assert Resident.objects.filter(name="赵小梅").count() == 1


def test_a_rejected_member_change_writes_nothing_to_the_register(ctx):
    from bihuan.checkpoints.actions import do_answer_screening, do_decide_register_change
    from bihuan.checkpoints.models import RegisterChange
    from bihuan.register.models import Resident

    d = ctx
    c = do_start_campaign(title="排查", since=today(), acting_user=d.users["commander"])
    do_answer_screening(c, d.household_a, {"present": "1", f"leave_{d.resident_a.pk}": "away"},
                        acting_user=d.users["grid_a"])
    do_decide_register_change(RegisterChange.objects.get(), confirm=False, acting_user=d.users["community_a"])
    assert RegisterChange.objects.get().state == "rejected"
    assert Resident.objects.get(pk=d.resident_a.pk).status == "present"


def test_a_screening_refuses_a_member_of_another_household_and_a_new_member_without_an_id(ctx):
    from bihuan.checkpoints.actions import do_answer_screening
    from bihuan.core.errors import Refused

    d = ctx
    c = do_start_campaign(title="排查", since=today(), acting_user=d.users["commander"])
    with pytest.raises(Refused) as exc:
        do_answer_screening(c, d.household_b, {"present": "1", f"leave_{d.resident_a.pk}": "moved_out"})
    assert "不在本户" in exc.value.message
    with pytest.raises(Refused) as exc:
        do_answer_screening(c, d.household_a, {"present": "3", "add_name_0": "某人"}, acting_user=d.users["grid_a"])
    assert exc.value.field == "add_id_0"


def _recount(unit, now):
    """The checkpoint figures counted another way: the ORM and the loops' one definition of overdue."""
    from bihuan.checkpoints.models import ALERT
    from bihuan.directives.models import Reach
    from bihuan.loops.models import OPEN_STATES, Loop
    from bihuan.pushes.models import VERIFICATION

    loops = Loop.objects.filter(unit.subtree())
    late_people = loops.overdue(now).filter(kind=VERIFICATION).values("subject_id")
    late = [c.directive_id for c in Campaign.objects.select_related("directive")
            if c.directive.status == "issued" and c.directive.reach_due < now]
    return {"checkpoints.abnormal": loops.filter(kind=ALERT, state__in=OPEN_STATES).count(),
            "checkpoints.self_reports_overdue": SelfReport.objects.filter(pushed_person_id__in=late_people)
            .exclude(status="cancelled").count(),
            "checkpoints.screening_unreached": Reach.objects.filter(unit.subtree(), directive_id__in=late)
            .exclude(status="reached").count()}


def test_the_situation_board_shows_unhandled_alerts_late_self_reports_and_unreached_households(ctx):
    from bihuan.checkpoints.actions import (
        do_answer_screening,
        do_register,
        do_submit_self_report,
        push_pending,
    )
    from bihuan.checkpoints.today import checkpoint_figures
    from bihuan.register.models import Unit
    from bihuan.today.board import area_of, row_units

    from .conftest import person, token

    d = ctx
    do_register(d.checkpoint, token=token(), vehicle_type="car", plate="晋L12345", acting_user=d.users["community_a"],
                people=[person("发热者", dt.date(1970, 1, 1), temperature="38.2"),
                        person("红码者", dt.date(1971, 1, 1), health_code="red")])
    push_pending()
    do_submit_self_report({"name": "孙立", "id_number": make_id_number(dt.date(1979, 9, 9)), "phone": "13900008888",
                           "origin": "太原市", "transport": "car", "arrival_date": today().isoformat(),
                           "destination": "锦悦小区3号楼2单元401"})
    c = do_start_campaign(title="排查", since=today(), acting_user=d.users["commander"])
    do_answer_screening(c, d.household_a, {"present": "2"}, acting_user=d.users["grid_a"])
    later = timezone.now() + dt.timedelta(days=3)
    for unit in Unit.objects.filter(level__in=[1, 3, 4]):
        for now in (timezone.now(), later):
            figures = {f.key: f for f in checkpoint_figures(area_of(unit, row_units(unit), now))}
            assert {k: f.count for k, f in figures.items()} == _recount(unit, now), (unit.name, now)
            assert all(f.url.startswith("/") for f in figures.values())
            assert sum(figures["checkpoints.abnormal"].by_row.values()) == figures["checkpoints.abnormal"].count
    district = {f.key: f.count for f in checkpoint_figures(area_of(Unit.objects.get(level=1), [], later))}
    assert district["checkpoints.abnormal"] == 2 and district["checkpoints.screening_unreached"] > 0
    assert district["checkpoints.self_reports_overdue"] >= 1


def test_a_checkpoint_is_a_forces_post_and_its_page_shows_who_the_roster_has_on_duty_now(ctx, client):
    from bihuan.checkpoints.actions import do_create_checkpoint
    from bihuan.forces.actions import do_assign_shift, do_tap_duty
    from bihuan.forces.models import PostKind
    from bihuan.register.models import Staff

    d = ctx
    gate = do_create_checkpoint(unit=d.community_a, name="北门卡口", kind="compound_gate", opens="06:00",
                                closes="22:00", acting_user=d.users["community_a"])
    post = gate.post
    assert post.kind == PostKind.CHECKPOINT and post.unit_id == d.community_a.pk and post.name == "北门卡口"
    assert (post.start_hour, post.end_hour) == (6, 22)
    client.force_login(d.users["community_a"])
    url = reverse("checkpoints:register", args=[gate.pk])
    assert "当前没有排班" in client.get(url).content.decode()
    staff = Staff.objects.get(user=d.users["grid_a"])
    now = timezone.now()
    shift = do_assign_shift(post, starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=3),
                            staff=staff, acting_user=None)
    page = client.get(url).content.decode()
    assert f"{staff.name}（未到岗）" in page and reverse("forces:roster", args=[post.pk]) in page
    do_tap_duty(shift, on=True, acting_user=d.users["community_a"])
    assert f"{staff.name}（已到岗）" in client.get(url).content.decode()
