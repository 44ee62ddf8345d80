"""A day in progress, as of now (``bihuan generate`` builds it beside the register).

Every row here is written by the application's own actions and by the loop engine, run under a simulated clock
that walks from about two days ago up to the present minute: yesterday's pushed list (verified, a few late), a
directive issued yesterday and closed this morning, today's pushed list with verification under way, a transfer
bounced between two communities (来回推诿), people under each kind of control with their check-ins (one abnormal,
one missed), door-to-door test schedules, service requests open and closed, a directive half reached with
units past their deadlines and reminders sent, one just issued, a few real blind spots, and the inbox messages
all of this sent. Nothing is written after "now", so the worker that runs beside the demo simply goes on.

Deterministic with the seed: who is pushed, who answers and what they say follow from ``random.Random``; only
the times move with the real clock. Set-based where it is large: households are marked per community in one
UPDATE each, lists are imported as one workbook each, and the sizes are capped so the ``yaodu`` preset adds a
day in a few minutes.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager

from django.utils import timezone

from bihuan.register.models import MAX_LEVEL, SEGMENT, Household, HouseholdKind, Staff, Unit

DAY_ACTOR = "demo-day"
HOTEL = "尧都区集中隔离点（平阳宾馆）"
ORIGINS = ["上海市浦东新区", "上海市闵行区", "吉林省长春市", "吉林省吉林市", "北京市朝阳区", "天津市西青区",
           "广东省深圳市", "陕西省西安市", "山东省青岛市", "河北省廊坊市", "太原市小店区", "运城市盐湖区"]


@contextmanager
def clock_at(moment: dt.datetime):
    """Run application code as if it were ``moment``: ``django.utils.timezone.now`` returns it (and every
    ``localdate``, ``auto_now`` and deadline follows)."""
    real = timezone.now
    timezone.now = lambda: moment
    try:
        yield moment
    finally:
        timezone.now = real


def _users_by_unit() -> dict[int, object]:
    """One active account per unit (the first by id) — who acts for that unit in the simulation."""
    users: dict[int, object] = {}
    for unit_id, user in (Staff.objects.filter(deactivated_at__isnull=True).select_related("user")
                          .order_by("unit_id", "id").values_list("unit_id", "user")):
        users.setdefault(unit_id, user)
    from django.contrib.auth import get_user_model

    objs = get_user_model().objects.in_bulk(set(users.values()))
    return {u: objs[i] for u, i in users.items()}


def _id_range(model) -> tuple[int, int]:
    """The first and last id of a table: picks are offsets into it, so a reset register picks the same rows."""
    ids = model.objects.order_by("id").values_list("id", flat=True)
    return (ids.first() or 0), (ids.last() or 0)


def _ancestor(path: str, level: int) -> str:
    return path[: SEGMENT * level]


class _Day:
    def __init__(self, seed: int, out: Callable[[str], None], now: dt.datetime | None = None):
        self.rng = random.Random(seed * 7919 + 14)
        self.out = out
        self.now = (now or timezone.now()).replace(second=0, microsecond=0)
        self.units = {u.path: u for u in Unit.objects.order_by("path")}
        self.by_id = {u.pk: u for u in self.units.values()}
        self.users = _users_by_unit()
        self.office = Unit.objects.get(kind="command_office")
        self.office_user = self.users[self.office.pk]
        self.events: list[tuple[dt.datetime, int, Callable[[], None]]] = []
        self.counts: dict[str, int] = defaultdict(int)
        households = Household.objects.count()
        self.pushes_per_list = max(16, min(1500, households // 150))
        self.cases_wanted = max(6, min(120, households // 600))

    # ---- the schedule ---------------------------------------------------------------------------------------

    def at(self, hours_ago: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at ``hours_ago`` before now (never after now)."""
        moment = self.now - dt.timedelta(hours=hours_ago)
        if moment <= self.now:
            self.events.append((moment, len(self.events), fn))

    def at_moment(self, moment: dt.datetime, fn: Callable[[], None]) -> None:
        if moment <= self.now:
            self.events.append((moment, len(self.events), fn))

    def run(self) -> dict:
        self.plan()
        for moment, _n, fn in sorted(self.events, key=lambda e: (e[0], e[1])):
            with clock_at(moment):
                fn()
        return dict(self.counts)

    def plan(self) -> None:
        self.plan_blind_spots()
        self.plan_directive_closed()
        self.plan_pushes()
        self.plan_cases_from_register()
        self.plan_directive_in_progress()
        self.plan_directive_just_issued()
        self.plan_capabilities()
        self.plan_worker_rounds()

    def plan_capabilities(self) -> None:
        """Each later capability schedules its own share of the day (``plan_day`` in its demo module)."""
        from bihuan.demo import checkpoints, forces, inspections

        for capability in (checkpoints, forces, inspections):
            capability.plan_day(self)

    # ---- helpers ------------------------------------------------------------------------------------------

    def user_for(self, unit: Unit, level: int | None = None):
        """The acting account of ``unit`` (or of its ancestor at ``level``), walking up when a unit has none."""
        path = unit.path if level is None else _ancestor(unit.path, level)
        while path:
            u = self.units.get(path)
            if u is not None and u.pk in self.users:
                return self.users[u.pk]
            path = path[:-SEGMENT]
        return self.office_user

    def community_of(self, unit: Unit) -> Unit:
        return self.units[_ancestor(unit.path, 4)] if unit.level >= 4 else unit

    def first_branch(self) -> tuple[Unit, Unit, Unit]:
        """The demo logins' own branch: the first township, its first community and that community's first grid."""
        township = next(u for u in self.units.values() if u.level == 3)
        community = next(u for u in self.units.values() if u.level == 4 and u.path.startswith(township.path))
        grid = next(u for u in self.units.values() if u.level == MAX_LEVEL and u.path.startswith(community.path))
        return township, community, grid

    # ---- blind spots ------------------------------------------------------------------------------------------

    def plan_blind_spots(self) -> None:
        """A grid whose only worker left (deactivated), and flats handed over that no grid answers for yet."""
        from bihuan.register.actions import do_create_household
        from bihuan.register.staff_actions import do_deactivate_staff

        township, community, grid1 = self.first_branch()
        grids = [u for u in self.units.values() if u.level == MAX_LEVEL and u.path.startswith(community.path)
                 and u.pk != grid1.pk]
        compounds = [u for u in self.units.values() if u.level == 5 and u.path.startswith(community.path)]

        def leave():
            for g in grids[-1:]:
                for staff in Staff.objects.filter(unit=g, deactivated_at__isnull=True):
                    do_deactivate_staff(staff=staff, reason="调离本网格（工作调动）", acting_user=self.user_for(community))
                    self.counts["blind_spot_grids"] += 1
                self.users.pop(g.pk, None)

        def handed_over():
            if not compounds:
                return
            compound = compounds[0]
            for room in ("101", "102", "201"):
                do_create_household(unit=compound, code=f"{compound.code}-NEW-{room}", kind=HouseholdKind.URBAN,
                                    address=f"{compound.name}新交付 9号楼1单元{room}室", building="9", entrance="1",
                                    room=room, acting_user=self.user_for(community))
                self.counts["blind_spot_households"] += 1

        self.at(40, leave)
        self.at(30, handed_over)

    # ---- directives -------------------------------------------------------------------------------------------

    def _receipts(self, directive):
        from bihuan.directives.models import RECEIPT
        from bihuan.loops.models import Loop

        return list(Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk).order_by("level", "path"))

    def _sign(self, directive, share: float, *, relay: bool = True) -> None:
        from bihuan.directives.actions import do_relay_receipt, do_sign_receipt

        township, community, grid1 = self.first_branch()
        for loop in self._receipts(directive):
            unit = self.by_id[loop.owner_unit_id]
            mine = grid1.path.startswith(unit.path)  # the demo logins' chain signs, so their pages show work
            if not mine and self.rng.random() >= share:
                continue
            user = self.users.get(unit.pk)
            if user is None:
                continue
            do_sign_receipt(loop_id=loop.pk, acting_user=user)
            if relay and unit.level < MAX_LEVEL:
                do_relay_receipt(loop_id=loop.pk, acting_user=user)
            self.counts["receipts_signed"] += 1

    def _mark(self, directive, share: float) -> None:
        """Grid workers' marks, one UPDATE per community (set-based), by the community's account."""
        from bihuan.directives.actions import do_mark_households
        from bihuan.directives.models import Reach, ReachMethod, ReachStatus

        rows = Reach.objects.filter(directive=directive, status=ReachStatus.PENDING).values_list("household_id",
                                                                                                    "path")
        by_community: dict[str, list[int]] = defaultdict(list)
        for hh, path in rows.order_by("household_id"):
            if self.rng.random() < share:
                by_community[_ancestor(path, 4)].append(hh)
        methods = [ReachMethod.PHONE, ReachMethod.WECHAT, ReachMethod.VISIT, ReachMethod.PHONE]
        for n, (path, ids) in enumerate(sorted(by_community.items())):
            unit = self.units.get(path)
            if unit is None:
                continue
            do_mark_households(directive=directive, household_ids=ids, status=ReachStatus.REACHED,
                               method=methods[n % len(methods)], acting_user=self.user_for(unit))
            self.counts["households_marked"] += len(ids)

    def _report(self, directive, share: float) -> None:
        from bihuan.directives.actions import do_report_receipt
        from bihuan.loops.models import LoopState

        for loop in self._receipts(directive):
            if loop.state not in (LoopState.ACKNOWLEDGED, LoopState.IN_PROGRESS) or self.rng.random() >= share:
                continue
            unit = self.by_id[loop.owner_unit_id]
            answers = {f["key"]: self._answer(f) for f in directive.feedback_form}
            do_report_receipt(loop_id=loop.pk, answers=answers, acting_user=self.users[unit.pk],
                              note="已全部通知到户")

    def _answer(self, field: dict):
        if field["type"] == "number":
            return self.rng.randint(0, 40)
        if field["type"] == "choice":
            return field["choices"][0]
        return "已落实"

    def _issue(self, **kw):
        from bihuan.directives.actions import do_issue_directive
        from bihuan.directives.fanout import distribute
        from bihuan.directives.models import FanoutState

        directive = do_issue_directive(acting_user=self.office_user, **kw)
        if directive.fanout_state != FanoutState.DONE:
            distribute(directive)  # what the worker does for a district-wide directive
            directive.refresh_from_db()
        self.counts["directives"] += 1
        return directive

    def plan_directive_closed(self) -> None:
        state: dict = {}

        def issue():
            state["d"] = self._issue(
                title="关于开展第三轮全员核酸检测的通知",
                body="各乡镇（街道）、村（社区）：定于明日 7:00 起开展第三轮全员核酸检测，请逐户通知到位，"
                     "组织居民错峰有序到采样点采样，行动不便人员安排上门采样。",
                sign_minutes=30, reach_hours=20, reminder_minutes=30,
                feedback_form=[{"key": "notified", "label": "已通知户数", "type": "number", "required": True}])

        self.at(30, issue)
        self.at(29.6, lambda: self._sign(state["d"], 1.0))
        self.at(24, lambda: self._mark(state["d"], 0.97))
        self.at(20, lambda: self._mark(state["d"], 0.9))
        self.at(14, lambda: self._report(state["d"], 1.0))

        def close():
            from bihuan.directives.actions import do_close_directive

            do_close_directive(directive=state["d"], acting_user=self.office_user, reason="检测已完成，予以销号")

        self.at(8, close)

    def plan_directive_in_progress(self) -> None:
        state: dict = {}

        def issue():
            state["d"] = self._issue(
                title="关于对近14天外省返尧人员逐户排查的紧急通知",
                body="请各单位对辖区内近14天有外省旅居史的返尧人员逐户排查，做到不漏一户、不漏一人，"
                     "排查结果今日 18:00 前反馈。",
                urgency="urgent", sign_minutes=30, reach_hours=10, reminder_minutes=30, reminder_limit=3,
                feedback_form=[{"key": "found", "label": "排查发现人数", "type": "number", "required": True},
                               {"key": "note", "label": "情况说明", "type": "text", "required": False}])

        self.at(4, issue)
        self.at(3.8, lambda: self._sign(state["d"], 0.7))
        self.at(2.5, lambda: self._mark(state["d"], 0.35))
        self.at(1.2, lambda: self._mark(state["d"], 0.3))
        self.at(0.8, lambda: self._report(state["d"], 0.25))

    def plan_directive_just_issued(self) -> None:
        self.at(0.15, lambda: self._issue(
            title="关于做好明日重点人群健康监测的通知",
            body="请各村（社区）今晚前核对辖区 65 岁以上独居老人、孕产妇名单，明日起每日电话询问健康状况。",
            sign_minutes=60, reach_hours=24, household_flag="elderly_alone"))

    # ---- pushed lists ------------------------------------------------------------------------------------------

    def _workbook(self, rows: list[list]) -> bytes:
        from openpyxl import Workbook

        wb = Workbook()
        ws = wb.active
        ws.title = "推送名单"
        ws.append(["姓名", "身份证号", "手机号", "来源地", "抵达时间", "现住址", "所属乡镇（街道）", "所属社区（村）"])
        for row in rows:
            ws.append(row)
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()

    def _push_rows(self, n: int, arrival: dt.date) -> list[list]:
        """``n`` people who came back to real addresses of the district (found through the register)."""
        from bihuan.demo.people import People

        people = People(self.rng, arrival)
        # drawn by position among the grids' households, so that gaps in the ids (a reset, a deleted row) do not
        # change who is drawn: the same seed gives the same day
        ids = list(Household.objects.filter(unit__level=MAX_LEVEL).order_by("id").values_list("id", flat=True))
        picks = sorted(self.rng.sample(range(len(ids)), min(n, len(ids))))
        households = list(Household.objects.filter(id__in=[ids[i] for i in picks])
                          .only("id", "path", "address").order_by("id"))
        rows = []
        for h in households:
            male = self.rng.random() < 0.5
            age = self.rng.randint(18, 70)
            _ord, id_number = people.id_number(people.birth(age), male)
            name = people.surname() + people.given("M" if male else "F", arrival.year - age)
            township = self.units.get(_ancestor(h.path, 3))
            community = self.units.get(_ancestor(h.path, 4))
            rows.append([name, id_number, people.phone(), self.rng.choice(ORIGINS), arrival.isoformat(), h.address,
                         township.name if township else "", community.name if community else ""])
        return rows

    def _import(self, rows: list[list], name: str) -> list[int]:
        from bihuan.pushes.importing import create_batch, process_batch
        from bihuan.pushes.models import BatchState, PushedPerson

        batch = create_batch(self._workbook(rows), name, source="省大数据中心", unit=self.office,
                             acting_user=self.office_user)
        if batch.state != BatchState.DONE:
            batch = process_batch(batch)
        ids = list(PushedPerson.objects.filter(first_batch=batch).order_by("id").values_list("id", flat=True))
        self.counts["pushed"] += len(ids)
        return ids

    def _verify(self, person_id: int, *, control: bool = False) -> None:
        from bihuan.pushes.actions import do_record_call, do_save_verification
        from bihuan.pushes.models import Outcome, Transfer, Verification
        from bihuan.pushes.verify import recommendation

        ver = Verification.objects.select_related("person", "person__unit").get(person_id=person_id)
        person = ver.person
        if ver.outcome != Outcome.VERIFYING or Transfer.objects.pending().filter(person=person).exists():
            return
        user = self.user_for(person.unit)
        rng = self.rng
        if rng.random() < 0.15:
            do_record_call(ver, "no_answer", acting_user=user)
        do_record_call(ver, "reached", acting_user=user)
        data = {"origin": person.origin, "arrival_date": (person.arrival_date or timezone.localdate()).isoformat(),
                "dwelling_type": "own", "cohabitants": rng.randint(0, 4), "health_status": "healthy",
                "vaccine_doses": rng.choice([2, 3, 3]),
                "tests": [{"date": (timezone.localdate() - dt.timedelta(days=1)).isoformat(), "result": "negative"}]}
        if control:
            ver = do_save_verification(ver, data, acting_user=user)
            measure, _basis = recommendation(person, ver)
            measure = measure if measure in ("centralized_quarantine", "home_isolation", "home_monitoring") \
                else "home_monitoring"
            data |= {"outcome": Outcome.NEW_CONTROL, "measure": measure, "override_reason": "社区研判：按居家健康监测管理"}
        else:
            outcome = rng.choice([Outcome.NO_CONTROL_NEEDED] * 5 + [Outcome.LEFT, Outcome.ALREADY_RELEASED])
            if outcome == Outcome.NO_CONTROL_NEEDED:
                data |= {"outcome": outcome, "basis": "来源地为低风险地区，48小时核酸阴性"}
            elif outcome == Outcome.LEFT:
                data |= {"outcome": outcome, "left_date": timezone.localdate().isoformat(), "left_to": "太原市"}
            else:
                data |= {"outcome": outcome, "where": "来源地", "since": (timezone.localdate()
                                                                         - dt.timedelta(days=3)).isoformat()}
        ver = do_save_verification(ver, data, acting_user=user)
        self.counts["verified"] += 1
        if control:
            self._open_from(ver, user)

    def _open_from(self, ver, user) -> None:
        from bihuan.control.actions import ControlError, do_open_case_from_verification

        hotel = ver.measure == "centralized_quarantine"
        try:
            do_open_case_from_verification(ver, acting_user=self.user_for(ver.person.unit, 4),
                                           site_kind="hotel" if hotel else "home",
                                           site_address=HOTEL if hotel else "")
            self.counts["cases"] += 1
        except ControlError as exc:  # e.g. already under control: the page would say so; the day goes on
            self.out(f"demo day: no case for pushed person {ver.person_id}: {exc.message}")

    def plan_pushes(self) -> None:
        yesterday: dict = {}
        today: dict = {}
        n = self.pushes_per_list

        def import_yesterday():
            day = timezone.localdate()
            yesterday["ids"] = self._import(self._push_rows(n, day - dt.timedelta(days=1)),
                                            f"省大数据中心推送名单{day:%Y%m%d}.xlsx")

        def verify_yesterday():
            ids = yesterday["ids"]
            # the first few become cases (one of each kind, then home monitoring); 1 in 8 are left overdue
            for i, pid in enumerate(ids):
                if i < 3 or (i % 8) == 5:
                    continue
                self._verify(pid, control=(i % 11 == 3))

        def cases_yesterday():
            from bihuan.pushes.models import Verification

            for pid in yesterday["ids"][:3]:
                self._verify_to_case(pid, Verification)

        def transfer_ping_pong():
            self._ping_pong(yesterday["ids"])

        def import_today():
            day = timezone.localdate()
            today["ids"] = self._import(self._push_rows(n, day), f"省大数据中心推送名单{day:%Y%m%d}-2.xlsx")

        def verify_today():
            for i, pid in enumerate(today["ids"]):
                if i % 5 < 2:
                    self._verify(pid, control=(i % 13 == 7))

        # Today's list must fall on today's local date whatever the hour the demo is built at (just after
        # midnight "5 hours ago" is still yesterday): anchored to the local midnight.
        local_now = timezone.localtime(self.now)
        since_midnight = local_now.hour + local_now.minute / 60 + local_now.second / 3600
        # The earlier list: yesterday 08:00, or 28 hours ago when that is too recent for its unverified people to
        # be past their 24-hour deadline (early in the morning it is then the day before yesterday's list).
        earlier = max(28.0, since_midnight + 16)
        self.at(earlier, import_yesterday)
        self.at(earlier - 1.5, cases_yesterday)
        self.at(earlier - 3, verify_yesterday)
        self.at(earlier - 6, transfer_ping_pong)
        self.at(min(5.0, since_midnight * 0.6), import_today)
        self.at(min(2.0, since_midnight * 0.3), verify_today)

    def _verify_to_case(self, pid: int, Verification) -> None:
        """One pushed person into each kind of control, with the measure staff chose (recorded as such)."""
        from bihuan.pushes.actions import do_record_call, do_save_verification
        from bihuan.pushes.models import Outcome

        kinds = ["centralized_quarantine", "home_isolation", "home_monitoring"]
        ver = Verification.objects.select_related("person", "person__unit").get(person_id=pid)
        measure = kinds[self.counts["kind_cases"] % 3]
        self.counts["kind_cases"] += 1
        user = self.user_for(ver.person.unit)
        do_record_call(ver, "reached", acting_user=user)
        ver = do_save_verification(ver, {"health_status": "healthy", "cohabitants": 2,
                                         "outcome": Outcome.NEW_CONTROL, "measure": measure,
                                         "override_reason": "来源地为高风险地区所在街道，社区研判"}, acting_user=user)
        self.counts["verified"] += 1
        self._open_from(ver, user)

    def _ping_pong(self, ids: list[int]) -> None:
        """Two communities of one township send one person back and forth: sent, returned, sent again."""
        from bihuan.pushes.actions import do_return_transfer, do_transfer
        from bihuan.pushes.models import Outcome, PushedPerson, Transfer

        people = PushedPerson.objects.filter(pk__in=ids[3:], verification__outcome=Outcome.VERIFYING,
                                             unit__level__gte=4).select_related("unit").order_by("id")
        for person in people:
            community = self.community_of(person.unit)
            township = self.units[_ancestor(community.path, 3)]
            others = [u for u in self.units.values() if u.level == 4 and u.pk != community.pk and u.pk in self.users]
            other = next((u for u in others if u.path.startswith(township.path)), others[0] if others else None)
            if other is None or person.unit.pk not in self.users and community.pk not in self.users:
                continue
            sender = self.user_for(person.unit)
            t = do_transfer(person, other, "核查：本人称实际居住在对方辖区", acting_user=sender)
            with clock_at(timezone.now() + dt.timedelta(hours=2)):
                do_return_transfer(t, "经核实该地址不在本辖区，退回", acting_user=self.users[other.pk])
            with clock_at(timezone.now() + dt.timedelta(hours=4)):
                person.refresh_from_db()
                t2 = do_transfer(person, other, "再次转办：房东确认其租住在对方辖区", acting_user=sender)
            self.counts["ping_pong"] += int(Transfer.objects.filter(pk=t2.pk, ping_pong=True).exists())
            return

    # ---- control from the register, check-ins, tests, services --------------------------------------------

    def plan_cases_from_register(self) -> None:
        """Close contacts found by the flow survey (流调), put under control by their community two days ago."""
        from bihuan.register.models import Resident, ResidentStatus

        township, community, grid1 = self.first_branch()
        wanted = self.cases_wanted
        present = Resident.objects.filter(status=ResidentStatus.PRESENT)
        residents = list(present.filter(path__startswith=grid1.path).order_by("id")[:3])
        lo, hi = _id_range(Resident)
        picks = sorted({self.rng.randint(lo, hi) for _ in range(wanted * 2)})
        residents += list(present.filter(id__in=picks).exclude(path__startswith=grid1.path)
                          .order_by("id")[: max(0, wanted - 3)])
        kinds = ["home_isolation", "home_monitoring", "centralized_quarantine"]
        cases: list = []

        def open_cases():
            from bihuan.control.actions import ControlError, do_open_case

            for i, r in enumerate(residents):
                kind = kinds[i % 3]
                unit = self.by_id[r.unit_id]
                try:
                    cases.append(do_open_case(
                        type_code=kind, unit=unit, name=r.name, resident=r, start_date=timezone.localdate(),
                        site_kind="hotel" if kind == "centralized_quarantine" else "home",
                        site_address=HOTEL if kind == "centralized_quarantine" else "",
                        site_room=f"{300 + i}" if kind == "centralized_quarantine" else "",
                        reason="流调判定为密接的密接", acting_user=self.user_for(unit, 4)))
                    self.counts["cases"] += 1
                except ControlError as exc:
                    self.out(f"demo day: no case for resident {r.pk}: {exc.message}")

        self.at(50, open_cases)
        # check-ins: morning at 8:30, afternoon at 15:30, over the last two days, through the person's link
        today = timezone.localdate(self.now)
        rounds = []
        for day in (today - dt.timedelta(days=2), today - dt.timedelta(days=1), today):
            for slot, hour in (("am", 8.5), ("pm", 15.5)):
                moment = timezone.make_aware(dt.datetime.combine(day, dt.time(int(hour), int(hour % 1 * 60))))
                rounds.append((moment, day, slot))
                self.at_moment(moment, lambda day=day, slot=slot: self._checkins(day, slot))
            sampled = max(timezone.make_aware(dt.datetime.combine(day, dt.time(11, 0))),
                          self.now - dt.timedelta(hours=49))
            self.at_moment(sampled, lambda day=day: self._test_results(day))
            late = timezone.make_aware(dt.datetime.combine(day, dt.time(23, 50)))
            self.at_moment(late, lambda day=day: self._test_results(day))
        # One abnormal reading in the latest round before now (this morning's, or last night's after midnight).
        self.abnormal_round = max((r for r in rounds if r[0] <= self.now), default=(None, None, None))[1:]
        self.at(6, self._services_closed)
        self.at(26, lambda: self._service_request("groceries", "家里米面快吃完了，请帮忙代购"))
        self.at(1.5, lambda: self._service_request("medicine", "需要降压药（硝苯地平缓释片）一盒"))
        self.at(0.5, lambda: self._service_request("rubbish", ""))

    def _open_cases(self):
        from bihuan.control.models import OPEN_CASE_STATES, ControlCase

        return list(ControlCase.objects.filter(state__in=OPEN_CASE_STATES).select_related("type").order_by("id"))

    def _checkins(self, day: dt.date, slot: str) -> None:
        from bihuan.control.checkins import CheckInError, do_record_checkin, slots_for

        first_missed = self.counts.get("missed_planned", 0) == 0
        # yesterday's, never the day before: the worker's rounds replayed here reach back 30 hours, and a slot
        # missed two days ago before dawn would never be noticed
        yesterday = timezone.localdate(self.now) - dt.timedelta(days=1)
        for i, case in enumerate(self._open_cases()):
            if slot not in slots_for(case.type) or not case.start_date <= day <= case.end_date:
                continue
            if case.created_at > timezone.now():
                continue
            if i == 1 and day == yesterday and slot == "pm" and first_missed:
                self.counts["missed_planned"] = 1  # this one forgets yesterday afternoon: the worker notices
                continue
            abnormal = i == 0 and (day, slot) == self.abnormal_round
            temperature = "37.8" if abnormal else f"36.{self.rng.randint(2, 8)}"
            try:
                do_record_checkin(case, date=day, slot=slot, temperature=temperature,
                                  symptoms=["咳嗽"] if abnormal else [], acting_user=None)
                self.counts["checkins"] += 1
                self.counts["abnormal"] += int(abnormal)
            except CheckInError:
                pass

    def _test_results(self, day: dt.date) -> None:
        """The door-to-door sampling team records the day's results (one still awaited)."""
        from bihuan.control.models import OPEN_CASE_STATES, TestSample
        from bihuan.control.sampling import do_record_result

        samples = TestSample.objects.filter(date=day, result="", case__state__in=OPEN_CASE_STATES).select_related(
            "case").order_by("id")
        for i, sample in enumerate(samples):
            result = "pending" if i == 0 else "negative"
            do_record_result(sample, result, acting_user=self.user_for(sample.case.unit, 4))
            self.counts["tests"] += 1

    def _service_request(self, kind: str, text: str) -> None:
        from bihuan.control.services import ServiceError, do_request_service

        cases = [c for c in self._open_cases() if c.type.at_home]
        if not cases:
            return
        case = cases[self.counts["services"] % len(cases)]
        try:
            do_request_service(case, kind, text, acting_user=None)
            self.counts["services"] += 1
        except ServiceError:
            pass

    def _services_closed(self) -> None:
        from bihuan.control.services import (
            do_assign_service,
            do_confirm_service,
            do_mark_service_done,
            do_request_service,
        )

        cases = [c for c in self._open_cases() if c.type.at_home]
        for case in cases[:2]:
            request = do_request_service(case, "groceries", "蔬菜、鸡蛋", acting_user=None)
            staff = self.user_for(case.unit, 4)
            do_assign_service(request, staff, acting_user=staff)
            do_mark_service_done(request, acting_user=staff, note="已送到门口")
            do_confirm_service(request, case=case, acting_user=None)
            self.counts["services"] += 1

    # ---- the worker, as it would have run ----------------------------------------------------------------------

    def plan_worker_rounds(self) -> None:
        """Reminders and escalations, missed check-ins and tests: the worker's tasks every half hour of the day."""
        from bihuan.control.tasks import checkins_round, samples_round
        from bihuan.loops.tasks import remind_due

        def tick():
            remind_due(DAY_ACTOR)
            checkins_round(DAY_ACTOR)
            samples_round(DAY_ACTOR)

        for half_hours in range(0, 30 * 2 + 1):
            self.at(half_hours / 2 + 0.05, tick)


def build_day(seed: int = 1, out: Callable[[str], None] = print, now: dt.datetime | None = None) -> dict:
    """Build the day in progress on the generated register (see the module docstring). Returns counts."""
    import time

    from django.db import transaction

    started = time.perf_counter()
    with transaction.atomic():
        counts = _Day(seed, out, now).run()
    out("demo day: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()) if not k.endswith("_planned"))
        + f" ({time.perf_counter() - started:.1f} s)")
    return counts
