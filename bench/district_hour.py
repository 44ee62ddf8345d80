"""``python -m bench district-hour``: a district's peak hour, every kind of user at once, through the real stack.

Modelled on a March 2022 morning. Locust (the library, headless, loopback only) drives gunicorn (sync workers,
``2 × cores + 1`` as in production, or ``BENCH_WORKERS``; ``BENCH_WORKER_CLASS`` / ``BENCH_THREADS`` for another
worker class) with two ``bihuan worker`` processes on the database DATABASE_URL names.

The district as it stands that morning (built untimed before the run, removed after it): a week of work behind it
(``bench.week_activity``: 50 directives with their receipts and households, pushed people, people under home
isolation with their check-ins, inspections), today's first pushed list imported through the real pipeline (the
people the community staff verify), and a district-wide directive fanned out to every household (the links the
residents open, the households the grid workers mark, the receipts the township and community staff sign).

Who does what (every write through the page a person uses — fetch the page, take its CSRF token, send the form
the way the page's HTMX sends it — or, for residents, the link with no session):

- residents open their directive link (``GET /r/<token>/``), read, and confirm (``POST``);
- grid workers open their household list for the directive and tap households reached one after another
  (``POST …/mark/households/``), and now and then their today page with its one-tap mark (``POST /today/mark/``);
- community staff work through today's pushed people (list, person, a phone call, ``POST …/save/`` with the
  outcome), record check-ins of the people under control (today page, case page, ``POST …/checkins/``), and sign
  and relay their unit's receipts;
- township staff open the directive list, sign and relay their receipts, and follow the directive's rollup;
- the commander's screens poll: the situation board, the control and push dashboards, the directive's rollup;
- a third of the way in, a 20,000-row pushed list is uploaded (the workers import it) and a second district-wide
  directive is issued (the workers fan it out).

Staff are signed in before the run, untimed: their sessions are written straight into the session table, as the
login view would write them (one load generator is one client address, and the login throttle counts failures
per address; password hashing is not what this benchmark measures). The Gunicorn helper lifts the public pages'
per-address and per-link limits (``BIHUAN_PUBLIC_RATE_PER_ADDRESS`` / ``…_PER_LINK``): every resident comes from
127.0.0.1 here, where in the field each comes from their own phone.

Users think between steps (open-loop pacing, not a closed loop firing as fast as answers come): see ``PLAN``,
``SHARES`` and the user classes for the numbers chosen, and docs/operations.md for how they map onto a real
morning. The first ``WARMUP`` seconds are not counted (every user started, every server process warm: a real
morning's server has been up for hours). The run then stops at ``target`` requests or its time limit. Then, with as many users sending as many requests per second as
the mix did, a second run asks only for the trivial page (``GET /login/``: a template, no database work) for the
baseline. JSON: ``n`` = requests of the mix, ``seconds`` = p95 of the whole mix, ``baseline_seconds`` = p95 of the
trivial page, ``ratio``, ``errors`` (failed requests of the mix: any status but 200, a redirect away from the page,
or a form that answered with its error), ``p99_max`` (the worst request type's p99), ``rate`` (requests per second
of the mix) and per type ``types`` {name: [n, p50, p95, p99, errors]}.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Gunicorn, database, database_url, ensure_scale, report

TITLE = "bench:district-hour"
MORNING_SOURCE = "bench:district-hour:morning"  # today's first list, imported before the run
PEAK_SOURCE = "bench:district-hour:peak"  # the list uploaded in the middle of the run
WORKERS = int(os.environ.get("BENCH_WORKERS") or 2 * (os.cpu_count() or 1) + 1)  # as bihuan/gunicorn_conf.py
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "sync")
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
ROOT = Path(__file__).resolve().parent.parent
WARMUP = {"tiny": 5, "demo": 30, "yaodu": 30}  # seconds of the mix (and of the baseline) run first, not counted


@dataclass(frozen=True)
class Plan:
    users: int  # simulated people at once
    target: int  # requests of the mix
    limit: int  # seconds, at most
    push_rows: int  # rows of the list uploaded mid-run
    morning_rows: int  # rows of today's first list (to verify)
    grid: int  # accounts of each kind signed in
    community: int
    township: int
    week: bool  # a week of work behind the district


PLAN = {
    "tiny": Plan(users=30, target=1_000, limit=40, push_rows=2_500, morning_rows=200, grid=8, community=4,
                 township=2, week=True),
    "demo": Plan(users=125, target=8_000, limit=300, push_rows=20_000, morning_rows=1_500, grid=80,
                 community=30, township=8, week=True),
    "yaodu": Plan(users=125, target=20_000, limit=600, push_rows=20_000, morning_rows=3_000, grid=300,
                  community=60, township=26, week=True),
}


def run(scale: str) -> dict:
    from django.contrib.auth import get_user_model

    from bench import week_activity
    from bihuan.directives import fanout, links
    from bihuan.directives.actions import do_issue_directive
    from bihuan.directives.models import Reach

    plan = PLAN[scale]
    if os.environ.get("BENCH_USERS") or os.environ.get("BENCH_LIMIT"):  # for trying other paces by hand
        from dataclasses import replace

        plan = replace(plan, users=int(os.environ.get("BENCH_USERS", plan.users)),
                       limit=int(os.environ.get("BENCH_LIMIT", plan.limit)))
    ensure_scale(scale)
    cleanup()
    commander = get_user_model().objects.get(username="commander")
    started = time.perf_counter()
    if plan.week:
        counts = week_activity.build_week(_today() - dt.timedelta(days=7), scale)
        print("the week behind: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    directive = do_issue_directive(acting_user=commander, title=TITLE, body="请居民点击确认收到。")
    fanout.run_fanout(directive)
    reach_ids = list(Reach.objects.filter(directive=directive).order_by("?").values_list("id", flat=True)[:20_000])
    accounts = _accounts(plan)
    morning = _morning_list(plan, accounts["community"], commander)
    sessions = _sessions([a for kind in accounts.values() for a in kind])
    _analyze()
    print(f"set-up (untimed): {time.perf_counter() - started:.0f} s; {morning:,} pushed people to verify")

    config = {
        "counts": _counts(plan.users),
        "directive": directive.pk, "links": [links.token_for(i) for i in reach_ids],
        "accounts": {kind: [{"username": u, "session": sessions[u]} for u in names]
                     for kind, names in accounts.items()},
        "users": plan.users, "target": plan.target, "limit": plan.limit, "warmup": WARMUP[scale],
    }
    push_file = _push_file(plan.push_rows)
    print(f"database: {database()}; {plan.users} users, up to {plan.target:,} requests or {plan.limit} s; "
          f"gunicorn -w {WORKERS} ({WORKER_CLASS}{f', {THREADS} threads' if THREADS > 1 else ''}), 2 workers; "
          f"mid-run: a {plan.push_rows:,}-row pushed list and a district-wide directive; load average "
          f"{_load()}")

    workers = [subprocess.Popen([sys.executable, "-m", "bihuan.cli", "worker", "--interval", "0.5"], cwd=ROOT,
                                env={**os.environ, "DATABASE_URL": database_url(), "BIHUAN_LOG_LEVEL": "WARNING"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    mid: dict = {}
    try:
        try:
            extra = ["--worker-class", WORKER_CLASS] + (["--threads", str(THREADS)] if THREADS > 1 else [])
            if os.environ.get("BENCH_ACCESS_LOG"):  # every request with its duration, to find where time went
                extra += ["--access-logfile", os.environ["BENCH_ACCESS_LOG"]]
            with Gunicorn(workers=WORKERS, extra_args=extra) as server:
                config["base"] = server.base
                events = threading.Timer(WARMUP[scale] + plan.limit / 3, _mid_run, args=(commander, push_file, mid))
                events.start()
                mix_started = time.time()
                cpu = _Cpu(server.process.pid, [w.pid for w in workers])
                mix = _locust(config, "mix")
                cpu.stop()
                events.cancel()
                events.join()
                print(f"  load average after the mix: {_load()}")
                seconds = min(90, max(20, plan.limit // 3))  # the trivial page's run: long enough for a stable p95
                baseline = _locust({**config, "rate": mix["rate"], "limit": seconds,
                                    "target": int(mix["rate"] * seconds) + 1}, "trivial")
                print(f"  load average after the baseline: {_load()}")
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                try:
                    w.wait(30)
                except subprocess.TimeoutExpired:
                    w.kill()
            _end_sessions(sessions.values())
    except BaseException:
        cleanup()  # what the run left, whatever stopped it
        raise

    cores = os.cpu_count() or 1
    print(f"  CPU seconds during the mix and its warm-up ({cpu.wall:.0f} s, {cores} cores = {cores * cpu.wall:.0f}): "
          f"{cpu.summary()}")
    if mid:
        print(f"  mid-run {mid.pop('at') - mix_started - WARMUP[scale]:.0f} s into the measured part: "
              + ", ".join(f"{k} {v}" for k, v in mid.items()))
    for name, (n, p50, p95, p99, errors) in sorted(mix["types"].items()):
        print(f"  {name:<34} n={n:>6}  p50={p50 * 1000:7.0f} ms  p95={p95 * 1000:7.0f} ms  p99={p99 * 1000:7.0f} ms"
              f"  errors={errors}")
    for sample in mix.get("failures", [])[:10]:
        print(f"  failure: {sample}")
    print(f"  {'trivial GET /login/':<34} n={baseline['n']:>6}  p95={baseline['p95'] * 1000:7.0f} ms "
          f"({baseline['rate']:.1f} requests/s against the mix's {mix['rate']:.1f})")
    cleanup()  # before the JSON line, which stays the last one printed
    p99_max = max(row[3] for row in mix["types"].values())
    return report("district-hour", scale, mix["n"], mix["p95"],
                  f"GET /login/ at the same concurrency ({plan.users} users, {mix['rate']:.0f} requests/s)",
                  baseline["p95"], errors=mix["errors"], p99_max=round(p99_max, 3), rate=round(mix["rate"], 1),
                  types={k: [v[0], round(v[1], 3), round(v[2], 3), round(v[3], 3), v[4]]
                         for k, v in sorted(mix["types"].items())})


class _Cpu:
    """CPU seconds spent during the mix by the web server, the workers, the load generator and everything else
    on the machine (it is shared: what the others took is what this run did not get)."""

    def __init__(self, server_pid: int, worker_pids: list[int]):
        self.server_pid, self.worker_pids = server_pid, worker_pids
        self.backends = self._backends()
        self.start = (time.monotonic(), self._tree(server_pid), self._sum(worker_pids), self._children(),
                      self._machine(), {pid: self._sum([pid]) for pid in self.backends})

    @staticmethod
    def _backends() -> set[int]:
        """PostgreSQL's server processes working for this database (its connections)."""
        from django.db import connection

        if connection.vendor != "postgresql":
            return set()
        with connection.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            return {pid for (pid,) in cur.fetchall()}

    @staticmethod
    def _sum(pids: list[int]) -> float:
        import psutil  # Locust's own dependency

        total = 0.0
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def _tree(self, pid: int) -> float:
        import psutil

        try:
            return self._sum([pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)])
        except psutil.NoSuchProcess:
            return 0.0

    @staticmethod
    def _children() -> float:
        import resource

        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    @staticmethod
    def _machine() -> float:
        import psutil

        t = psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)

    def stop(self) -> None:
        t0, web, workers, children, machine, backends = self.start
        self.wall = time.monotonic() - t0
        self.web = self._tree(self.server_pid) - web
        self.workers = self._sum(self.worker_pids) - workers
        self.locust = self._children() - children
        self.machine = self._machine() - machine
        now = self._backends() | set(backends)
        self.database = sum(self._sum([pid]) - backends.get(pid, 0.0) for pid in now)  # those still there

    def summary(self) -> str:
        database = f"PostgreSQL (this database's connections) {self.database:.0f}, " if self.backends else ""
        others = self.machine - self.web - self.workers - self.locust - self.database
        return (f"gunicorn {self.web:.0f}, bihuan workers {self.workers:.0f}, {database}Locust {self.locust:.0f}, "
                f"the rest of the machine {max(others, 0):.0f}")


