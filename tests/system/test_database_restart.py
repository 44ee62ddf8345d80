"""PostgreSQL restarted under load: nothing lost, nothing doubled, no error page once it is back.

A throwaway PostgreSQL cluster (Debian's ``pg_createcluster``, its own port) holds the generated ``tiny``
district (``BIHUAN_FAULT_PRESET=demo`` for ~6,800 households). Against it run gunicorn (two processes) and two ``bihuan worker`` processes, with
work in flight: a district-wide directive fanning out in small chunks, a pushed list of 4,000 rows being
imported, and reminder rounds due on the receipt loops; residents keep opening and confirming their directive
links over HTTP. In the middle, the cluster is restarted (``pg_ctlcluster … restart -m fast``: every
connection is cut). Afterwards:

- every request sent once the database is back is answered without a 5xx;
- the work resumes at once (the workers end their own leases after the lost connection and claim again) and
  finishes within a minute of the restart: every household has exactly one reach row, every row of the list
  exactly one result, every due loop exactly one reminder;
- a confirmation that was answered 200 is in the database, once.

Runs where a cluster can be made (root, postgresql-common): in CI's scale-out step, with
``BIHUAN_FAULT_TESTS=1``. It needs no pytest-django database: everything goes through subprocesses and psycopg.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from .conftest import ROOT, Gunicorn, Worker

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.environ.get("BIHUAN_FAULT_TESTS") != "1", reason="set BIHUAN_FAULT_TESTS=1 (CI does)"),
    pytest.mark.skipif(shutil.which("pg_createcluster") is None or os.geteuid() != 0,
                       reason="needs root and Debian's postgresql-common"),
]

CLUSTER = "bihuan_fault"
PORT = int(os.environ.get("BIHUAN_FAULT_PORT", "5434"))
DATABASE = "bihuan_fault"
URL = f"postgres://postgres@127.0.0.1:{PORT}/{DATABASE}"
PRESET = os.environ.get("BIHUAN_FAULT_PRESET", "tiny")  # "demo" (~6,800 households) for a longer run
PUSH_ROWS = 4000  # more than an upload processes itself: the workers' job
FANOUT_CHUNK = 1  # household ids per fan-out transaction: a commit per household, so the restart cuts one
RESUME_WITHIN = 60.0
TIGHT = f"/tmp/bihuan-fault-disk-{PORT}"  # a small tmpfs: the tablespace that fills up


def pg_version() -> str:
    return sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])[-1]


def ctl(*args: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), CLUSTER, *args], check=True,
                   capture_output=True)


def ready(timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(PORT)]).returncode != 0:
        assert time.monotonic() < deadline, "the cluster did not come up"
        time.sleep(0.1)


def drop_cluster() -> None:
    subprocess.run(["pg_dropcluster", "--stop", pg_version(), CLUSTER], capture_output=True)


@pytest.fixture(scope="module")
def cluster():
    drop_cluster()
    version = pg_version()
    subprocess.run(["pg_createcluster", version, CLUSTER, "-p", str(PORT), "--", "--auth=trust"], check=True,
                   capture_output=True)
    conf = Path(f"/etc/postgresql/{version}/{CLUSTER}/postgresql.conf")
    conf.write_text(conf.read_text() + "\nlisten_addresses = '127.0.0.1'\nfsync = off\nmax_connections = 100\n")
    ctl("start")
    ready()
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres", "-qc",
                    f"CREATE DATABASE {DATABASE}"], check=True, capture_output=True)
    yield URL
    drop_cluster()
    if os.path.ismount(TIGHT):
        subprocess.run(["umount", TIGHT], check=False)


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, "BIHUAN_DEMO": "1", "BIHUAN_DEBUG": "false", "DATABASE_URL": URL,
           "DJANGO_SETTINGS_MODULE": "bihuan.settings", "BIHUAN_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    for name in ("BIHUAN_SMTP_HOST", "BIHUAN_SMS_URL", "DATABASE_REPLICA_URL"):
        out.pop(name, None)
    out.update(extra)
    return out


SETUP = r'''
import csv, io, json, random
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.utils import timezone
from bihuan.core.personal import id_checksum
from bihuan.demo.generate import generate_district
from bihuan.directives import fanout, links
from bihuan.directives.actions import do_issue_directive
from bihuan.directives.models import RECEIPT, Reach
from bihuan.loops.models import Loop
from bihuan.pushes.importing import create_batch
from bihuan.register.models import Household, Unit

generate_district(PRESET, seed=1, out=lambda line: None)
commander = get_user_model().objects.get(username="commander")
district = Unit.objects.get(parent__isnull=True)

# Fanned out now: the residents' links the HTTP load opens and confirms.
tapped = do_issue_directive(acting_user=commander, title="已下发", body="请确认收到。")
fanout.run_fanout(tapped)
reach_ids = list(Reach.objects.filter(directive=tapped).order_by("id").values_list("id", flat=True))
# Left to the workers: fan-out, reminders, a pushed list.
fanout.INLINE_LIMIT = 0
pending = do_issue_directive(acting_user=commander, title="重启中下发", body="请确认收到。", reminder_minutes=30,
                             reminder_limit=2)
due = Loop.objects.filter(kind=RECEIPT, subject_id=tapped.pk)
due.update(next_reminder_at=timezone.now())
rng = random.Random(1)
addresses = list(Household.objects.order_by("id").values_list("address", flat=True))
out = io.StringIO()
writer = csv.writer(out)
writer.writerow(["姓名", "身份证号", "手机号", "来源地", "抵达时间", "现住址"])
for i in range(ROWS):
    body = f"110101{1950 + i % 60}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    writer.writerow([f"推送{i}", body + id_checksum(body), f"139{rng.randrange(10**8):08d}", "北京市朝阳区",
                     "2022-03-05", addresses[i % len(addresses)]])
batch = create_batch(out.getvalue().encode("gbk"), "list.csv", source="省大数据局", unit=district,
                     acting_user=commander)
print(json.dumps({"tapped": tapped.pk, "pending": pending.pk, "batch": batch.pk, "batch_state": batch.state,
                  "households": Household.objects.count(), "reminded_loops": list(due.values_list("id", flat=True)),
                  "links": [links.token_for(i) for i in reach_ids[:400]]}))
'''


class Load:
    """Residents opening (GET) and confirming (POST) their links, from 4 threads, until stopped."""

    def __init__(self, base: str, tokens: list[str]):
        self.base, self.tokens = base, list(tokens)
        self.results: list[tuple[float, str, str, int]] = []  # (start, method, token, status or 0 = no answer)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(4)]

    def _run(self, k: int) -> None:
        mine = self.tokens[k::4]
        i = 0
        while not self.stop.is_set():
            token = mine[i % len(mine)]  # round and round: a repeated confirmation is answered like the first
            for method in ("GET", "POST"):
                started = time.monotonic()
                request = urllib.request.Request(f"{self.base}/r/{token}/", method=method,
                                                 data=b"" if method == "POST" else None)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                        status = response.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                except OSError:
                    status = 0
                with self.lock:
                    self.results.append((started, method, token, status))
            i += 1
            time.sleep(0.02)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def scalar(sql: str, params=()):
    with psycopg.connect(URL.replace("postgres://", "postgresql://"), autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchone()


def progress(ids) -> tuple:
    return scalar("SELECT (SELECT fanout_cursor FROM directives_directive WHERE id = %s),"
                  " (SELECT rows_done FROM pushes_pushbatch WHERE id = %s),"
                  " (SELECT state FROM pushes_pushbatch WHERE id = %s)", [ids["pending"], ids["batch"], ids["batch"]])


def finished(ids) -> bool:
    row = scalar(
        "SELECT (SELECT fanout_state FROM directives_directive WHERE id = %s) = 'done',"
        " (SELECT state FROM pushes_pushbatch WHERE id = %s) = 'done',"
        " NOT EXISTS (SELECT 1 FROM loops_loop WHERE id = ANY(%s) AND next_reminder_at <= now()"
        "             AND state IN ('issued', 'acknowledged', 'in_progress'))",
        [ids["pending"], ids["batch"], ids["reminded_loops"]])
    return all(row)


def test_a_database_restart_under_load_loses_and_doubles_nothing(cluster):
    started = time.monotonic()
    setup = subprocess.run([sys.executable, "-c", SETUP.replace("ROWS", str(PUSH_ROWS)).replace("PRESET", repr(PRESET))], cwd=ROOT, env=env(),
                           capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stderr[-3000:]
    ids = json.loads(setup.stdout.strip().splitlines()[-1])
    assert ids["batch_state"] == "pending"  # large enough to be the workers' job
    print(f"\nset up in {time.monotonic() - started:.1f} s: {ids['households']} households")

    server = Gunicorn(2, **{k: v for k, v in env().items() if k in ("DATABASE_URL", "DATABASE_REPLICA_URL")})
    workers = [Worker(env(BIHUAN_FANOUT_CHUNK=str(FANOUT_CHUNK)), interval=0.2) for _ in range(2)]
    try:
        with Load(server.base, ids["links"]) as load:
            # Wait until the fan-out is under way, then cut every connection.
            deadline = time.monotonic() + 60
            while not ((progress(ids)[0] or 0) > 0 and (progress(ids)[1] or 0) > 0):
                assert time.monotonic() < deadline, f"the fan-out and the import did not start: {progress(ids)}"
                time.sleep(0.02)
            at_restart = progress(ids)
            ctl("restart", "-m", "fast")
            ready()
            back = time.monotonic()
            deadline = back + RESUME_WITHIN
            while not finished(ids):
                assert time.monotonic() < deadline, f"not finished {RESUME_WITHIN:.0f} s after the restart: " \
                                                    f"{progress(ids)}\n{workers[0].output()}"
                assert all(w.alive() for w in workers), "a worker died:\n" + workers[0].output()
                time.sleep(0.2)
            resumed = time.monotonic() - back
            time.sleep(2)  # requests after the restart, at leisure
        print(f"\nat restart: fan-out cursor {at_restart[0]}, push rows {at_restart[1]} ({at_restart[2]}); "
              f"finished {resumed:.1f} s after the database was back; {len(load.results)} requests")

        # No error page once the database is back (requests sent during the restart may fail: it is down).
        late = [r for r in load.results if r[0] > back + 1.0]
        assert late, "no requests after the restart"
        bad = [r for r in late if r[3] >= 500 or r[3] == 0]
        assert not bad, f"{len(bad)} failed requests after the restart, e.g. {bad[:3]}\n{server.output()}"
        assert {r[3] for r in late} <= {200, 302, 303}, {r[3] for r in late}

        # Nothing lost, nothing doubled.
        reach, distinct = scalar("SELECT count(*), count(DISTINCT household_id) FROM directives_reach"
                                 " WHERE directive_id = %s", [ids["pending"]])
        assert reach == distinct == ids["households"]
        rows, distinct_rows, total = scalar(
            "SELECT count(*), count(DISTINCT row_number), (SELECT rows_total FROM pushes_pushbatch WHERE id = %s)"
            " FROM pushes_pushrow WHERE batch_id = %s", [ids["batch"], ids["batch"]])
        assert rows == distinct_rows == total == PUSH_ROWS
        reminded = scalar("SELECT count(*), count(DISTINCT loop_id) FROM loops_loopevent"
                          " WHERE loop_id = ANY(%s) AND action = 'reminded'", [ids["reminded_loops"]])
        assert reminded[0] == reminded[1] == len(ids["reminded_loops"])
        # Every confirmation answered as done is in the database (the link's reach row reached, by the resident).
        confirmed = {int(r[2].split("-")[0]) for r in load.results if r[1] == "POST" and r[3] in (200, 302, 303)}
        assert confirmed
        stored = scalar("SELECT count(*) FROM directives_reach WHERE id = ANY(%s) AND status = 'reached'",
                        [sorted(confirmed)])[0]
        assert stored == len(confirmed)
        held = scalar("SELECT (SELECT count(*) FROM directives_directive WHERE locked_until > now()) +"
                      " (SELECT count(*) FROM pushes_pushbatch WHERE locked_until > now())")[0]
        assert held == 0
    finally:
        for w in workers:
            w.kill()
        server.stop()


IMPORT = r'''
import csv, io, json, sys
import django
django.setup()
from django.contrib.auth import get_user_model
from bihuan.core.personal import id_checksum
from bihuan.pushes.importing import create_batch, process_batch
from bihuan.pushes.models import PushBatch
from bihuan.register.models import Household, Unit

out = io.StringIO()
writer = csv.writer(out)
writer.writerow(["姓名", "身份证号", "手机号", "来源地", "抵达时间", "现住址"])
addresses = list(Household.objects.order_by("id").values_list("address", flat=True))
for i in range(ROWS):
    body = f"120101{1950 + i % 60}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    writer.writerow([f"满盘{i}", body + id_checksum(body), f"138{i:08d}", "天津市和平区", "2022-03-06",
                     addresses[i % len(addresses)]])
commander = get_user_model().objects.get(username="commander")
batch = create_batch(out.getvalue().encode("gbk"), "full.csv", source="市大数据局",
                     unit=Unit.objects.get(parent__isnull=True), acting_user=commander)
batch = process_batch(batch)
print(json.dumps({"batch": batch.pk, "state": batch.state, "error": batch.error, "rows_done": batch.rows_done,
                  "rows_total": batch.rows_total}))
'''
FULL_ROWS = 8000  # four chunks of 2,000: the disk fills during the second or third


def import_list() -> dict:
    run = subprocess.run([sys.executable, "-c", IMPORT.replace("ROWS", str(FULL_ROWS))], cwd=ROOT, env=env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_full_disk_during_an_import_says_so_and_loses_nothing_committed(cluster):
    """The most real full disk that needs no spare partition: the pushed-list tables moved to a tablespace on a
    tmpfs of a few MB, so PostgreSQL itself fails to extend their files (``could not extend file …: No space
    left on device``, SQLSTATE 53100) part way through a list."""
    tables = ("pushes_pushrow", "pushes_pushedperson")
    os.makedirs(TIGHT, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", TIGHT], check=True)
    shutil.chown(TIGHT, "postgres", "postgres")
    with psycopg.connect(URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('pushes_pushrow')").fetchone()[0] is None:
            pytest.skip("the restart test sets up the database; run the module")
        conn.execute(f"CREATE TABLESPACE tight LOCATION '{TIGHT}'")
        indexes = [r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s)", [list(tables)]).fetchall()]
        for t in tables:
            conn.execute(f"ALTER TABLE {t} SET TABLESPACE tight")
        for i in indexes:
            conn.execute(f'ALTER INDEX "{i}" SET TABLESPACE tight')
        before = dict(conn.execute("SELECT batch_id, count(*) FROM pushes_pushrow GROUP BY batch_id").fetchall())
        rows_before = sum(before.values())
        used = conn.execute("SELECT pg_tablespace_size('tight')").fetchone()[0]
    # Room for about one and a half chunks more (the earlier list's size per row tells how much a row takes).
    room = int(used / max(rows_before, 1) * 3000)
    subprocess.run(["mount", "-o", f"remount,size={used + room}", TIGHT], check=True)

    first = import_list()
    assert first["state"] == "failed" and "磁盘空间已满" in first["error"], first
    with psycopg.connect(URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        after = dict(conn.execute("SELECT batch_id, count(*) FROM pushes_pushrow GROUP BY batch_id").fetchall())
        kept = after.pop(first["batch"], 0)
        assert after == before  # nothing committed before is lost
        assert 0 < kept < FULL_ROWS and kept % 2000 == 0 and kept == first["rows_done"], (kept, first)
        duplicates = conn.execute("SELECT count(*) - count(DISTINCT row_number) FROM pushes_pushrow"
                                  " WHERE batch_id = %s", [first["batch"]]).fetchone()[0]
        assert duplicates == 0
    print(f"\ndisk full after {kept} of {FULL_ROWS} rows: {first['error']}")

    # Space freed: the same file again resumes after the last committed chunk and finishes.
    subprocess.run(["mount", "-o", "remount,size=64m", TIGHT], check=True)
    again = import_list()
    assert again["batch"] == first["batch"] and again["state"] == "done", again
    with psycopg.connect(URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        n, distinct = conn.execute("SELECT count(*), count(DISTINCT row_number) FROM pushes_pushrow"
                                   " WHERE batch_id = %s", [first["batch"]]).fetchone()
        assert n == distinct == FULL_ROWS
