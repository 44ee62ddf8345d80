"""The field force of the generated district (``generate_forces``): cadres of every department and township
spread over the communities where they live (双报到), youth volunteers, party members, a veterans' team
(橄榄绿志愿服务队) of 10, a rescue team (蓝天救援队), property staff; a post at every village entrance and
compound gate and a sampling point per community, this week's roster with a few gaps (and hours already served);
disinfection places of every compound and village with three days of logs; a few tasks and notices.

Deterministic with the seed (its own ``random.Random``), and set-based: rows are written in batches with
``generate.Writer`` (executemany / COPY); only the few loops (report-ins waiting, tasks) go through the loop
engine. About 20,000 helpers, 3,000 posts and 60,000 shifts for the yaodu preset.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone

from bihuan.core import crypto
from bihuan.core.personal import mask_phone
from bihuan.register.models import Unit, UnitKind

HELPERS_PER_LEVEL4 = {"tiny": 12, "demo": 30, "yaodu": 47}
KINDS = [("cadre", 0.30), ("party_member", 0.18), ("youth", 0.22), ("volunteer", 0.17), ("veteran", 0.04),
         ("rescue", 0.04), ("property", 0.05)]
SKILLS = ["驾驶", "医护", "心理疏导", "电工", "宣传", "方言翻译", "摄影", "搬运", ""]
VILLAGE_PLACES = [("村口道路", "road", 24), ("垃圾收集点", "garbage", 24), ("公厕", "toilet", 12),
                  ("文化广场", "park", 24)]
COMPOUND_PLACES = [("垃圾收集点", "garbage", 24), ("非机动车棚", "bike_shed", 24), ("电梯轿厢", "lift", 12),
                   ("楼道扶手", "stairwell", 24)]
AGENTS = [("含氯消毒液", "500mg/L"), ("含氯消毒液", "1000mg/L"), ("过氧乙酸", "0.2%"), ("二氧化氯", "100mg/L")]


def _adapt(value):
    return connection.ops.adapt_datetimefield_value(value)


def generate_forces(preset: str, seed: int = 1, out: Callable[[str], None] = print) -> dict:
    """Build the field force over the register that is there (idempotent: nothing if helpers exist)."""
    from bihuan.demo.people import People
    from bihuan.demo.rows import Writer, _max_id
    from bihuan.forces import models as m

    if m.Helper.objects.exists():
        return {"helpers": m.Helper.objects.count()}
    rng = random.Random(f"forces:{seed}")
    now = timezone.now()
    today = timezone.localdate()
    people = People(rng, today)
    units = list(Unit.objects.order_by("path").values_list("id", "parent_id", "level", "path", "name", "kind"))
    level4 = [u for u in units if u[2] == 4]
    homes = [u for u in units if u[5] == UnitKind.DEPARTMENT or u[2] == 3]
    per = HELPERS_PER_LEVEL4.get(preset, 30)
    counts: dict[str, int] = {}
    t_now = _adapt(now)
    with transaction.atomic():
        # --- posts: every village entrance (1–2), compound gate (1–2), bungalow-area entrance, most villager
        # groups' road checkpoints, a sampling point per community ------------------------------------------
        pid = _max_id(m.Post)
        posts = Writer(m.Post, ["id", "unit_id", "path", "name", "kind", "start_hour", "end_hour", "required",
                                "active", "created_at"])
        post_rows = []  # (post id, level-4 unit id, start, end, required, path)
        sides = ["东", "西", "南", "北"]
        for u in units:
            lv4 = u[0] if u[2] == 4 else u[1]
            plan = []
            if u[5] == UnitKind.VILLAGE:
                plan = [(f"{u[4]}{sides[k]}村口卡点", "checkpoint", 0, 24, 1 + (rng.random() < 0.3))
                        for k in range(1 + (rng.random() < 0.6))]
            elif u[5] == UnitKind.COMPOUND:
                plan = [(f"{u[4]}{['大门', '侧门'][k]}", "gate", 0, 24, 1) for k in range(1 + (rng.random() < 0.5))]
            elif u[5] == UnitKind.BUNGALOW_AREA:
                plan = [(f"{u[4]}路口", "checkpoint", 6, 22, 1)]
            elif u[5] == UnitKind.VILLAGER_GROUP and rng.random() < 0.7:
                plan = [(f"{u[4]}路口卡点", "checkpoint", 6, 22, 1)]
            elif u[5] == UnitKind.COMMUNITY:
                plan = [(f"{u[4]}核酸采样点", "sampling", 8, 16, 2)]
            for name, kind, sh, eh, req in plan:
                pid += 1
                posts.add((pid, u[0], u[3], name, kind, sh, eh, req, True, t_now))
                post_rows.append((pid, lv4, sh, eh, req, u[3]))
        need: dict[int, int] = {}
        for _pid, lv4, sh, eh, req, _path in post_rows:
            need[lv4] = need.get(lv4, 0) + req * len(_slots(sh, eh))

        # --- helpers ------------------------------------------------------------------------------------
        hid = _max_id(m.Helper)
        helpers = Writer(m.Helper, ["id", "unit_id", "path", "kind", "name", "home_unit_id", "home_path", "home_org",
                                    "party_member", "skills", "availability", "status", "reported_at", "reports",
                                    "decided_at", "created_at", "phone_sealed", "phone_hash", "phone_masked",
                                    "phone_tail"])
        by_unit: dict[int, list[int]] = {}
        kinds_of: dict[int, str] = {}
        pending = []
        cum = []
        total = 0.0
        for kind, w in KINDS:
            total += w
            cum.append((total, kind))
        scale = per * len(level4) / max(1, sum(need.values()))
        for u in level4:
            for _ in range(max(6, round(need.get(u[0], 0) * scale))):
                hid += 1
                r = rng.random()
                kind = next(k for c, k in cum if r <= c)
                status = "active" if rng.random() < 0.95 else ("pending" if rng.random() < 0.6 else "paused")
                home = rng.choice(homes) if kind == "cadre" and homes else None
                male = rng.random() < 0.55
                year = today.year - rng.randint(19 if kind == "youth" else 25, 30 if kind == "youth" else 62)
                name = people.surname() + people.given("M" if male else "F", year)
                phone = people.phone()
                helpers.add((hid, u[0], u[3], kind, name, home[0] if home else None, home[3] if home else "",
                             "" if home or kind not in ("property", "rescue") else (
                                 "蓝天救援队" if kind == "rescue" else f"{u[4]}物业服务中心"),
                             kind in ("cadre", "party_member") and rng.random() < 0.8, rng.choice(SKILLS),
                             rng.choice(["工作日晚上", "周末全天", "随叫随到", "每天上午"]), status, t_now, 1,
                             t_now if status != "pending" else None, t_now,
                             crypto.seal(phone), crypto.lookup_hash("phone", phone), mask_phone(phone), phone[-4:]))
                kinds_of[hid] = kind
                if status == "active":
                    by_unit.setdefault(u[0], []).append(hid)
                elif status == "pending":
                    pending.append(hid)
        helpers.flush()
        counts["helpers"] = helpers.count

        # --- teams: a veterans' team of 10 in the first subdistrict, a rescue team, a youth team per level 3 ---
        veterans = [h for h in kinds_of if kinds_of[h] == "veteran"][:10]
        rescue = [h for h in kinds_of if kinds_of[h] == "rescue"][:30]
        team_rows = []
        first3 = next((x for x in units if x[2] == 3), None)
        district = next((u for u in units if u[2] == 1), None)
        if first3 and veterans:
            team_rows.append((first3, "橄榄绿志愿服务队", "退役军人每日宣传", veterans))
        if district and rescue:
            team_rows.append((district, "蓝天救援队", "道路、公园、垃圾点、车棚消杀", rescue))
        for u in (x for x in units if x[2] == 3):
            youth = [h for lv4 in level4 if lv4[1] == u[0] for h in by_unit.get(lv4[0], []) if kinds_of[h] == "youth"]
            if youth:
                team_rows.append((u, f"{u[4]}青年志愿服务队", "团委组织的返乡青年志愿者", youth[:40]))
        tid = _max_id(m.Team)
        teams = Writer(m.Team, ["id", "unit_id", "path", "name", "purpose", "leader_id", "created_at"])
        members = Writer(m.TeamMember, ["id", "team_id", "helper_id", "joined_at"])
        mid = _max_id(m.TeamMember)
        for unit, name, purpose, ids in team_rows:
            tid += 1
            teams.add((tid, unit[0], unit[3], name, purpose, ids[0], t_now))
            for h in ids:
                mid += 1
                members.add((mid, tid, h, t_now))
        teams.flush()
        members.flush()
        counts["teams"] = teams.count

        posts.flush()
        counts["posts"] = posts.count

        # --- this week's roster: each active helper at most one shift a day; some slots stay empty (gaps) ---
        monday = today - dt.timedelta(days=today.weekday())
        week0 = timezone.make_aware(dt.datetime.combine(monday, dt.time()))
        sid = _max_id(m.Shift)
        shifts = Writer(m.Shift, ["id", "post_id", "path", "helper_id", "staff_id", "starts_at", "ends_at", "on_at",
                                  "off_at", "reminded_at", "created_at"])
        for day in range(7):
            used: set[int] = set()
            for post_id, lv4, sh, eh, req, path in post_rows:
                pool = by_unit.get(lv4, [])
                slots = _slots(sh, eh)
                for a, b in slots:
                    for _ in range(req):
                        if rng.random() < 0.03 or not pool:
                            continue  # a gap
                        for _try in range(10):
                            h = pool[int(rng.random() * len(pool))]
                            if h not in used:
                                break
                        else:
                            continue  # nobody free: a gap
                        used.add(h)
                        sid += 1
                        start = week0 + dt.timedelta(days=day, hours=a)
                        end = week0 + dt.timedelta(days=day, hours=b)
                        on = off = None
                        # No-shows only long enough ago not to alarm anyone now (the worker escalates missed
                        # starts of the last 12 hours).
                        if start < now and (rng.random() < 0.93 or start > now - dt.timedelta(hours=13)):
                            on = start + dt.timedelta(minutes=rng.randint(-15, 12))
                            off = end + dt.timedelta(minutes=rng.randint(-10, 20)) if end < now else None
                        shifts.add((sid, post_id, path, h, None, _adapt(start), _adapt(end),
                                    _adapt(on) if on else None, _adapt(off) if off else None,
                                    _adapt(start) if start < now else None, t_now))
        shifts.flush()
        counts["shifts"] = shifts.count

        # --- disinfection places and three days of logs ---------------------------------------------------
        plid = _max_id(m.Place)
        places = Writer(m.Place, ["id", "unit_id", "path", "name", "kind", "every_hours", "last_done_at", "active"])
        logs = Writer(m.DisinfectionLog, ["id", "place_id", "path", "helper_id", "done_by", "recorded_by_id", "at",
                                          "agent", "concentration", "area_m2", "photo", "note"])
        lid = _max_id(m.DisinfectionLog)
        names = dict(m.Helper.objects.values_list("id", "name")) if rescue else {}
        for u in units:
            spec = VILLAGE_PLACES if u[5] == UnitKind.VILLAGE else COMPOUND_PLACES if u[5] == UnitKind.COMPOUND else None
            if spec is None:
                continue
            lv4 = u[0] if u[2] == 4 else u[1]
            pool = by_unit.get(lv4, []) or rescue
            for name, kind, every in spec:
                plid += 1
                last = None
                rows = []
                for back in (2, 1, 0):
                    at = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=back), dt.time(8))) \
                        + dt.timedelta(minutes=rng.randint(0, 180))
                    if at > now or rng.random() < 0.06:
                        continue
                    lid += 1
                    h = pool[int(rng.random() * len(pool))] if pool else None
                    agent, conc = rng.choice(AGENTS)
                    rows.append((lid, plid, u[3], h, names.get(h) or "", None, _adapt(at), agent, conc,
                                 rng.choice([50, 120, 300, 800]), "", ""))
                    last = at
                places.add((plid, u[0], u[3], f"{u[4]}{name}", kind, every, _adapt(last) if last else None, True))
                for r in rows:
                    logs.add(r)
        places.flush()
        logs.flush()
        counts["places"], counts["logs"] = places.count, logs.count
        if not names:  # the logs name who did them
            _fill_log_names()
        _after_load()
        counts["report_ins"] = _report_in_loops(pending)
        counts["tasks"] = _tasks_and_notices(rng, units, by_unit, now)
    out("forces: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return counts


def _slots(start: int, end: int) -> list[tuple[int, int]]:
    """A post's day cut into shifts of at most 8 hours (0–24: the usual three)."""
    out, a = [], start
    while a < end:
        out.append((a, min(a + 8, end)))
        a += 8
    return out


