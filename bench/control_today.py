"""``python -m bench control-today``: a community's "today" page of control and care, as its staff see it.

Set-up (once, set-based, reused on later runs of the same day; rebuilt on another day because "today" moved):
10,000 open control cases for residents spread over the whole district (every ~95th resident by id) — 20 %
centralized quarantine in a hotel, 40 % home isolation, 40 % home monitoring — on day 1 … 7 of a 7-day period,
with today's check-ins (90 % morning, a third also afternoon, one in 53 abnormal with its alert loop), their
test samples (days 1, 4, 7 at home; 1, 2, 3, 5, 7 in a hotel; past ones negative, today's partly taken, a few
positive) and 500 service requests with their loops (a sixth done, some overdue). All with ``INSERT … SELECT``
statements; the cases carry ``protocol_name = 'bench:control'`` so they can be told apart and removed.

Times ``GET /control/today/?unit=<community>`` with Django's test client, logged in (``force_login``) as that
community's staff account, for the community holding the most cases; 20 renders after a warm-up, ``seconds``
is the median. DEBUG is off. n = open cases of the community.

Baseline: hand-written SQL that computes the same figures and lists — the four GROUP BYs of the counts
(``dashboard.raw_counts``), the due check-ins with today's readings, the sampling list with the households'
doors, the open service requests with their deadlines, the open alerts, the care visits per grid (key-group
residents, people at home, today's visits) and the cases ending today — run through a plain cursor, median
of 20. Acceptance: the page renders in under 300 ms.
"""

from __future__ import annotations

import statistics
import time

from bench.common import database, ensure_scale, report

MARK = "bench:control"
N_CASES = 10_000
RENDERS = 20
LIMIT = 0.3  # seconds
SETUP_ACTION = "bench.control.setup"
SETUP_VERSION = 4  # bump when the set-up changes: the cases are rebuilt
HOTEL = "尧都区集中隔离点（汾河宾馆）"


def _q(name: str) -> str:
    from django.db import connection

    return connection.ops.quote_name(name)


def _tables() -> dict[str, str]:
    from bihuan.control import models as m
    from bihuan.loops.models import Loop, LoopEvent
    from bihuan.register.models import Household, Resident, Unit

    models = {"case": m.ControlCase, "checkin": m.CheckIn, "sample": m.TestSample, "service": m.ServiceRequest,
              "measure": m.MeasureItem, "team": m.TeamMember, "missed": m.MissedCheckIn, "visit": m.CareVisit,
              "loop": Loop, "event": LoopEvent, "resident": Resident, "household": Household, "unit": Unit}
    return {k: _q(v._meta.db_table) for k, v in models.items()}


def cleanup() -> None:
    """Remove the bench's cases and everything hanging on them (the loops of their requests, check-ins and
    samples too)."""
    from django.db import connection, transaction

    from bihuan.control.models import ALERT, SERVICE, TEST_MISSED, TEST_POSITIVE

    t = _tables()
    mine = f"SELECT id FROM {t['case']} WHERE protocol_name = %s"
    subjects = {SERVICE: "service", ALERT: "checkin", TEST_POSITIVE: "sample", TEST_MISSED: "sample"}
    with transaction.atomic(), connection.cursor() as cur:
        for kind, table in subjects.items():
            loops = (f"SELECT id FROM {t['loop']} WHERE kind = %s AND subject_id IN "
                     f"(SELECT id FROM {t[table]} WHERE case_id IN ({mine}))")
            cur.execute(f"DELETE FROM {t['event']} WHERE loop_id IN ({loops})", [kind, MARK])
            if kind == SERVICE:
                cur.execute(f"UPDATE {t['service']} SET loop_id = NULL WHERE case_id IN ({mine})", [MARK])
            cur.execute(f"DELETE FROM {t['loop']} WHERE id IN ({loops})", [kind, MARK])
        for table in ("checkin", "sample", "service", "measure", "team", "missed", "visit"):
            cur.execute(f"DELETE FROM {t[table]} WHERE case_id IN ({mine})", [MARK])
        cur.execute(f"UPDATE {t['case']} SET previous_id = NULL WHERE previous_id IN ({mine})", [MARK])
        cur.execute(f"DELETE FROM {t['case']} WHERE protocol_name = %s", [MARK])


