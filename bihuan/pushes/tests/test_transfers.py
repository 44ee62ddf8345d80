"""Transfers (转办 / 签收 / 退回): chains with their history, returns, ping-pongs flagged to the common parent,
reminders for unanswered transfers, and the one-owner invariant at every step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from bihuan.core.models import AuditEntry
from bihuan.core.roles import Role
from bihuan.loops.models import Loop, LoopState
from bihuan.loops.tasks import remind_due
from bihuan.notify.models import Message
from bihuan.pushes.actions import do_accept_transfer, do_return_transfer, do_save_verification, do_transfer
from bihuan.pushes.models import TRANSFER, Outcome, RouteMethod, Transfer, TransferState, Verification
from bihuan.pushes.transfers import TransferError, common_parent
from bihuan.register.models import UnitKind
from bihuan.testing import create_staff, create_unit

from .helpers import assert_one_owner, loop_of, routed


@pytest.fixture
def person(district):
    """A pushed person routed by address to community A."""
    [p] = routed(district, {"name": "李四", "address": "解放路街道鼓楼社区"})
    assert p.unit == district.community_a
    return p


@pytest.fixture
def village_c(district):
    """A third unit (branch B) with its own staff."""
    unit = create_unit(district.township_b, "西羊村", UnitKind.VILLAGE)
    district.users["village_c"] = create_staff(unit, "village_c", Role.COMMUNITY_STAFF).user
    return unit


def inbox(district, username, subject=""):
    return Message.objects.filter(user=district.users[username], channel="inbox", subject__startswith=subject)


def test_a_transfer_waits_for_the_receiver_who_signs_within_a_deadline(district, person):
    d = district
    t = do_transfer(person, d.village_b, "实际住在东羊村", acting_user=d.users["community_a"])
    assert (t.from_unit, t.to_unit, t.state, t.ping_pong) == (d.community_a, d.village_b, "pending", False)
    loop = Loop.objects.get(kind=TRANSFER, subject_id=t.pk)
    assert t.loop == loop and loop.owner_unit == d.village_b and loop.originator_unit == d.community_a
    assert timedelta(hours=1, minutes=59) < loop.ack_due_at - timezone.now() <= timedelta(hours=2)
    assert inbox(d, "village_b", "转办待接收").count() == 1
    person.refresh_from_db()
    assert person.unit == d.community_a  # still the sender's until the receiver accepts
    assert_one_owner(person)
    with pytest.raises(TransferError, match="^person:"):
        do_transfer(person, d.village_b, "再转一次", acting_user=d.users["community_a"])
    with pytest.raises(TransferError, match="^reason:"):
        do_transfer(person, d.village_b, " ", acting_user=d.users["community_a"])


def test_the_chain_a_b_c_keeps_its_full_history(district, person, village_c):
    d = district
    first_due = loop_of(person).due_at
    t1 = do_transfer(person, d.village_b, "住东羊村", acting_user=d.users["community_a"])
    do_accept_transfer(t1, acting_user=d.users["village_b"])
    person.refresh_from_db()
    assert person.unit == d.village_b and person.route_method == RouteMethod.TRANSFER
    assert person.route_reason.startswith("转办：鼓楼社区 → 东羊村")
    assert_one_owner(person)
    loop = loop_of(person)
    assert loop.owner_unit == d.village_b and loop.due_at > first_due - timedelta(seconds=1)
    t2 = do_transfer(person, village_c, "又搬去西羊村", acting_user=d.users["village_b"])
    do_accept_transfer(t2, acting_user=d.users["village_c"])
    assert_one_owner(person)
    person.refresh_from_db()
    assert person.unit == village_c
    chain = list(Transfer.objects.filter(person=person).with_status()
                 .values_list("from_unit__name", "to_unit__name", "status"))
    assert chain == [("鼓楼社区", "东羊村", "accepted"), ("东羊村", "西羊村", "accepted")]
    actions = list(loop_of(person).events.values_list("action", flat=True))
    assert actions == ["issued", "transferred", "reassigned", "transferred", "reassigned"]
    for t in (t1, t2):
        assert list(Loop.objects.get(pk=t.loop_id).events.values_list("action", flat=True)) == [
            "issued", "acknowledged", "reported", "closed"]
    assert AuditEntry.objects.filter(action="push.transfer.accept").count() == 2
    # The first sender sees the person no more; the new owner does.
    with pytest.raises(Http404):
        do_save_verification(Verification.objects.get(person=person), {"origin": "x"},
                             acting_user=d.users["community_a"])


def test_an_outcome_elsewhere_is_reported_then_the_receiver_verifies_afresh(district, person):
    d = district
    ver = Verification.objects.get(person=person)
    do_save_verification(ver, {"outcome": Outcome.ELSEWHERE_IN_DISTRICT, "target_unit": d.village_b.pk,
                               "transfer_reason": "住东羊村"}, acting_user=d.users["community_a"])
    assert loop_of(person).state == LoopState.REPORTED
    t = Transfer.objects.get(person=person)
    do_accept_transfer(t, acting_user=d.users["village_b"])
    ver.refresh_from_db()
    loop = loop_of(person)
    assert ver.outcome == Outcome.VERIFYING and ver.verified_at is None and ver.outcome_detail["from_transfer"] == t.pk
    assert loop.state == LoopState.IN_PROGRESS and loop.owner_unit == d.village_b
    assert loop.next_reminder_at == loop.due_at and loop.due_at > timezone.now() + timedelta(hours=23)
    assert do_accept_transfer(t, acting_user=d.users["village_b"]).state == TransferState.ACCEPTED  # double tap
    with pytest.raises(TransferError, match="^transfer:"):
        do_return_transfer(t, "晚了", acting_user=d.users["village_b"])
    assert_one_owner(person)


def test_a_return_gives_the_person_back_with_the_reason(district, person):
    d = district
    ver = Verification.objects.get(person=person)
    do_save_verification(ver, {"outcome": Outcome.ELSEWHERE_IN_DISTRICT, "target_unit": d.village_b.pk},
                         acting_user=d.users["community_a"])
    t = Transfer.objects.get(person=person)
    with pytest.raises(TransferError, match="^return_reason:"):
        do_return_transfer(t, "", acting_user=d.users["village_b"])
    do_return_transfer(t, "查无此人，不在本村", acting_user=d.users["village_b"])
    t.refresh_from_db()
    ver.refresh_from_db()
    person.refresh_from_db()
    assert t.state == TransferState.RETURNED and t.return_reason == "查无此人，不在本村"
    assert t.answered_by == d.users["village_b"]
    assert Loop.objects.get(pk=t.loop_id).state == LoopState.RETURNED
    assert person.unit == d.community_a
    assert ver.outcome == Outcome.VERIFYING and ver.outcome_detail["return_reason"] == "查无此人，不在本村"
    loop = loop_of(person)
    assert loop.state == LoopState.IN_PROGRESS and loop.next_reminder_at == loop.due_at
    assert "transfer_returned" in list(loop.events.values_list("action", flat=True))
    assert inbox(d, "community_a", "转办被退回").count() == 1
    assert_one_owner(person)


def test_only_the_receiving_side_answers(district, person):
    d = district
    t = do_transfer(person, d.village_b, "住东羊村", acting_user=d.users["community_a"])
    for username in ("community_a", "township_a", "grid_a"):
        with pytest.raises(Http404):
            do_accept_transfer(t, acting_user=d.users[username])
    do_accept_transfer(t, acting_user=d.users["township_b"])  # the unit above may sign for it
    assert_one_owner(person)


def test_a_ping_pong_is_flagged_and_the_common_parent_told(district, person):
    d = district
    t1 = do_transfer(person, d.village_b, "住东羊村", acting_user=d.users["community_a"])
    do_accept_transfer(t1, acting_user=d.users["village_b"])
    t2 = do_transfer(person, d.community_a, "不是我村的，还给鼓楼", acting_user=d.users["village_b"])
    assert not t1.ping_pong and t2.ping_pong
    assert common_parent(d.community_a, d.village_b) == d.office
    assert inbox(d, "office", "转办来回推诿").count() == 1
    assert inbox(d, "township_a", "转办来回推诿").count() == 0
    assert AuditEntry.objects.get(action="push.transfer", target_id=str(t2.pk)).changes["parent"] == d.office.pk
    assert_one_owner(person)


def test_a_ping_pong_inside_a_township_goes_to_the_township(district, person):
    d = district
    c2 = create_unit(d.township_a, "鼓楼南社区", UnitKind.COMMUNITY)
    d.users["c2"] = create_staff(c2, "c2", Role.COMMUNITY_STAFF).user
    t1 = do_transfer(person, c2, "住鼓楼南", acting_user=d.users["community_a"])
    do_return_transfer(t1, "不在本社区", acting_user=d.users["c2"])
    t2 = do_transfer(person, c2, "再次确认住鼓楼南", acting_user=d.users["community_a"])  # sent again after 退回
    assert t2.ping_pong and common_parent(d.community_a, c2) == d.township_a
    assert inbox(d, "township_a", "转办来回推诿").count() == 1 and inbox(d, "office", "转办来回推诿").count() == 0


def test_an_unanswered_transfer_is_reminded_then_escalated_and_never_lost(district, person):
    d = district
    t = do_transfer(person, d.village_b, "住东羊村", acting_user=d.users["community_a"])
    past = timezone.now() - timedelta(minutes=1)
    Loop.objects.filter(pk=t.loop_id).update(ack_due_at=past, due_at=past, next_reminder_at=past, reminder_limit=1)
    assert Loop.objects.get(pk=t.loop_id).is_overdue()
    # The person's own verification loop is not yet due: only the transfer is chased.
    assert remind_due("w1") == 1 and inbox(d, "village_b", "催办").count() == 1
    Loop.objects.filter(pk=t.loop_id).update(next_reminder_at=past)
    assert remind_due("w1") == 1 and inbox(d, "township_b", "督办").count() == 1
    person.refresh_from_db()
    assert person.unit == d.community_a and Transfer.objects.get(pk=t.pk).state == TransferState.PENDING
    assert_one_owner(person)


def test_transfers_refuse_desks_and_the_current_unit(district, person):
    d = district
    for unit in (d.office, d.department, d.district, d.community_a):
        with pytest.raises(TransferError, match="^to_unit:"):
            do_transfer(person, unit, "试试", acting_user=d.users["community_a"])
    with pytest.raises(Http404):
        do_transfer(person, d.village_b, "越权", acting_user=d.users["village_b"])


# --- end to end: a pushed list imported, routed, verified, transferred; the daily report recounted -------------

def _recount(unit, day_people, transfers, verifications) -> dict:
    """The daily report's figures for ``unit`` counted straight from the rows."""
    def inside(path: str) -> bool:
        return path.startswith(unit.path)

    return {
        "pushed": sum(1 for p in day_people if inside(p.path)),
        "verified": sum(1 for v in verifications if v.verified_at and inside(v.person.path)),
        "transferred_out": sum(1 for t in transfers if inside(t.from_unit.path)),
        "transferred_in": sum(1 for t in transfers if inside(t.to_unit.path)),
        "accepted": sum(1 for t in transfers if t.state == TransferState.ACCEPTED and inside(t.to_unit.path)),
        "returned": sum(1 for t in transfers if t.state == TransferState.RETURNED and inside(t.to_unit.path)),
        "ping_pong": sum(1 for t in transfers if t.ping_pong and inside(t.from_unit.path)),
    }