def _fill_log_names() -> None:
    from bihuan.forces.models import DisinfectionLog, Helper

    q = connection.ops.quote_name
    lg, hp = q(DisinfectionLog._meta.db_table), q(Helper._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {lg} SET done_by = (SELECT h.name FROM {hp} h WHERE h.id = {lg}.helper_id) "
                    "WHERE helper_id IS NOT NULL AND done_by = ''")


def _after_load() -> None:
    from django.core.management.color import no_style

    from bihuan.forces import models as m

    written = [m.Helper, m.Team, m.TeamMember, m.Post, m.Shift, m.Place, m.DisinfectionLog]
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            for sql in connection.ops.sequence_reset_sql(no_style(), written):
                cur.execute(sql)
            cur.execute("ANALYZE " + ", ".join(connection.ops.quote_name(x._meta.db_table) for x in written))


def _report_in_loops(pending: list[int]) -> int:
    """The report-ins still waiting: their approval loops, opened set-based by the engine."""
    from bihuan.forces.models import REPORT_IN, Helper
    from bihuan.loops import engine

    if not pending:
        return 0
    q = connection.ops.quote_name
    hp, un = q(Helper._meta.db_table), q(Unit._meta.db_table)
    title = "h.name || '报到'" if connection.vendor == "sqlite" else "CAST(h.name || '报到' AS VARCHAR(200))"
    rows = (f"SELECT h.id AS subject_id, {title} AS title, u.id AS owner_unit_id, u.path AS owner_path, "
            f"u.level AS owner_level, u.id AS originator_unit_id, {engine.sql_time('NULL')} AS ack_due_at, "
            f"{engine.sql_time('NULL')} AS due_at FROM {hp} h JOIN {un} u ON u.id = h.unit_id WHERE h.status = %s")
    return engine.open_many(REPORT_IN, rows, ["pending"])


