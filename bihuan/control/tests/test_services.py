"""24-hour service requests: by the person's link and by staff, assigned, done, confirmed (the loop closes);
reminders and escalation when late come from the loop engine's round."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import Http404

from bihuan.control import links
from bihuan.control.models import SERVICE, ControlCase, ServiceRequest
from bihuan.control.services import (
    MAX_OPEN_PER_CASE,
    ServiceError,
    do_assign_service,
    do_confirm_service,
    do_mark_service_done,
    do_request_service,
)
from bihuan.core.models import AuditEntry
from bihuan.core.worker import run_tick
from bihuan.loops import kinds
from bihuan.loops.models import Loop, LoopState
from bihuan.notify.models import InboxItem, Message
from bihuan.testing import freeze_clock

from .helpers import PERSON_PHONE, inbox_users, make_case, sms_phones


def close_to(a, b) -> bool:
    return abs(a - b) < timedelta(seconds=5)


def test_a_medicine_request_by_link_runs_from_request_to_the_persons_confirmation(care, sms_gateway):
    case = links.case_for_token(links.token_for(care.case.pk))
    request = do_request_service(case, "medicine", "  降压药\n硝苯地平 ")
    assert (request.text, request.requested_by, request.assigned_to) == ("降压药 硝苯地平", None, None)
    loop = request.loop
    assert (loop.kind, loop.subject_id, loop.owner_unit, loop.state) == (SERVICE, request.pk, care.d.grid_a,
                                                                         LoopState.ISSUED)
    assert close_to(loop.due_at, loop.created_at + timedelta(hours=2))
    assert close_to(loop.ack_due_at, loop.created_at + timedelta(minutes=30))
    run_tick()
    assert inbox_users() == {"grid_a", "volunteer_a", "doctor_a"}  # the grid's staff and the team's accounts
    InboxItem.objects.all().delete()

    do_assign_service(request, care.volunteer, acting_user=care.d.users["grid_a"])
    loop.refresh_from_db()
    assert loop.state == LoopState.ACKNOWLEDGED and loop.owner_user == care.volunteer
    run_tick()
    assert inbox_users() == {"volunteer_a"}

    request = do_mark_service_done(request, acting_user=care.volunteer, note="已送达")
    loop.refresh_from_db()
    assert request.done_at and loop.state == LoopState.REPORTED
    run_tick()
    assert PERSON_PHONE in sms_phones(sms_gateway)  # asked to confirm

    request = do_confirm_service(request, case=case)
    loop.refresh_from_db()
    assert request.confirmed_at and loop.state == LoopState.CLOSED
    assert list(loop.events.values_list("action", flat=True)) == ["issued", "acknowledged", "reported", "closed"]
    assert do_confirm_service(request, case=case).confirmed_at == request.confirmed_at  # a double tap
    actions = list(AuditEntry.objects.filter(action__startswith="control.service").order_by("id")
                   .values_list("action", flat=True))
    assert actions == ["control.service_request", "control.service_assign", "control.service_done",
                       "control.service_confirm"]


def test_staff_ask_for_groceries_and_the_person_confirms_before_anyone_marks_it_done(care):
    request = do_request_service(care.case, "groceries", "米、面、青菜", acting_user=care.d.users["grid_a"])
    assert request.requested_by == care.d.users["grid_a"]
    assert close_to(request.loop.due_at, request.loop.created_at + timedelta(hours=4))
    request = do_confirm_service(request, case=care.case)
    assert request.done_at and request.confirmed_at
    loop = Loop.objects.get(pk=request.loop_id)
    assert loop.state == LoopState.CLOSED
    assert list(loop.events.values_list("action", flat=True)) == ["issued", "reported", "closed"]


def test_staff_may_confirm_for_the_person_after_asking_them(care):
    request = do_request_service(care.case, "rubbish", acting_user=care.d.users["grid_a"])
    do_mark_service_done(request, acting_user=care.d.users["grid_a"])
    request = do_confirm_service(request, acting_user=care.d.users["community_a"])
    assert Loop.objects.get(pk=request.loop_id).state == LoopState.CLOSED
    assert AuditEntry.objects.get(action="control.service_confirm").changes["by"] == "staff"


def test_a_late_request_is_reminded_then_escalated_by_the_loop_engine(care, monkeypatch):
    request = do_request_service(care.case, "medical", "复诊")
    run_tick()
    InboxItem.objects.all().delete()
    loop = Loop.objects.get(pk=request.loop_id)
    now = loop.ack_due_at + timedelta(seconds=1)
    clock = freeze_clock(monkeypatch, now)
    run_tick()
    run_tick()
    assert inbox_users() == {"grid_a", "volunteer_a"}  # 催办 to the grid's staff
    assert all(m.subject.startswith("催办") for m in Message.objects.filter(inbox_item__isnull=False))
    for _ in range(kinds.get(SERVICE).reminder_limit):
        clock.advance(seconds=kinds.get(SERVICE).reminder_interval + 1)
        run_tick()
    run_tick()
    assert "property_a" in inbox_users()  # 督办: the compound above the grid is told
    loop.refresh_from_db()
    assert loop.escalated_at and loop.reminders_sent == kinds.get(SERVICE).reminder_limit


def test_a_link_cannot_confirm_another_cases_request(care):
    other = make_case(care.d.grid_a, resident=care.d.resident_a2)
    request = do_request_service(other, "groceries")
    with pytest.raises(Http404):
        do_confirm_service(request, case=care.case)
    with pytest.raises(ServiceError, match="^case:"):
        do_confirm_service(request)
    assert not ServiceRequest.objects.get(pk=request.pk).confirmed_at


def test_an_outsider_can_neither_ask_assign_nor_mark_done(care):
    outsider = care.d.users["township_b"]
    with pytest.raises(Http404):
        do_request_service(care.case, "groceries", acting_user=outsider)
    request = do_request_service(care.case, "groceries")
    with pytest.raises(Http404):
        do_assign_service(request, outsider, acting_user=outsider)
    with pytest.raises(ServiceError, match="^user:"):
        do_assign_service(request, outsider, acting_user=care.d.users["grid_a"])
    with pytest.raises(Http404):
        do_mark_service_done(request, acting_user=outsider)
    with pytest.raises(Http404):
        do_confirm_service(request, acting_user=outsider)
    request.refresh_from_db()
    assert not request.assigned_to and not request.done_at


def test_a_team_member_from_outside_the_area_may_be_assigned_and_reassignment_is_logged(care):
    request = do_request_service(care.case, "medicine", "布洛芬")
    do_assign_service(request, care.volunteer, acting_user=care.d.users["grid_a"])
    do_assign_service(request, care.doctor, acting_user=care.d.users["community_a"])
    loop = Loop.objects.get(pk=request.loop_id)
    assert loop.owner_user == care.doctor
    assert list(loop.events.values_list("action", flat=True)) == ["issued", "acknowledged", "assigned"]
    do_mark_service_done(request, acting_user=care.doctor)
    with pytest.raises(ServiceError, match="^request:"):
        do_assign_service(request, care.volunteer, acting_user=care.d.users["grid_a"])


def test_requests_are_validated(care):
    with pytest.raises(ServiceError, match="^kind:"):
        do_request_service(care.case, "taxi")
    with pytest.raises(ServiceError, match="^text:"):
        do_request_service(care.case, "other", "  ")
    for _ in range(MAX_OPEN_PER_CASE):
        do_request_service(care.case, "groceries")
    with pytest.raises(ServiceError, match="^case:"):
        do_request_service(care.case, "groceries")
    ControlCase.objects.filter(pk=care.case.pk).update(state="released")
    with pytest.raises(ServiceError, match="^case:"):
        do_request_service(care.case, "medicine")


def test_a_service_request_writes_the_grids_and_the_teams_messages_at_once(care):
    from bihuan.notify.models import Robot

    robot = Robot(unit=care.d.grid_a, kind="dingtalk", name="网格群")
    robot.set_webhook("https://oapi.dingtalk.com/robot/send?access_token=test")
    robot.save()
    request = do_request_service(care.case, "groceries", "大米", acting_user=None)
    inbox = Message.objects.filter(channel="inbox").select_related("user")
    assert {m.user.username for m in inbox} == {"grid_a", "volunteer_a", "doctor_a"}  # no worker round yet
    owners = Message.objects.filter(idempotency_key__startswith=f"open:{SERVICE}:")
    assert {m.user.username for m in owners if m.user} == {"grid_a", "volunteer_a"}  # the loop's unit
    assert [m.robot for m in owners if m.robot] == [robot]
    others = Message.objects.filter(idempotency_key__startswith=f"control.service:{request.pk}:")
    assert {m.user.username for m in others} == {"doctor_a"}  # the team member of another unit
    assert all("代购生活物资" in m.subject and "大米" in m.body for m in inbox)


def test_the_persons_page_and_the_service_row_read_the_assignee_from_the_loop(client, care):
    from django.urls import reverse

    request = do_request_service(care.case, "medicine", "降压药", acting_user=None)
    url = reverse("person", args=[links.token_for(care.case.pk)])
    assert "已收到，正在安排" in client.get(url).content.decode()
    do_assign_service(request, care.volunteer, acting_user=care.d.users["grid_a"])
    assert "正在办理" in client.get(url).content.decode()
    client.force_login(care.d.users["grid_a"])
    page = client.get(reverse("control:case", args=[care.case.pk])).content.decode()
    assert f"承办：{care.volunteer.staff.name}" in page