# Users of each kind, of 125: with their pace (bench/district_hour_users.py) they send about 40 requests a second,
# residents ~64 %, grid workers ~31 %, community staff ~4 %, township staff ~2 %, the commander's screens ~1 % —
# the shares of a real morning's requests (docs/operations.md, "A district's peak hour").
SHARES = {"resident": 71, "grid": 43, "community": 7, "township": 3, "commander": 1}


def _counts(users: int) -> dict[str, int]:
    """Users of each kind for ``users`` in all: the shares of ``SHARES``, at least one of each (residents take
    what rounding leaves)."""
    total = sum(SHARES.values())
    counts = {kind: max(1, round(users * share / total)) for kind, share in SHARES.items() if kind != "resident"}
    counts["resident"] = max(1, users - sum(counts.values()))
    return counts


def _today() -> dt.date:
    from django.utils import timezone

    return timezone.localdate()


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # not Linux
        return "?"


def _analyze() -> None:
    """Fresh planner statistics after the set-up's bulk writes (what autovacuum on PostgreSQL and the worker's
    ``core.statistics`` on SQLite give a running district)."""
    from django.db import connection

    from bihuan.core.statistics import analyze_sqlite

    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    else:
        analyze_sqlite(force=True)


# --- the district that morning ------------------------------------------------------------------------------