def test_end_to_end_pushed_list_routed_verified_transferred_and_reported(district):
    from bihuan.pushes.actions import do_dispatch
    from bihuan.pushes.importing import create_batch
    from bihuan.pushes.models import Measure, PushedPerson
    from bihuan.pushes.report import collect
    from bihuan.register.models import Unit

    d = district
    c2 = create_unit(d.township_a, "鼓楼南社区", UnitKind.COMMUNITY)
    d.users["c2"] = create_staff(c2, "c2", Role.COMMUNITY_STAFF).user
    rows = [
        ("王建国", d.resident_a.reveal_id_number(), "13812345678", "上海市浦东新区", "2022/6/20", "", "", ""),
        ("张伟", "", "13900000001", "北京市朝阳区", "2022年6月20日", "山西省临汾市尧都区鼓楼社区锦悦小区5号楼", "", ""),
        ("刘洋", "", "13900000002", "西安市", "6月20日", "屯里镇东羊村", "", ""),
        ("陈静", "", "13900000003", "太原市", "2022-06-20", "某某路88号", "", ""),
        ("赵强", "", "13900000004", "天津市", "2022-06-20", "尧都区鼓楼社区", "解放路街道", "鼓楼社区"),
        ("孙丽", "", "13900000005", "天津市", "2022-06-20", "尧都区鼓楼社区", "", ""),
        ("周杰", "", "13900000006", "天津市", "2022-06-20", "东羊村", "屯里镇", "东羊村"),
    ]
    header = "姓名,身份证号,手机号,来源地,抵达时间,现住址,所属乡镇（街道）,所属社区（村）"
    data = ("\ufeff" + "\n".join([header] + [",".join(r) for r in rows]) + "\n").encode("utf-8")
    batch = create_batch(data, "推送名单.csv", source="省大数据中心", unit=d.office, acting_user=d.users["office"])
    assert batch.imported == 7, batch.error
    people = {p.name: p for p in PushedPerson.objects.select_related("unit")}
    assert {n: (p.unit.name, p.route_method) for n, p in people.items()} == {
        "王建国": ("锦悦小区第1网格", "resident"), "张伟": ("鼓楼社区", "address"), "刘洋": ("东羊村", "address"),
        "陈静": ("区疫情防控指挥部办公室", "manual"), "赵强": ("鼓楼社区", "address"), "孙丽": ("鼓楼社区", "address"),
        "周杰": ("东羊村", "address")}

    def ver(name):
        return Verification.objects.get(person=people[name])

    do_dispatch(people["陈静"], d.community_a, acting_user=d.users["office"])
    do_save_verification(ver("王建国"), {"outcome": Outcome.NO_CONTROL_NEEDED, "basis": "低风险"},
                         acting_user=d.users["grid_a"])
    do_save_verification(ver("张伟"), {"outcome": Outcome.NEW_CONTROL, "measure": Measure.HOME_MONITORING,
                                       "override_reason": "按街道要求"}, acting_user=d.users["community_a"])
    do_save_verification(ver("刘洋"), {"outcome": Outcome.OUTSIDE_DISTRICT, "destination_city": "运城市"},
                         acting_user=d.users["village_b"])
    t_zhao = do_transfer(people["赵强"], d.village_b, "住东羊村", acting_user=d.users["community_a"])
    do_accept_transfer(t_zhao, acting_user=d.users["village_b"])
    t_sun = do_transfer(people["孙丽"], c2, "住鼓楼南", acting_user=d.users["community_a"])
    do_return_transfer(t_sun, "不在本社区", acting_user=d.users["c2"])
    t_zhou = do_transfer(people["周杰"], d.community_a, "住鼓楼", acting_user=d.users["village_b"])
    do_accept_transfer(t_zhou, acting_user=d.users["community_a"])
    t_back = do_transfer(people["周杰"], d.village_b, "不是鼓楼的", acting_user=d.users["community_a"])
    assert t_back.ping_pong and not any(t.ping_pong for t in (t_zhao, t_sun, t_zhou))
    assert inbox(d, "office", "转办来回推诿").count() == 1
    for p in people.values():
        assert_one_owner(p)

    day = timezone.localdate()
    units, own, totals = collect(d.district, day)
    day_people = list(PushedPerson.objects.all())
    transfers = list(Transfer.objects.select_related("from_unit", "to_unit"))
    verifications = list(Verification.objects.select_related("person"))
    assert len(units) == Unit.objects.count()
    for u in Unit.objects.all():
        got = totals[u.id]
        expected = _recount(u, day_people, transfers, verifications)
        assert {k: getattr(got, k) for k in expected} == expected, u.name
    district_total = totals[d.district.id]
    assert district_total.outcomes[Outcome.NEW_CONTROL] == 1 and district_total.measures[Measure.HOME_MONITORING] == 1
    assert district_total.routed["transfer"] == 2 and district_total.unrouted == 0


