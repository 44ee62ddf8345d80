"""Going live, the whole way (issue: operable by a real district): a register imported with no staff, people
appointed by sheet and through the pages, a group robot configured on its page — then the commander issues
an urgent directive through the page and every responsible person hears of it at once on their channels:
inbox, email (a real SMTP server), SMS (a local gateway) and the community's WeCom robot (a local server that
checks the body). Then each level signs, relays, the grid workers reach their households, the grids report,
and the rollup equals a recount from the raw rows at every unit."""

from __future__ import annotations

from collections import Counter
from email.header import decode_header, make_header

import pytest
from django.urls import reverse

from bihuan.core.worker import run_tick
from bihuan.directives.models import RECEIPT, Directive, Reach, ReachStatus
from bihuan.directives.rollup import rollup
from bihuan.loops.models import Loop, LoopState
from bihuan.notify.models import Message, Robot
from bihuan.register.models import Household, Staff, Unit, subtree_q

from .helpers import go_live, login

SIGNED = {LoopState.ACKNOWLEDGED, LoopState.IN_PROGRESS, LoopState.REPORTED, LoopState.CLOSED}


def first_login(client, username: str, password: str) -> None:
    """Sign in with a first password and change it, as the page makes everyone do."""
    client.logout()
    login(client, username, password)
    new = f"{username}-Changed-2022"
    response = client.post(reverse("register:change_password"),
                           {"old_password": password, "new_password": new, "new_password2": new})
    assert response.status_code == 302, response.content.decode()


def recount(directive: Directive, unit: Unit) -> dict:
    reaches = Reach.objects.filter(subtree_q(unit.path), directive=directive)
    states = Counter(Loop.objects.filter(subtree_q(unit.path), kind=RECEIPT, subject_id=directive.pk)
                     .values_list("state", flat=True))
    return {"households": reaches.count(), "reached": reaches.filter(status=ReachStatus.REACHED).count(),
            "units": sum(states.values()), "signed": sum(n for s, n in states.items() if s in SIGNED)}


def assert_rollup_is_right_everywhere(directive: Directive) -> None:
    _, totals = rollup(directive, root=Unit.objects.get(level=1))
    for unit in Unit.objects.all():
        counts = totals[unit.id]
        assert {k: getattr(counts, k) for k in ("households", "reached", "units", "signed")} == recount(
            directive, unit), unit.name