def _accounts(plan: Plan) -> dict[str, list[str]]:
    """Who is signed in: grid workers spread over the district, community staff of the communities with people
    under control, every township's staff, the commander."""
    from django.db.models import Count

    from bench.week_activity import MARK
    from bihuan.control.models import ControlCase
    from bihuan.core.roles import Role
    from bihuan.register.models import Staff, Unit

    def spread(role, n, units=None):
        qs = Staff.objects.filter(role=role, user__is_active=True)
        if units is not None:
            qs = qs.filter(unit_id__in=units)
        names = list(qs.order_by("unit__path").values_list("user__username", flat=True))
        step = max(1, len(names) // n) if names else 1
        return names[::step][:n]

    busy = {}
    for path, n in (ControlCase.objects.filter(protocol_name=MARK).values_list("path").annotate(n=Count("id"))
                    .order_by()):
        busy[path[:16]] = busy.get(path[:16], 0) + n  # level 4: four 4-character segments
    communities = list(Unit.objects.filter(level=4, path__in=sorted(busy, key=busy.get, reverse=True))
                       .values_list("id", flat=True))
    return {
        "grid": spread(Role.GRID_WORKER, plan.grid),
        "community": spread(Role.COMMUNITY_STAFF, plan.community, communities or None),
        "township": spread(Role.TOWNSHIP_STAFF, plan.township),
        "commander": ["commander"],
    }


def _morning_list(plan: Plan, community_staff: list[str], commander) -> int:
    """Today's first pushed list, imported through the real pipeline before the run: people living in the
    signed-in community staff's communities, routed and each with a verification loop. Returns people made."""
    import csv
    import io

    from bihuan.core.personal import id_checksum
    from bihuan.pushes.importing import create_batch, process_batch
    from bihuan.pushes.models import PushedPerson
    from bihuan.register.models import Household, Staff, Unit, subtree_q

    units = Unit.objects.filter(pk__in=Staff.objects.filter(user__username__in=community_staff).values("unit_id"))
    where = subtree_q(units[0].path) if units else None
    for u in list(units)[1:]:
        where |= subtree_q(u.path)
    households = Household.objects.filter(where) if where is not None else Household.objects.all()
    addresses = list(households.order_by("id").values_list("address", flat=True))
    addresses = addresses[:: max(1, len(addresses) // plan.morning_rows)]  # spread over the communities
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "身份证号", "手机号", "来源地", "抵达时间", "现住址"])
    for i in range(plan.morning_rows):
        body = f"130103{1950 + i % 60}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
        writer.writerow([_name(i), body + id_checksum(body), f"139{i:08d}", "上海市浦东新区",
                         _today().isoformat(), addresses[i % len(addresses)]])
    district = Unit.objects.get(parent__isnull=True)
    batch = create_batch(out.getvalue().encode("utf-8"), "今日推送-早.csv", source=MORNING_SOURCE, unit=district,
                         acting_user=commander)
    if batch.state != "done":
        batch = process_batch(batch)
    assert batch.state == "done", (batch.state, batch.error)
    return PushedPerson.objects.filter(first_batch=batch).count()


SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力鹏飞宇浩然晨阳志"


def _name(i: int) -> str:
    """A distinct name for each ``i`` below 20 · 40 · 40 = 32,000 (a name is letters only)."""
    return SURNAMES[i % 20] + GIVEN[i // 20 % 40] + GIVEN[i // 800 % 40]


def _sessions(usernames: list[str]) -> dict[str, str]:
    """A signed-in session for each account, written as ``django.contrib.auth.login`` and ``login.stamp_session``
    write it (the benchmark does not time signing in)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model

    store = import_module(settings.SESSION_ENGINE).SessionStore
    backend = settings.AUTHENTICATION_BACKENDS[0]
    now = time.time()
    out = {}
    for user in get_user_model().objects.filter(username__in=usernames):
        session = store()
        session[SESSION_KEY] = user._meta.pk.value_to_string(user)
        session[BACKEND_SESSION_KEY] = backend
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session["bihuan_login_at"] = session["bihuan_seen_at"] = now
        session.create()
        out[user.username] = session.session_key
    missing = set(usernames) - set(out)
    assert not missing, f"no such accounts: {sorted(missing)[:5]}"
    return out


def _end_sessions(keys) -> None:
    from django.contrib.sessions.models import Session

    Session.objects.filter(session_key__in=list(keys)).delete()


def cleanup() -> None:
    """Remove what a run (or one cut short) left: its directives, both pushed lists, the week behind it."""
    from bench import week_activity
    from bench.fanout import cleanup as remove_directive

    remove_directive(TITLE)
    remove_directive(TITLE + ":mid-run")
    _remove_lists([MORNING_SOURCE, PEAK_SOURCE])
    week_activity.cleanup()


def _remove_lists(sources: list[str]) -> None:
    """The pushed people of the lists from ``sources`` with their verifications, loops and rows (set-based)."""
    from django.db import connection, transaction

    from bihuan.checkpoints.models import SelfReport, Traveller
    from bihuan.control.models import ControlCase
    from bihuan.loops.models import Loop, LoopEvent
    from bihuan.pushes.models import (
        TRANSFER,
        VERIFICATION,
        Evidence,
        PushBatch,
        PushedPerson,
        PushRow,
        Transfer,
        Verification,
    )

    q = connection.ops.quote_name

    def t(model) -> str:
        return q(model._meta.db_table)

    marks = ", ".join(["%s"] * len(sources))
    batches = f"SELECT id FROM {t(PushBatch)} WHERE source IN ({marks})"
    people = f"SELECT id FROM {t(PushedPerson)} WHERE first_batch_id IN ({batches})"
    transfers = f"SELECT id FROM {t(Transfer)} WHERE person_id IN ({people})"
    loops = (f"SELECT id FROM {t(Loop)} WHERE (kind = %s AND subject_id IN ({people})) "
             f"OR (kind = %s AND subject_id IN ({transfers}))")
    loop_params = [VERIFICATION, *sources, TRANSFER, *sources]
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"DELETE FROM {t(LoopEvent)} WHERE loop_id IN ({loops})", loop_params)
        cur.execute(f"DELETE FROM {t(Verification)} WHERE person_id IN ({people})", sources)
        cur.execute(f"DELETE FROM {t(Transfer)} WHERE person_id IN ({people})", sources)
        cur.execute(f"DELETE FROM {t(Loop)} WHERE id IN ({loops})", loop_params)
        cur.execute(f"DELETE FROM {t(Evidence)} WHERE person_id IN ({people})", sources)
        for model in (ControlCase, SelfReport, Traveller):
            if any(f.name == "pushed_person" for f in model._meta.fields):
                cur.execute(f"UPDATE {t(model)} SET pushed_person_id = NULL WHERE pushed_person_id IN ({people})",
                            sources)
        cur.execute(f"DELETE FROM {t(PushRow)} WHERE batch_id IN ({batches})", sources)
        cur.execute(f"DELETE FROM {t(PushedPerson)} WHERE first_batch_id IN ({batches})", sources)
        cur.execute(f"DELETE FROM {t(PushBatch)} WHERE source IN ({marks})", sources)


def _push_file(rows: int) -> bytes:
    import csv
    import io

    from bihuan.core.personal import id_checksum
    from bihuan.register.models import Household

    addresses = list(Household.objects.order_by("id").values_list("address", flat=True)[:rows])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "身份证号", "手机号", "来源地", "抵达时间", "现住址"])
    stamp = int(time.time())
    for i in range(rows):
        body = f"130102{1950 + i % 60}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
        writer.writerow([_name(5_000 + i), body + id_checksum(body), f"137{(stamp + i) % 10**8:08d}", "河北省石家庄市",
                         "2022-03-05", addresses[i % len(addresses)]])
    return out.getvalue().encode("gbk")


def _mid_run(commander, push_file: bytes, out: dict) -> None:
    """The push list and the district-wide directive, sent while the users work (their work: the workers')."""
    from django.db import connection

    from bihuan.directives.actions import do_issue_directive
    from bihuan.pushes.importing import create_batch
    from bihuan.register.models import Unit

    start = time.perf_counter()
    out["at"] = time.time()
    try:
        district = Unit.objects.get(parent__isnull=True)
        batch = create_batch(push_file, f"peak-{int(time.time())}.csv", source=PEAK_SOURCE, unit=district,
                             acting_user=commander)
        directive = do_issue_directive(acting_user=commander, title=TITLE + ":mid-run", body="全区今日核酸检测安排。")
        out.update(batch=batch.pk, directive=directive.pk, sent_in=f"{time.perf_counter() - start:.1f} s")
    finally:
        connection.close()


def _locust(config: dict, phase: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({**config, "phase": phase}, f)
    try:
        done = subprocess.run([sys.executable, "-c", f"from bench.district_hour_users import main; main({f.name!r})"],
                              cwd=ROOT, capture_output=True, text=True,
                              timeout=config["warmup"] + config["limit"] + 180)
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        raise RuntimeError(f"locust ({phase}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])

