"""``python -m bench district-hour``: a district's peak hour, every kind of user at once, through the real stack.

Modelled on a March 2022 morning. Locust (the library, headless, loopback only) drives gunicorn (``-w 2``,
or ``BENCH_WORKERS``) with two ``bihuan worker`` processes on the database DATABASE_URL names:

- residents open and confirm their directive links (``/r/<token>/``, GET then POST, no session);
- grid workers open their home page (their households) and today's list;
- community staff open the pushed people's list and their today page;
- township staff open the directive list and a directive's live rollup;
- the commander's pages poll: the control dashboard, the push dashboard, a directive's rollup;
- in the middle of the run a pushed list of 20,000 rows is uploaded (imported by the workers) and a
  district-wide directive is issued (fanned out by the workers).

Staff log in once each (untimed, before the run). The run stops at ``n`` requests or its time limit. Then, at
the same concurrency, a second run asks only for the trivial page (``GET /login/``: a template, no database
work) for the baseline. JSON: ``n`` = requests of the mix, ``seconds`` = p95 of the whole mix,
``baseline_seconds`` = p95 of the trivial page, ``ratio``, ``errors`` (failed requests of the mix),
``p99_max`` (the worst request type's p99) and per type ``types`` {name: [n, p50, p95, p99, errors]}.

Not yet in the mix: writes by staff (grid workers marking households, verifying pushed people, check-ins,
signing receipts): their forms need per-page tokens the script does not model yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import Gunicorn, database, database_url, ensure_scale, report

TITLE = "bench:district-hour"
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
PLAN = {  # users, target requests, time limit (s), rows in the pushed list
    "tiny": (40, 1_500, 25, 2_500),
    "demo": (150, 8_000, 120, 20_000),
    "yaodu": (300, 20_000, 300, 20_000),
}
ROOT = Path(__file__).resolve().parent.parent


def run(scale: str) -> dict:
    from django.contrib.auth import get_user_model

    from bench.fanout import cleanup
    from bihuan.core.roles import Role
    from bihuan.demo import PASSWORD
    from bihuan.directives import fanout, links
    from bihuan.directives.actions import do_issue_directive
    from bihuan.directives.models import Reach
    from bihuan.register.models import Staff

    users, target, limit, push_rows = PLAN[scale]
    ensure_scale(scale)
    cleanup(TITLE)
    commander = get_user_model().objects.get(username="commander")
    directive = do_issue_directive(acting_user=commander, title=TITLE, body="请居民点击确认收到。")
    fanout.run_fanout(directive)
    reach_ids = list(Reach.objects.filter(directive=directive).order_by("?").values_list("id", flat=True)[:20_000])

    def people(role, n):
        return list(Staff.objects.filter(role=role, user__is_active=True).order_by("id")
                    .values_list("user__username", flat=True)[:n])

    config = {
        "password": PASSWORD, "directive": directive.pk,
        "links": [links.token_for(i) for i in reach_ids],
        "grid": people(Role.GRID_WORKER, 60), "community": people(Role.COMMUNITY_STAFF, 30),
        "township": people(Role.TOWNSHIP_STAFF, 15), "commander": ["commander"],
        "users": users, "target": target, "limit": limit,
    }
    push_file = _push_file(push_rows)
    print(f"database: {database()}; {users} users, up to {target:,} requests or {limit} s; gunicorn -w {WORKERS}, "
          f"2 workers; mid-run: a {push_rows:,}-row pushed list and a district-wide directive")

    workers = [subprocess.Popen([sys.executable, "-m", "bihuan.cli", "worker", "--interval", "0.5"], cwd=ROOT,
                                env={**os.environ, "DATABASE_URL": database_url(), "BIHUAN_LOG_LEVEL": "WARNING"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        with Gunicorn(workers=WORKERS) as server:
            config["base"] = server.base
            events = threading.Timer(limit / 3, _mid_run, args=(commander, push_file))
            events.start()
            mix = _locust(config, "mix")
            events.join()
            baseline = _locust(config, "trivial")
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(30)
        cleanup(TITLE)
        cleanup(TITLE + ":mid-run")

    for name, (n, p50, p95, p99, errors) in sorted(mix["types"].items()):
        print(f"  {name:<28} n={n:>6}  p50={p50 * 1000:7.0f} ms  p95={p95 * 1000:7.0f} ms  p99={p99 * 1000:7.0f} ms"
              f"  errors={errors}")
    print(f"  {'trivial GET /login/':<28} n={baseline['n']:>6}  p95={baseline['p95'] * 1000:7.0f} ms")
    p99_max = max(row[3] for row in mix["types"].values())
    return report("district-hour", scale, mix["n"], mix["p95"], f"GET /login/ at the same concurrency "
                  f"({users} users)", baseline["p95"], errors=mix["errors"], p99_max=round(p99_max, 3),
                  types={k: [v[0], round(v[1], 3), round(v[2], 3), round(v[3], 3), v[4]]
                         for k, v in sorted(mix["types"].items())})


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
        writer.writerow([f"高峰{i}", body + id_checksum(body), f"137{(stamp + i) % 10**8:08d}", "河北省石家庄市",
                         "2022-03-05", addresses[i % len(addresses)]])
    return out.getvalue().encode("gbk")


def _mid_run(commander, push_file: bytes) -> None:
    """The push list and the district-wide directive, sent while the users work (their work: the workers')."""
    from django.db import connection

    from bihuan.directives.actions import do_issue_directive
    from bihuan.pushes.importing import create_batch
    from bihuan.register.models import Unit

    try:
        district = Unit.objects.get(parent__isnull=True)
        create_batch(push_file, f"peak-{int(time.time())}.csv", source="省大数据局", unit=district,
                     acting_user=commander)
        do_issue_directive(acting_user=commander, title=TITLE + ":mid-run", body="全区今日核酸检测安排。")
    finally:
        connection.close()


def _locust(config: dict, phase: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({**config, "phase": phase}, f)
    done = subprocess.run([sys.executable, "-c", f"from bench.district_hour import locust_main; "
                           f"locust_main({f.name!r})"], cwd=ROOT, capture_output=True, text=True,
                          timeout=config["limit"] + 180)
    os.unlink(f.name)
    if done.returncode != 0:
        raise RuntimeError(f"locust ({phase}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the Locust side: runs in its own process (gevent patches the standard library) -----------------------

def locust_main(path: str) -> None:
    import gevent
    from locust import HttpUser, between, constant, task
    from locust.env import Environment

    config = json.loads(Path(path).read_text())
    links = iter(config["links"] * 10)
    directive = config["directive"]
    trivial = config["phase"] == "trivial"

    class Staff(HttpUser):
        abstract = True
        host = config["base"]
        wait_time = between(0.5, 2.5)
        pool: list[str] = []

        def on_start(self):
            if trivial or not self.pool:
                return
            username = self.pool[hash(id(self)) % len(self.pool)]
            self.client.get("/login/", name="(login)")
            token = self.client.cookies.get("csrftoken", "")
            self.client.post("/login/", data={"username": username, "password": config["password"],
                                              "csrfmiddlewaretoken": token}, name="(login)")

    if trivial:
        class Trivial(HttpUser):
            host = config["base"]
            wait_time = between(0.5, 2.5)

            @task
            def login_page(self):
                self.client.get("/login/", name="trivial")

        classes = [Trivial]
    else:
        class Resident(HttpUser):
            weight = 12
            host = config["base"]
            wait_time = between(0.5, 2.5)

            @task
            def confirm(self):
                token = next(links)
                self.client.get(f"/r/{token}/", name="resident: open link")
                self.client.post(f"/r/{token}/", name="resident: confirm")

        class Grid(Staff):
            weight = 8
            pool = config["grid"]

            @task(3)
            def households(self):
                self.client.get("/", name="grid: my households")

            @task(1)
            def today(self):
                self.client.get("/today/", name="grid: today")

        class Community(Staff):
            weight = 4
            pool = config["community"]

            @task(2)
            def pushed(self):
                self.client.get("/pushes/", name="community: pushed people")

            @task(1)
            def today(self):
                self.client.get("/today/", name="community: today")

        class Township(Staff):
            weight = 2
            pool = config["township"]

            @task(1)
            def directives(self):
                self.client.get("/directives/", name="township: directives")

            @task(2)
            def rollup(self):
                self.client.get(f"/directives/{directive}/", name="township: directive rollup")

        class Commander(Staff):
            weight = 1
            pool = config["commander"]
            wait_time = constant(2)  # the wall display polls

            @task(1)
            def control(self):
                self.client.get("/control/dashboard/", name="commander: control dashboard")

            @task(1)
            def pushes(self):
                self.client.get("/pushes/dashboard/", name="commander: push dashboard")

            @task(1)
            def rollup(self):
                self.client.get(f"/directives/{directive}/", name="commander: directive rollup")

        classes = [Resident, Grid, Community, Township, Commander]

    env = Environment(user_classes=classes)
    runner = env.create_local_runner()
    runner.start(config["users"], spawn_rate=max(10, config["users"] // 5))
    deadline = time.monotonic() + config["limit"]
    while time.monotonic() < deadline:
        counted = env.stats.total.num_requests - sum(
            e.num_requests for k, e in env.stats.entries.items() if k[0] == "(login)")
        if counted >= config["target"]:
            break
        gevent.sleep(0.5)
    runner.quit()
    types = {}
    for (name, _method), entry in env.stats.entries.items():
        if name == "(login)":
            continue
        row = types.setdefault(name, [0, 0.0, 0.0, 0.0, 0])
        row[0] += entry.num_requests
        row[1] = max(row[1], entry.get_response_time_percentile(0.5) / 1000)
        row[2] = max(row[2], entry.get_response_time_percentile(0.95) / 1000)
        row[3] = max(row[3], entry.get_response_time_percentile(0.99) / 1000)
        row[4] += entry.num_failures
    # The whole mix's p95, over every request but the logins (one histogram of all the timed entries).
    from locust.stats import StatsEntry

    total = StatsEntry(env.stats, "mix", "")
    for (name, _method), entry in env.stats.entries.items():
        if name != "(login)":
            total.extend(entry)
    logins = env.stats.entries.get(("(login)", "POST"))
    print(json.dumps({"n": total.num_requests, "p95": total.get_response_time_percentile(0.95) / 1000,
                      "errors": total.num_failures, "types": types,
                      "login_failures": logins.num_failures if logins else 0}))
