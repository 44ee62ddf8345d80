"""The people of ``python -m bench district-hour`` (bench/district_hour.py), as Locust users.

Runs in a process of its own, started by the benchmark: Locust's gevent patches the standard library when it is
imported (nothing imported before it here opens a socket or a thread), and Django is never imported here. Every user's pace is set by the time a person takes
between two steps (reading a page, a phone call, walking to the next door), not by how fast the server answers;
one simulated user stands for the many people of its kind who share a morning.

Pace (seconds between steps; see docs/operations.md for how this maps onto a real morning):

- resident: opens the link, reads 2–5, confirms; the next resident 1–3 later;
- grid worker: opens the today page (their households, one tap each, sent as JSON as the phone's script sends
  it) or, one time in four, the directive's household list (HTMX rows), then taps a household reached every
  2–5 while walking the building (8–16 taps: the page stays open, the taps need no reload); 2–5 between rounds;
- community staff: a pushed person — the list, the person, 6–15 on the phone, the outcome saved; a check-in —
  the today page, the case, 3–6 to take the temperature, saved; the unit's receipts signed and relayed when the
  directive list shows them; 2–6 between tasks;
- township staff: the directive list (signing and relaying what waits), the directive's rollup, the board;
  3–8 between;
- commander: one of the board, the control dashboard, the push dashboard or the district rollup every 3–5.

Everything a page would refuse counts as an error: any status but 200, a redirect (a lost session sends one to
the sign-in page), or a form that came back with its error.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import time
from http.cookiejar import Cookie
from pathlib import Path
from urllib.parse import urlencode

import gevent
from locust import FastHttpUser, between, constant_throughput, task  # locust patches sockets and threads
from locust.env import Environment
from locust.stats import StatsEntry

CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"')
PENDING_ROW = re.compile(r'class="mrow status-pending" id="hh-(\d+)"')
TODAY_MARK = re.compile(r'name="directive" value="(\d+)"><input type="hidden" name="household" value="(\d+)">')
PERSON = re.compile(r'href="/pushes/people/(\d+)/"')
CHECKIN_DUE = re.compile(r'class="ck-row ck-(?!done)[\w-]+" data-testid="checkin-(\d+)"')
SLOT = re.compile(r'<select name="slot"[^>]*><option value="(\w+)"')
SIGN = re.compile(r'hx-post="(/directives/receipts/\d+/sign/)"')
RELAY = re.compile(r'hx-post="(/directives/receipts/\d+/relay/)"')


def main(path: str) -> None:
    config = json.loads(Path(path).read_text())
    classes = trivial_users(config) if config["phase"] == "trivial" else mix_users(config)
    env = Environment(user_classes=classes)
    runner = env.create_local_runner()
    runner.start(config["users"], spawn_rate=max(10, config["users"] // 5))
    gevent.sleep(config["warmup"])  # every user started and every server process warm (templates compiled,
    env.stats.reset_all()  # connections open): a real morning's server has been up for hours; not counted
    start = time.monotonic()
    deadline = start + config["limit"]
    while time.monotonic() < deadline and env.stats.total.num_requests < config["target"]:
        gevent.sleep(0.5)
    elapsed = time.monotonic() - start
    runner.quit()
    types = {}
    total = StatsEntry(env.stats, "all", "")
    for (name, _method), entry in env.stats.entries.items():
        row = types.setdefault(name, [0, 0.0, 0.0, 0.0, 0])
        row[0] += entry.num_requests
        row[1] = max(row[1], entry.get_response_time_percentile(0.5) / 1000)
        row[2] = max(row[2], entry.get_response_time_percentile(0.95) / 1000)
        row[3] = max(row[3], entry.get_response_time_percentile(0.99) / 1000)
        row[4] += entry.num_failures
        total.extend(entry)
    failures = [f"{e.method} {e.name}: {e.error} ({e.occurrences}×)" for e in env.stats.errors.values()]
    print(json.dumps({"n": total.num_requests, "p95": total.get_response_time_percentile(0.95) / 1000,
                      "errors": total.num_failures, "types": types, "rate": total.num_requests / elapsed,
                      "seconds": elapsed, "failures": failures}))


def trivial_users(config: dict) -> list:
    per_user = config["rate"] / config["users"]

    class Trivial(FastHttpUser):
        host = config["base"]
        wait_time = constant_throughput(per_user)  # as many requests a second as the mix sent

        @task
        def login_page(self):
            self.client.get("/login/", name="trivial")

    return [Trivial]


def mix_users(config: dict) -> list:
    links = itertools.cycle(config["links"])
    directive = config["directive"]
    pools = {kind: itertools.cycle(accounts) for kind, accounts in config["accounts"].items()}

    class Staff(FastHttpUser):
        abstract = True
        host = config["base"]
        kind = ""

        def on_start(self):
            self.account = next(pools[self.kind])
            self.client.cookiejar.set_cookie(Cookie(
                version=0, name="sessionid", value=self.account["session"], port=None, port_specified=False,
                domain="127.0.0.1", domain_specified=False, domain_initial_dot=False, path="/", path_specified=True,
                secure=False, expires=None, discard=True, comment=None, comment_url=None, rest={}))
            self.csrf = ""

        def think(self, low: float, high: float) -> None:
            gevent.sleep(random.uniform(low, high))

        def page(self, path: str, name: str) -> str:
            """GET a page as the browser does; its CSRF token is kept for the forms that follow."""
            with self.client.get(path, name=name, allow_redirects=False, catch_response=True) as r:
                if r.status_code != 200:
                    r.failure(f"HTTP {r.status_code} {r.headers.get('Location', '')}")
                    return ""
                found = CSRF.search(r.text)
                if found:
                    self.csrf = found.group(1)
                return r.text

        def send(self, path: str, name: str, data: dict, *, refused: str = "", done: str = "") -> str:
            """POST a form as the page's HTMX sends it; ``refused`` in the answer (the form's error) or ``done``
            missing from it is a failure."""
            headers = {"HX-Request": "true", "X-CSRFToken": self.csrf, "Referer": self.host + path,
                       "Content-Type": "application/x-www-form-urlencoded"}
            with self.client.post(path, data=urlencode(data), name=name, headers=headers, allow_redirects=False,
                                  catch_response=True) as r:
                if r.status_code != 200:
                    r.failure(f"HTTP {r.status_code} {r.headers.get('Location', '')} {r.text[:200]!r}")
                    return ""
                if refused and refused in r.text:
                    r.failure(f"refused: {r.text[r.text.find(refused):][:300]!r}")
                elif done and done not in r.text:
                    r.failure(f"not done: {r.text[:300]!r}")
                return r.text

        def receipts(self, page: str, who: str) -> None:
            """Sign and relay what the directive list shows waiting for the unit."""
            for path in SIGN.findall(page)[:2]:
                self.think(1, 3)
                self.send(path, f"{who}: sign receipt", {}, done="receipt-state")
            for path in RELAY.findall(page)[:2]:
                self.think(1, 3)
                self.send(path, f"{who}: relay receipt", {}, done="receipt-state")

    class Resident(FastHttpUser):
        fixed_count = config["counts"]["resident"]
        host = config["base"]
        wait_time = between(1, 3)

        @task
        def confirm(self):
            token = next(links)
            self.client.get(f"/r/{token}/", name="resident: open link")
            gevent.sleep(random.uniform(2, 5))
            self.client.post(f"/r/{token}/", name="resident: confirm")

    class Grid(Staff):
        fixed_count = config["counts"]["grid"]
        kind = "grid"
        wait_time = between(2, 5)

        @task(3)
        def today(self):
            """The phone's first page: tasks and households, one tap each (sent by marks.js as JSON)."""
            page = self.page("/", "grid: today page")
            taps = TODAY_MARK.findall(page)
            random.shuffle(taps)
            for d, household in taps[: random.randint(8, 16)]:
                self.think(2, 5)
                with self.client.post("/today/mark/", name="grid: mark household (today page)",
                                      data=urlencode({"directive": d, "household": household, "method": "visit",
                                                      "csrfmiddlewaretoken": self.csrf}),
                                      headers={"Accept": "application/json", "X-CSRFToken": self.csrf,
                                               "Content-Type": "application/x-www-form-urlencoded"},
                                      allow_redirects=False, catch_response=True) as r:
                    if r.status_code != 200 or '"ok": true' not in r.text:
                        r.failure(f"HTTP {r.status_code} {r.text[:200]!r}")

        @task(1)
        def household_list(self):
            """The directive's household list by building (HTMX rows: phone, WeChat, visit)."""
            page = self.page(f"/directives/{directive}/mark/", "grid: household list")
            pending = PENDING_ROW.findall(page)
            random.shuffle(pending)
            for household in pending[: random.randint(8, 16)]:
                self.think(2, 5)
                self.send(f"/directives/{directive}/mark/households/", "grid: mark household (list)",
                          {"household": household, "status": "reached", "method": random.choice(
                              ["phone", "wechat", "visit"])}, refused='data-testid="row-error"',
                          done="status-reached")

    class Community(Staff):
        fixed_count = config["counts"]["community"]
        kind = "community"
        wait_time = between(2, 6)

        @task(3)
        def verify(self):
            page = self.page("/pushes/?status=open", "community: pushed people")
            people = PERSON.findall(page)
            if not people:
                return
            self.think(1, 3)
            person = random.choice(people)
            self.page(f"/pushes/people/{person}/", "community: pushed person")
            self.think(6, 15)  # the phone call
            self.send(f"/pushes/people/{person}/save/", "community: save verification", {
                "section": "all", "origin": "上海市浦东新区", "health_status": "normal", "vaccine_doses": "3",
                "outcome": "no_control_needed", "no_control_needed__basis": "低风险地区，48小时核酸阴性"},
                refused='data-testid="error"', done='data-testid="saved"')

        @task(2)
        def checkin(self):
            page = self.page("/control/today/", "community: control today")
            due = CHECKIN_DUE.findall(page)
            if not due:
                return
            self.think(1, 3)
            case = random.choice(due)
            page = self.page(f"/control/cases/{case}/", "community: case")
            slot = SLOT.search(page)
            if not slot:
                return
            self.think(3, 6)
            self.send(f"/control/cases/{case}/checkins/", "community: record check-in",
                      {"slot": slot.group(1), "temperature": "36.5"}, refused='data-testid="checkin-error"')

        @task(1)
        def directives(self):
            self.receipts(self.page("/directives/", "community: directives"), "community")

    class Township(Staff):
        fixed_count = config["counts"]["township"]
        kind = "township"
        wait_time = between(3, 8)

        @task(1)
        def directives(self):
            self.receipts(self.page("/directives/", "township: directives"), "township")

        @task(2)
        def rollup(self):
            self.page(f"/directives/{directive}/", "township: directive rollup")

        @task(1)
        def board(self):
            self.page("/", "township: situation board")

    class Commander(Staff):
        fixed_count = config["counts"]["commander"]
        kind = "commander"
        wait_time = between(3, 5)

        @task(1)
        def board(self):
            self.page("/today/board/", "commander: situation board")

        @task(1)
        def control(self):
            self.page("/control/dashboard/", "commander: control dashboard")

        @task(1)
        def pushes(self):
            self.page("/pushes/dashboard/", "commander: push dashboard")

        @task(1)
        def rollup(self):
            self.page(f"/directives/{directive}/", "commander: directive rollup")

    return [Resident, Grid, Community, Township, Commander]