def _tasks_and_notices(rng: random.Random, units, by_unit, now) -> int:
    """A publicity round and a delivery task per level-3 unit's first community, and notices: through the actions."""
    from bihuan.forces.actions import do_create_task, do_publish_notice
    from bihuan.forces.models import Helper, Place
    from bihuan.register.models import Household

    made = 0
    level3 = [u for u in units if u[2] == 3]
    district = next((u for u in units if u[2] == 1), None)
    unit_objs = Unit.objects.in_bulk([u[0] for u in units if u[2] <= 4])
    if district:
        do_publish_notice(unit_objs[district[0]], title="关于做好近期疫情防控工作的通告",
                          body="请广大居民非必要不外出、不聚集，外出佩戴口罩，配合做好核酸检测；"
                               "从外地返回人员请提前三天向所在村（社区）报备。", acting_user=None)
    for u in level3:
        l4 = next((x for x in units if x[1] == u[0] and x[2] == 4 and by_unit.get(x[0])), None)
        if l4 is None:
            continue
        helper = Helper.objects.get(pk=by_unit[l4[0]][0])
        community = unit_objs[l4[0]]
        # What the tasks target: a few households to deliver to, the places to disinfect.
        homes = list(Household.objects.filter(community.subtree()).order_by("id").values_list("id", flat=True)[:3])
        spots = list(Place.objects.filter(community.subtree()).order_by("id").values_list("id", flat=True)[:3])
        for kind, title, hours, households, places in (
                ("publicity", "大喇叭流动宣传一轮（主街及各小区）", 6, [], []),
                ("delivery", "为居家隔离户配送生活物资", 3, homes, []),
                ("disinfection", "重点点位加密消杀一轮", 4, [], spots)):
            do_create_task(community, kind=kind, title=title, helper=helper, households=households, places=places,
                           due_at=now + dt.timedelta(hours=hours + rng.randint(0, 3)), acting_user=None)
            made += 1
    return made


def plan_day(day) -> None:
    """The field force's share of the demo day, on its clock: this morning a community gives its first helper a
    delivery to an isolated household, due two hours later and not yet reported — behind by now."""
    from bihuan.forces.actions import do_create_task
    from bihuan.forces.models import Helper, HelperStatus
    from bihuan.register.models import Household

    helper = (Helper.objects.filter(status=HelperStatus.ACTIVE, unit__level=4).select_related("unit")
              .order_by("id").first())
    if helper is None:
        return

    def give() -> None:
        homes = list(Household.objects.filter(helper.unit.subtree()).order_by("id").values_list("id", flat=True)[:2])
        do_create_task(helper.unit, kind="delivery", title="为居家隔离户送药（降压药两盒）", helper=helper,
                       households=homes, due_at=timezone.now() + dt.timedelta(hours=2), acting_user=None)
        day.counts["tasks"] += 1

    day.at(max(3.0, min(8.0, timezone.localtime(day.now).hour)), give)
