"""notify_units: who is told, on which channels, when (preferences, quiet hours, urgent work), which group
robots hear of it (event filters), and that a fan-out to thousands of units is a bounded number of queries."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bihuan.core.roles import Role
from bihuan.notify.actions import do_create_robot, do_set_preferences
from bihuan.notify.digest import loop_lines
from bihuan.notify.models import Channel, InboxItem, Message, State
from bihuan.notify.outbox import notify_units, notify_user
from bihuan.notify.tasks import deliver, marker
from bihuan.register.models import Staff, Unit, UnitKind

TZ = timezone.get_default_timezone()


def local(y, m, d, hh, mm=0):
    return timezone.make_aware(dt.datetime(y, m, d, hh, mm), TZ)


def channels_of(user):
    return sorted(Message.objects.filter(user=user).values_list("channel", flat=True))


def test_every_active_staff_member_of_each_unit_is_told_on_every_channel(district, notify_env):
    d = district
    grid_user = d.users["grid_a"]
    grid_user.email = "grid_a@yaodu.example.cn"
    grid_user.save()
    n = notify_units([d.grid_a.pk, d.village_b.pk], key="directive:1", subject="新指令", body="请签收",
                     event="directive.issued")
    assert n == 3 + 2  # grid A: inbox, email, SMS; village B (no email address): inbox, SMS
    assert {m.idempotency_key for m in Message.objects.filter(user=grid_user)} == {
        f"directive:1:u{grid_user.pk}:{c}" for c in ("inbox", "email", "sms")}
    assert channels_of(d.users["village_b"]) == ["inbox", "sms"]
    assert not Message.objects.filter(user=d.users["community_a"]).exists()  # not one of the units


def test_enqueuing_the_same_key_again_changes_nothing(district, notify_env):
    d = district
    first = notify_units([d.grid_a.pk], key="k", subject="s", body="b", event="directive.issued")
    again = notify_units([d.grid_a.pk], key="k", subject="changed", body="b", event="directive.issued")
    assert first == again == Message.objects.count() == 2
    assert set(Message.objects.values_list("subject", flat=True)) == {"s"}


def test_keys_are_the_ones_notify_user_would_make(district, notify_env):
    """A caller moving from a loop of notify_user(key=f"{k}:u{id}") to notify_units(key=k) sends nothing twice."""
    d = district
    user = d.users["grid_a"]
    notify_user(user, key=f"d:9:u{user.pk}", subject="s", body="b")
    assert notify_units([d.grid_a.pk], key="d:9", subject="s", body="b", event="directive.issued") == 2
    assert Message.objects.count() == 2


def test_an_inactive_account_is_told_nothing(district, notify_env):
    d = district
    user = d.users["grid_a"]
    user.is_active = False
    user.save()
    assert notify_units([d.grid_a.pk], key="k", subject="s", body="b", event="directive.issued") == 0
    assert notify_user(user, key="k2", subject="s", body="b") == []


def test_a_person_who_switched_email_and_sms_off_gets_the_inbox_only(district, notify_env):
    user = district.users["grid_a"]
    user.email = "grid_a@yaodu.example.cn"
    user.save()
    do_set_preferences(acting_user=user, email=False, sms=False)
    notify_units([district.grid_a.pk], key="k", subject="s", body="b", event="directive.issued")
    notify_user(user, key="r", subject="催办", body="b")
    assert channels_of(user) == ["inbox", "inbox"]


def test_urgent_work_goes_by_sms_even_to_a_person_who_switched_sms_off(district, notify_env):
    user = district.users["grid_a"]
    do_set_preferences(acting_user=user, email=True, sms=False)
    notify_units([district.grid_a.pk], key="k", subject="紧急指令", body="b", event="directive.issued", urgent=True)
    assert channels_of(user) == ["inbox", "sms"]


def test_without_a_gateway_urgent_work_cannot_go_by_sms(district, monkeypatch):
    monkeypatch.delenv("BIHUAN_SMS_URL", raising=False)
    notify_units([district.grid_a.pk], key="k", subject="s", body="b", event="directive.issued", urgent=True)
    assert channels_of(district.users["grid_a"]) == ["inbox"]


class TestQuietHours:
    """grid_a keeps quiet hours 22:00–07:00 local time; the clock is fixed."""

    @pytest.fixture
    def quiet_user(self, district):
        user = district.users["grid_a"]
        user.email = "grid_a@yaodu.example.cn"
        user.save()
        do_set_preferences(acting_user=user, email=True, sms=True, quiet_start=dt.time(22), quiet_end=dt.time(7))
        return user

    def test_email_and_sms_wait_until_the_quiet_hours_end_and_the_inbox_does_not(
            self, district, quiet_user, notify_env, endpoints, smtp_server, clock):
        clock.now = local(2026, 3, 14, 23, 30)
        notify_units([district.grid_a.pk], key="d:q", subject="新指令", body="请签收", event="directive.issued")
        waits = dict(Message.objects.filter(user=quiet_user).values_list("channel", "next_attempt_at"))
        assert waits[Channel.INBOX] == clock.now
        assert waits[Channel.EMAIL] == waits[Channel.SMS] == local(2026, 3, 15, 7)
        assert deliver("w1") == 1  # the inbox only
        assert InboxItem.objects.filter(user=quiet_user).count() == 1
        assert not smtp_server.messages and not endpoints.to("/sms")
        clock.now = local(2026, 3, 15, 6, 59)
        assert deliver("w1") == 0
        clock.now = local(2026, 3, 15, 7, 0)
        assert deliver("w1") == 2
        assert len(smtp_server.messages) == 1 and len(endpoints.to("/sms")) == 1
        assert set(Message.objects.values_list("state", flat=True)) == {State.SENT}

    def test_after_midnight_the_wait_ends_the_same_morning(self, district, quiet_user, notify_env, clock):
        clock.now = local(2026, 3, 15, 2, 10)
        notify_user(quiet_user, key="r", subject="催办", body="b")
        assert Message.objects.get(channel=Channel.SMS).next_attempt_at == local(2026, 3, 15, 7)

    def test_outside_quiet_hours_everything_goes_at_once(self, district, quiet_user, notify_env, clock):
        clock.now = local(2026, 3, 15, 7, 0)
        notify_user(quiet_user, key="r", subject="催办", body="b")
        assert set(Message.objects.values_list("next_attempt_at", flat=True)) == {clock.now}
        clock.now = local(2026, 3, 15, 21, 59)
        notify_user(quiet_user, key="r2", subject="催办", body="b")
        assert set(Message.objects.filter(idempotency_key__startswith="r2").values_list(
            "next_attempt_at", flat=True)) == {clock.now}

    def test_urgent_work_overrides_quiet_hours(self, district, quiet_user, notify_env, endpoints, clock):
        clock.now = local(2026, 3, 14, 23, 30)
        notify_units([district.grid_a.pk], key="d:u", subject="紧急", body="b", event="directive.issued",
                     urgent=True)
        assert set(Message.objects.values_list("next_attempt_at", flat=True)) == {clock.now}
        assert deliver("w1") == 3 and len(endpoints.to("/sms")) == 1

    def test_daytime_quiet_hours(self, district, notify_env, clock):
        user = district.users["grid_a"]
        do_set_preferences(acting_user=user, email=True, sms=True, quiet_start=dt.time(12), quiet_end=dt.time(14))
        clock.now = local(2026, 3, 15, 12, 30)
        notify_user(user, key="r", subject="s", body="b")
        assert Message.objects.get(channel=Channel.SMS).next_attempt_at == local(2026, 3, 15, 14)


class TestRobots:
    @pytest.fixture
    def filtered(self, district, endpoints):
        """Community A has two WeCom robots: one for directives only, one for every event."""
        d = district
        directives_only = do_create_robot(unit=d.community_a, kind="wecom", name="指令群", events=["directive"],
                                          webhook_url=endpoints.url("/wecom?key=robot-key"), acting_user=None)
        everything = do_create_robot(unit=d.community_a, kind="wecom", name="工作群",
                                     webhook_url=endpoints.url("/wecom?key=robot-key"), acting_user=None)
        return directives_only, everything

    def test_the_event_filter_decides_which_robots_hear_of_it(self, district, filtered):
        directives_only, everything = filtered
        unit = district.community_a.pk
        notify_units([unit], key="d:1", subject="新指令", body="b", event="directive.issued")
        notify_units([unit], key="p:1", subject="新推送", body="b", event="loop.opened:push.verification")
        robot_keys = set(Message.objects.filter(robot__isnull=False).values_list("robot_id", "idempotency_key"))
        assert robot_keys == {(directives_only.pk, f"d:1:robot:{directives_only.pk}"),
                              (everything.pk, f"d:1:robot:{everything.pk}"),
                              (everything.pk, f"p:1:robot:{everything.pk}")}

    def test_a_switched_off_robot_hears_nothing(self, district, filtered):
        for robot in filtered:
            robot.active = False
            robot.save()
        notify_units([district.community_a.pk], key="d:1", subject="s", body="b", event="directive.issued")
        assert not Message.objects.filter(robot__isnull=False).exists()

    def test_the_robot_gets_the_message_with_its_idempotency_marker(self, district, filtered, endpoints):
        directives_only, _everything = filtered
        notify_units([district.community_a.pk], key="d:2", subject="新指令：全员核酸", body="请今日签收",
                     event="directive.issued")
        deliver("w1")
        contents = [r["json"]["markdown"]["content"] for r in endpoints.to("/wecom")]
        expected = marker(f"d:2:robot:{directives_only.pk}")
        assert any(c.startswith("**新指令：全员核酸**\n请今日签收") and c.endswith(f">{expected}</font>")
                   for c in contents), contents

    def test_a_digest_carries_the_marker_of_every_message_in_it(self, district, filtered, endpoints):
        _directives_only, everything = filtered
        for n in range(5):
            notify_units([district.community_a.pk], key=f"p:{n}", subject=f"推送 {n}", body="核查",
                         event="loop.opened:push.verification")
        deliver("w1")
        [request] = endpoints.to("/wecom")
        content = request["json"]["markdown"]["content"]
        assert content.startswith("**共 5 条通知**")
        assert all(marker(f"p:{n}:robot:{everything.pk}") in content for n in range(5))

    def test_a_long_message_is_cut_but_keeps_its_marker(self, district, filtered, endpoints, monkeypatch):
        monkeypatch.setenv("BIHUAN_ROBOT_MAX_BYTES", "300")
        _directives_only, everything = filtered
        notify_units([district.community_a.pk], key="long", subject="长", body="很长的内容" * 200,
                     event="loop.opened:control.alert")
        deliver("w1")
        [request] = endpoints.to("/wecom")
        content = request["json"]["markdown"]["content"]
        assert len(content.encode()) <= 300 and marker(f"long:robot:{everything.pk}") in content


def test_a_fan_out_to_2000_units_is_a_bounded_number_of_queries(district, notify_env):
    """2,000 communities with one staff member each (every one with a phone, half with an email address and
    a tenth with preferences) and 100 robots: a few dozen statements, not one per person."""
    d = district
    parent = d.township_a
    units = Unit.objects.bulk_create(
        Unit(level=4, parent=parent, code=f"BULK{n:05d}", name=f"社区{n}", kind=UnitKind.COMMUNITY,
             path=f"{parent.path}{n + 100:04d}") for n in range(2000))
    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"bulk{n}", email=f"b{n}@yaodu.example.cn" if n % 2 else "")
                                     for n in range(2000))
    staff = []
    for n, (unit, user) in enumerate(zip(units, users, strict=True)):
        s = Staff(user=user, unit=unit, role=Role.COMMUNITY_STAFF, name=f"干部{n}")
        s.set_phone(f"137{n:08d}")
        staff.append(s)
    Staff.objects.bulk_create(staff)
    for user in users[::10]:
        do_set_preferences(acting_user=user, email=False, sms=True, quiet_start=dt.time(22), quiet_end=dt.time(7))
    for unit in units[:100]:
        do_create_robot(unit=unit, kind="wecom", name="群", webhook_url="https://qyapi.example.cn/send?key=k",
                        events=["directive"], acting_user=None)
    ids = [u.pk for u in units]
    with CaptureQueriesContext(connection) as ctx:
        count = notify_units(ids, key="directive:big", subject="新指令", body="请签收", event="directive.issued")
    emails = sum(1 for n in range(2000) if n % 2 and n % 10)
    assert count == 2000 * 2 + emails + 100
    assert Message.objects.count() == count
    assert len(ctx.captured_queries) <= 36, [q["sql"][:80] for q in ctx.captured_queries]
    assert Message.objects.filter(channel=Channel.SMS, user=users[7]).get().phone() == "13700000007"
    # A queryset of ids is one subquery: the same fan-out again is idempotent, and cheaper still.
    with CaptureQueriesContext(connection) as ctx:
        again = notify_units(Unit.objects.filter(pk__in=ids).values("pk"), key="directive:big", subject="新指令",
                             body="请签收", event="directive.issued")
    assert again == count and Message.objects.count() == count
    assert len(ctx.captured_queries) <= 36, [q["sql"][:80] for q in ctx.captured_queries]


def test_digest_lines_name_units_by_name_in_one_query(district, django_assert_num_queries):
    from types import SimpleNamespace

    d = district
    loops = [SimpleNamespace(title="全员核酸", owner_unit_id=d.grid_a.pk),
             SimpleNamespace(title="消杀", owner_unit_id=d.village_b.pk),
             SimpleNamespace(title="旧单位", owner_unit_id=999999)]
    with django_assert_num_queries(1):
        lines = loop_lines(loops)
    assert lines == ["- 全员核酸 · 锦悦小区第1网格", "- 消杀 · 东羊村", "- 旧单位 · 999999"]
    assert loop_lines(loops * 30, limit=50)[-1] == "… 另有 40 项"
    with django_assert_num_queries(0):
        assert loop_lines(loops[:1], names={d.grid_a.pk: "网格甲"}) == ["- 全员核酸 · 网格甲"]