def ensure_cases(out=print) -> dict:
    """The bench's cases for today: reused if made today, else (re)built."""
    from django.utils import timezone

    from bihuan.control.models import ControlCase
    from bihuan.core.models import AuditEntry

    today = timezone.localdate()
    entry = AuditEntry.objects.filter(action=SETUP_ACTION).order_by("-id").first()
    n = ControlCase.objects.filter(protocol_name=MARK).count()
    if (entry is not None and entry.changes.get("day") == today.isoformat() and n == entry.changes.get("cases")
            and entry.changes.get("version") == SETUP_VERSION):
        out(f"reusing {n:,} bench control cases made today")
        return entry.changes
    out(f"building {N_CASES:,} open control cases with today's check-ins, samples and service requests …")
    t0 = time.perf_counter()
    cleanup()
    info = build_cases(today)
    info["seconds"] = round(time.perf_counter() - t0, 2)
    AuditEntry.objects.create(action=SETUP_ACTION, target_type="bench", target_id=MARK, changes=info)
    out(f"built in {info['seconds']} s: {info}")
    return info


def build_cases(today) -> dict:
    import datetime as dt

    from django.db import connection, transaction
    from django.utils import timezone

    from bihuan.control.models import ALERT, SERVICE, ControlCase, ControlType
    from bihuan.register.models import Resident

    t = _tables()
    pg = connection.vendor == "postgresql"
    json = "CAST(%s AS jsonb)" if pg else "%s"
    types = {c.code: c.pk for c in ControlType.objects.filter(
        code__in=["centralized_quarantine", "home_isolation", "home_monitoring"])}
    residents = Resident.objects.count()
    step = max(1, residents // N_CASES)
    now = timezone.now()
    adapt_d, adapt_t = connection.ops.adapt_datefield_value, connection.ops.adapt_datetimefield_value
    starts = [adapt_d(today - dt.timedelta(days=k)) for k in range(7)]
    ends = [adapt_d(today - dt.timedelta(days=k) + dt.timedelta(days=6)) for k in range(7)]
    k = "((r.id / 10) %% 7)"
    kind = "(r.id %% 10)"
    home_phases = '[{"type": "%s", "days": 7, "tests": [1, 4, 7]}]'
    hotel_phases = '[{"type": "centralized_quarantine", "days": 7, "tests": [1, 2, 3, 5, 7]}]'

    def by_k(values: list) -> tuple[str, list]:
        return "CASE " + k + " " + " ".join("WHEN %s THEN %s" for _ in values) + " END", \
            [x for i, v in enumerate(values) for x in (i, v)]

    start_sql, start_params = by_k(starts)
    end_sql, end_params = by_k(ends)
    with transaction.atomic(), connection.cursor() as cur:
        # The cases: every ``step``-th resident (by id) of the district, present or away.
        cur.execute(
            f"INSERT INTO {t['case']} (type_id, unit_id, path, resident_id, name, id_masked, phases, phase_index, "
            "protocol_name, start_date, end_date, site_kind, site_address, site_room, state, reason, created_at, "
            "locked_by, phone_sealed, phone_hash, phone_masked, phone_tail) "
            f"SELECT CASE WHEN {kind} < 2 THEN %s WHEN {kind} < 6 THEN %s ELSE %s END, r.unit_id, r.path, r.id, "
            f"r.name, r.id_masked, {json.replace('%s', 'CASE WHEN ' + kind + ' < 2 THEN %s WHEN ' + kind + ' < 6 THEN %s ELSE %s END')}, "
            f"0, %s, {start_sql}, {end_sql}, "
            f"CASE WHEN {kind} < 2 THEN 'hotel' ELSE 'home' END, "
            f"CASE WHEN {kind} < 2 THEN %s ELSE h.address END, "
            f"CASE WHEN {kind} < 2 THEN CAST(100 + r.id %% 400 AS VARCHAR(10)) ELSE '' END, "
            f"CASE WHEN {k} = 6 AND r.id %% 2 = 0 THEN 'release_proposed' ELSE 'active' END, '', %s, '', "
            "r.phone_sealed, r.phone_hash, r.phone_masked, r.phone_tail "
            f"FROM {t['resident']} r JOIN {t['household']} h ON h.id = r.household_id "
            f"WHERE r.id %% %s = 0 ORDER BY r.id LIMIT %s",
            [types["centralized_quarantine"], types["home_isolation"], types["home_monitoring"],
             hotel_phases, home_phases % "home_isolation", home_phases % "home_monitoring", MARK,
             *start_params, *end_params, HOTEL, adapt_t(now), step, N_CASES])
        cases = cur.rowcount
        mine = f"FROM {t['case']} c WHERE c.protocol_name = %s"
        # Today's check-ins: 90 % in the morning, a third in the afternoon too; one in 53 abnormal.
        for slot, cond in (("am", "c.id %% 10 <> 9"), ("pm", "c.id %% 3 = 0")):
            cur.execute(
                f"INSERT INTO {t['checkin']} (case_id, date, slot, temperature, symptoms, abnormal, at) "
                f"SELECT c.id, %s, %s, CASE WHEN c.id %% 53 = 0 THEN 37.8 ELSE 36.5 END, "
                f"{json.replace('%s', 'CASE WHEN c.id %% 53 = 0 THEN %s ELSE %s END')}, "
                f"CASE WHEN c.id %% 53 = 0 THEN %s ELSE %s END, %s {mine} AND {cond}",
                [adapt_d(today), slot, '["咳嗽"]', "[]", True, False, adapt_t(now), MARK])
        cur.execute(f"SELECT COUNT(*) FROM {t['checkin']} WHERE case_id IN (SELECT id {mine})", [MARK])
        checkins = cur.fetchone()[0]
        # Test samples: day N on start + N - 1; past ones negative, today's partly taken, a few positive.
        samples = 0
        for day in (1, 2, 3, 4, 5, 7):
            date = f"c.start_date + {day - 1}" if pg else f"date(c.start_date, '+{day - 1} days')"
            only = "" if day in (1, 4, 7) else f" AND c.type_id = {int(types['centralized_quarantine'])}"
            if day == 4:
                only = f" AND c.type_id <> {int(types['centralized_quarantine'])}"
            cur.execute(
                f"INSERT INTO {t['sample']} (case_id, day, date, result, sampled_at, recorded_at) "
                f"SELECT c.id, %s, {date}, CASE WHEN {date} < %s THEN 'negative' WHEN {date} > %s THEN '' "
                "WHEN c.id %% 211 = 0 THEN 'positive' WHEN c.id %% 3 = 0 THEN 'negative' "
                "WHEN c.id %% 7 = 1 THEN 'pending' ELSE '' END, NULL, NULL "
                f"{mine}{only}", [day, adapt_d(today), adapt_d(today), MARK])
            samples += cur.rowcount
        # Service requests: one case in 20; a sixth done (waiting for the person), the older ones overdue.
        cur.execute(
            f"INSERT INTO {t['service']} (case_id, kind, text, requested_at) "
            "SELECT c.id, CASE c.id %% 5 WHEN 0 THEN 'groceries' WHEN 1 THEN 'medicine' WHEN 2 THEN 'medical' "
            "WHEN 3 THEN 'rubbish' ELSE 'other' END, '大米一袋、青菜', %s "
            f"{mine} AND c.id %% 20 = 0",
            [adapt_t(now - dt.timedelta(hours=3)), MARK])
        services = cur.rowcount
        cur.execute(
            f"INSERT INTO {t['loop']} (kind, subject_id, title, owner_unit_id, path, level, originator_unit_id, "
            "state, ack_due_at, due_at, reminder_interval, reminder_limit, reminders_sent, reported_at, data, "
            "locked_by, created_at) "
            f"SELECT %s, s.id, %s, c.unit_id, c.path, 6, c.unit_id, "
            "CASE WHEN c.id %% 6 = 0 THEN 'reported' ELSE 'issued' END, %s, "
            "CASE WHEN s.id %% 4 = 1 THEN %s ELSE %s END, 1800, 3, 0, CASE WHEN c.id %% 6 = 0 THEN %s END, "
            f"{json}, '', %s FROM {t['service']} s JOIN {t['case']} c ON c.id = s.case_id "
            "WHERE c.protocol_name = %s",
            [SERVICE, "服务请求（bench）", adapt_t(now - dt.timedelta(hours=2, minutes=30)),
             adapt_t(now - dt.timedelta(hours=1)), adapt_t(now + dt.timedelta(hours=1)), adapt_t(now), "{}",
             adapt_t(now), MARK])
        cur.execute(
            f"UPDATE {t['service']} SET loop_id = (SELECT l.id FROM {t['loop']} l WHERE l.kind = %s "
            f"AND l.subject_id = {t['service']}.id) WHERE case_id IN (SELECT id {mine})", [SERVICE, MARK])
        # The abnormal check-ins' alerts, owned by the case's community (level 4).
        cur.execute(
            f"INSERT INTO {t['loop']} (kind, subject_id, title, owner_unit_id, path, level, originator_unit_id, "
            "state, ack_due_at, due_at, reminder_interval, reminder_limit, reminders_sent, data, locked_by, "
            "created_at) "
            f"SELECT %s, k.id, %s, u.id, u.path, u.level, c.unit_id, 'issued', %s, %s, 900, 2, 0, {json}, '', %s "
            f"FROM {t['checkin']} k JOIN {t['case']} c ON c.id = k.case_id "
            f"JOIN {t['unit']} u ON u.path = substr(c.path, 1, 16) "
            "WHERE k.abnormal = %s AND c.protocol_name = %s",
            [ALERT, "健康打卡异常：体温 37.8°C，症状：咳嗽（bench）", adapt_t(now + dt.timedelta(minutes=15)),
             adapt_t(now + dt.timedelta(hours=1)), "{}", adapt_t(now), True, MARK])
        alerts = cur.rowcount
    if pg:
        with connection.cursor() as cur:
            for table in ("case", "checkin", "sample", "service", "loop"):
                cur.execute(f"ANALYZE {t[table]}")
    open_cases = ControlCase.objects.filter(protocol_name=MARK).count()
    return {"version": SETUP_VERSION, "day": today.isoformat(), "cases": open_cases, "inserted": cases,
            "checkins": checkins,
            "samples": samples, "services": services, "alerts": alerts, "step": step}


def busiest_community():
    """The community (level 4) holding the most bench cases, and how many."""
    from django.db.models import Count
    from django.db.models.functions import Substr

    from bihuan.control.models import OPEN_CASE_STATES, ControlCase
    from bihuan.register.models import SEGMENT, Unit

    row = (ControlCase.objects.filter(state__in=OPEN_CASE_STATES).annotate(c=Substr("path", 1, SEGMENT * 4))
           .values("c").annotate(n=Count("id")).order_by("-n", "c").first())
    return Unit.objects.get(path=row["c"]), row["n"]


def raw_today(unit, day) -> list[tuple[str, list]]:
    """The SQL that computes what the today page shows, hand-written (see the module docstring)."""
    from django.db import connection

    from bihuan.control.care import CARE_GROUPS
    from bihuan.control.models import ALERT_KINDS, OPEN_CASE_STATES
    from bihuan.loops.models import OPEN_STATES
    from bihuan.register.models import next_path

    t = _tables()
    d = connection.ops.adapt_datefield_value(day)
    lo, hi = unit.path, next_path(unit.path)
    states = [str(s) for s in OPEN_CASE_STATES]
    in_states = ", ".join(["%s"] * len(states))
    kinds = ", ".join(["%s"] * len(ALERT_KINDS))
    loop_states = ", ".join(["%s"] * len(OPEN_STATES))
    flagged = " OR ".join(f"r.{g}" for g in CARE_GROUPS)
    cases = f"c.path >= %s AND c.path < %s AND c.state IN ({in_states})"
    statements = [
        (f"SELECT c.id, c.name, c.type_id, c.start_date, c.end_date, k.slot, k.temperature, k.symptoms, k.abnormal "
         f"FROM {t['case']} c LEFT JOIN {t['checkin']} k ON k.case_id = c.id AND k.date = %s "
         f"WHERE {cases} AND c.start_date <= %s AND c.end_date >= %s ORDER BY c.path, c.id",
         [d, lo, hi, *states, d, d]),
        (f"SELECT t.id, t.day, t.result, c.id, c.name, c.unit_id, c.site_kind, c.site_address, c.site_room, "
         f"h.building, h.entrance, h.room, h.house_number FROM {t['sample']} t JOIN {t['case']} c ON c.id = t.case_id "
         f"LEFT JOIN {t['resident']} r ON r.id = c.resident_id LEFT JOIN {t['household']} h ON h.id = r.household_id "
         f"WHERE t.date = %s AND {cases}", [d, lo, hi, *states]),
        (f"SELECT s.id, s.kind, s.text, s.requested_at, l.reported_at, l.owner_user_id, c.id, c.name, l.due_at, "
         f"l.state FROM {t['service']} s JOIN {t['case']} c ON c.id = s.case_id JOIN {t['loop']} l ON l.id = s.loop_id "
         f"WHERE l.state IN ({loop_states}, 'reported') AND {cases} ORDER BY s.requested_at",
         [*[str(s) for s in OPEN_STATES], lo, hi, *states]),
        (f"SELECT l.id, l.title, l.state, l.created_at, l.ack_due_at, l.due_at FROM {t['loop']} l "
         f"WHERE l.path >= %s AND l.path < %s AND l.kind IN ({kinds}) AND l.state IN ({loop_states})",
         [lo, hi, *ALERT_KINDS, *[str(s) for s in OPEN_STATES]]),
        (f"SELECT r.id, r.unit_id FROM {t['resident']} r "
         f"WHERE r.path >= %s AND r.path < %s AND r.status = 'present' AND ({flagged})", [lo, hi]),
        (f"SELECT c.id, c.unit_id, c.resident_id, r.unit_id, r.path FROM {t['case']} c "
         f"LEFT JOIN {t['resident']} r ON r.id = c.resident_id "
         f"WHERE {cases} AND c.site_kind = 'home' AND c.start_date <= %s", [lo, hi, *states, d]),
        (f"SELECT v.id, v.resident_id, v.case_id, v.needs FROM {t['visit']} v "
         "WHERE v.path >= %s AND v.path < %s AND v.date = %s", [lo, hi, d]),
        (f"SELECT c.id, c.name, c.state, c.end_date FROM {t['case']} c "
         f"WHERE {cases} AND (c.end_date = %s OR c.state = 'release_proposed')", [lo, hi, *states, d]),
    ]
    return statements


def run(scale: str) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings
    from django.utils import timezone

    from bihuan.control import dashboard
    from bihuan.register.models import Staff

    ensure_scale(scale)
    ensure_cases()
    community, n = busiest_community()
    staff = Staff.objects.filter(unit=community).select_related("user").order_by("id").first()
    if staff is None:
        raise RuntimeError(f"community {community.name} has no staff account")
    url = f"/control/today/?unit={community.pk}"
    print(f"database: {database()}; {community.name}: {n} open cases; as {staff.user.username} ({staff.role}); "
          f"GET {url}")
    day = timezone.localdate()
    with override_settings(DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        client = Client()
        client.force_login(staff.user)
        response = client.get(url)  # warm-up
        assert response.status_code == 200, response.status_code
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        captured = list(queries.captured_queries)
        html = response.content.decode()
        shown = {"check-in rows": html.count('data-testid="checkin-'), "samples": html.count('data-testid="sample-'),
                 "service rows": html.count('data-testid="service-') - html.count('data-testid="service-state'),
                 "care grids": html.count('data-testid="care-grid-'), "alerts": html.count('data-testid="alert-')}
        times = []
        for _ in range(RENDERS):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200

        statements = raw_today(community, day)
        raw_times = []
        with connection.cursor() as cur:
            for _ in range(RENDERS + 1):
                t0 = time.perf_counter()
                dashboard.raw_counts(community.path, day)
                for sql, params in statements:
                    cur.execute(sql, params)
                    cur.fetchall()
                raw_times.append(time.perf_counter() - t0)
    seconds, baseline_seconds = statistics.median(times), statistics.median(raw_times[1:])
    print(f"{len(captured)} queries per render; shown: {shown}; median render {seconds * 1000:.1f} ms "
          f"(under {LIMIT * 1000:.0f} ms: {'yes' if seconds < LIMIT else 'NO'}); raw SQL {baseline_seconds * 1000:.1f} ms")
    for q in sorted(captured, key=lambda q: -float(q["time"]))[:12]:
        print(f"  {float(q['time']) * 1000:6.1f} ms  {q['sql'][:150]}")
    return report("control-today", scale, n, seconds,
                  "the same figures and lists as hand-written SQL (4 GROUP BYs + 8 list SELECTs) through a cursor",
                  baseline_seconds)