def test_a_transfers_status_is_read_from_its_loop_and_nowhere_else(district, person):
    from bihuan.loops import engine

    d = district
    assert "state" not in {f.name for f in Transfer._meta.get_fields()}  # no copy to drift
    t = do_transfer(person, d.village_b, "住东羊村", acting_user=d.users["community_a"])
    assert Transfer.objects.get(pk=t.pk).state == TransferState.PENDING
    assert list(Transfer.objects.pending().values_list("pk", flat=True)) == [t.pk]
    # Whatever moves the loop moves the transfer's status: here the engine cancels it directly.
    engine.transition(Loop.objects.get(pk=t.loop_id), LoopState.CANCELLED, actor=d.users["office"], note="撤销")
    t = Transfer.objects.select_related("loop").get(pk=t.pk)
    assert t.state == TransferState.RETURNED and t.get_state_display() == "已退回"
    assert not Transfer.objects.pending().exists()
    assert Transfer.objects.with_status().get(pk=t.pk).status == TransferState.RETURNED


def test_the_receiving_unit_is_told_once_through_the_loop_engine(district, person):
    d = district
    t = do_transfer(person, d.village_b, "住东羊村", acting_user=d.users["community_a"])
    [message] = inbox(d, "village_b", "转办待接收")
    assert message.idempotency_key.startswith(f"open:{TRANSFER}:") and "住东羊村" in message.body
    assert Loop.objects.get(pk=t.loop_id).events.filter(action="issued").count() == 1