@pytest.mark.django_db
def test_an_urgent_directive_reaches_every_appointed_person_on_their_channels_and_closes_the_loop(
        tmp_path, client, notify_env, smtp_server, endpoints):
    people = go_live(tmp_path, client)["passwords"]  # the community admin (shequ) is signed in

    # The community admin gives a grid person an email address and adds the community's WeCom group robot.
    zhou = Staff.objects.get(user__username="zhou")
    response = client.post(reverse("register:staff_edit", args=[zhou.pk]), {
        "name": zhou.name, "email": "zhou@gulou.example.cn", "role": zhou.role, "language": ""})
    assert response.status_code in (200, 302), response.content.decode()
    zhou.user.refresh_from_db()
    assert zhou.user.email == "zhou@gulou.example.cn"
    community = Unit.objects.get(code="141002010101")
    response = client.post(f"{reverse('notify:robots')}?unit={community.pk}", {
        "unit": community.pk, "kind": "wecom", "name": "鼓楼社区防控群",
        "webhook_url": endpoints.url("/wecom?key=robot-key"), "events": ["directive.issued", "directive.updated"]})
    assert response.status_code in (200, 302), response.content.decode()
    robot = Robot.objects.get(unit=community)
    assert "robot-key" not in robot.webhook_masked  # sealed: the key is not shown again

    # The commander signs in for the first time and issues an urgent directive through the page.
    first_login(client, "zhihui", people["zhihui"])
    title = "关于立即开展全员核酸检测的紧急通知"
    response = client.post(reverse("directives:new"), {
        "title": title, "body": "请各单位逐级签收、下达，逐户通知到位，并反馈检测人数。", "urgency": "extra_urgent",
        "sign_minutes": 30, "reach_hours": 24, "reminder_minutes": 30, "reminder_limit": 3,
        "feedback_form": "tested*|核酸检测人数|number"})
    assert response.status_code == 302, response.content.decode()
    directive = Directive.objects.get(title=title)
    for _ in range(5):  # the worker: fan-out, the receiving units' notices, delivery on every channel
        run_tick("going-live")

    receivers = Staff.objects.exclude(unit__level=1).select_related("user")
    assert receivers.count() == 5
    for person in receivers:  # inbox: every responsible person of every receiving unit, at once
        assert Message.objects.filter(user=person.user, channel="inbox", subject__contains=title).exists(), person
    emails = [m for m in smtp_server.messages if title in str(make_header(decode_header(m["message"]["Subject"])))]
    assert [m["to"] for m in emails] == [["zhou@gulou.example.cn"]]
    sms_phones = {r["json"]["phone"] for r in endpoints.to("/sms") if title in r["json"]["text"]}
    assert sms_phones == {"13900000002", "13900000003", "13900000004", "13700000009"}  # urgent: by SMS
    wecom = [r["json"]["markdown"]["content"] for r in endpoints.to("/wecom")]
    assert len(wecom) == 1 and title in wecom[0] and "#" in wecom[0]  # with the message's idempotency marker

    # Township and community sign and relay; the grid people reach their households and report.
    def sign_and_relay(username: str, password: str, code: str) -> None:
        first_login(client, username, password)
        loop = Loop.objects.get(kind=RECEIPT, subject_id=directive.pk, owner_unit__code=code)
        assert client.post(reverse("directives:sign", args=[loop.pk])).status_code in (200, 302)
        assert client.post(reverse("directives:relay", args=[loop.pk])).status_code in (200, 302)

    sign_and_relay("jiedao", people["jiedao"], "1410020101")
    client.logout()
    login(client, "shequ", "Gulou-community-22")
    loop = Loop.objects.get(kind=RECEIPT, subject_id=directive.pk, owner_unit=community)
    client.post(reverse("directives:sign", args=[loop.pk]))
    client.post(reverse("directives:relay", args=[loop.pk]))
    for username, code in (("lwg1", "1410020101010101"), ("zhou", "1410020101010102"), ("wu", "1410020101010201")):
        first_login(client, username, people[username])
        grid = Unit.objects.get(code=code)
        loop = Loop.objects.get(kind=RECEIPT, subject_id=directive.pk, owner_unit=grid)
        client.post(reverse("directives:sign", args=[loop.pk]))
        households = Household.objects.filter(unit=grid).values_list("pk", flat=True)
        if username == "lwg1":
            households = Staff.objects.get(user__username="lwg1").households.values_list("pk", flat=True)
        for household_id in households:
            response = client.post(f"{reverse('directives:mark_households', args=[directive.pk])}?unit={grid.pk}",
                                   {"household": household_id, "status": "reached", "method": "phone"})
            assert response.status_code == 200, response.content.decode()
        response = client.post(reverse("directives:report", args=[loop.pk]), {"a_tested": "5", "note": "已完成"})
        assert response.status_code in (200, 302), response.content.decode()
        assert Loop.objects.get(pk=loop.pk).state == LoopState.REPORTED

    states = dict(Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk).values_list("owner_unit__code", "state"))
    assert states["1410020101"] == states["141002010101"] == LoopState.IN_PROGRESS  # signed and relayed
    assert states["14100201"] == LoopState.ISSUED  # the office has no one yet: it shows as unsigned
    assert Reach.objects.filter(directive=directive, status=ReachStatus.REACHED).count() == Household.objects.count()
    assert_rollup_is_right_everywhere(directive)
    # The district sees the whole district reached; the three grids' figure counts each report once.
    _, totals = rollup(directive, root=Unit.objects.get(level=1))
    assert totals[Unit.objects.get(level=1).id].reached == 6
