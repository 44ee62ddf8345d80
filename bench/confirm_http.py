"""``python -m bench confirm-http``: residents' one-tap confirmations through the real HTTP stack.

Sets up (untimed) a directive from the commander to every household of the district, starts gunicorn
(``-w 2``, or ``BENCH_WORKERS``; DEBUG off, the benchmark's database), sends GETs of a trivial page from
``THREADS`` client threads (keep-alive where the server allows it) in ROUNDS rounds, then POSTs to
``/r/<token>/`` for distinct households in as many rounds, each POST without a session or a CSRF token, as a
resident's phone sends it. Throughput of each kind is its requests over its time summed over all its rounds:
no pick of lucky rounds. The trivial rounds go first, on a quiet database, so the background work the
confirmations cause (WAL writing, checkpoints, vacuum) weighs on the confirmations alone.

The trivial page is the login page (``GET /login/``: a template, no database work) — the project has no
view that does nothing at all. In the JSON line ``seconds`` is the wall time per confirmation and
``baseline_seconds`` the wall time per trivial request, so ``ratio`` = t / b is the *inverse* of the
throughput ratio: **lower is better**, and a throughput ratio ≥ 0.5 (confirmations per second at least
half the trivial page's requests per second) means ``ratio`` ≤ 2. n = confirmations.

Every confirmation must answer 200 and the database must hold exactly one self-confirmed reach row per
confirmation afterwards. The directive and its rows are deleted at the end.
"""

from __future__ import annotations

import http.client
import os
import threading
import time

from bench.common import Gunicorn, database, ensure_scale, report

TITLE = "bench:confirm-http"
ROUNDS = 8  # rounds of each kind; all count
PER_ROUND = 400  # requests per round: N = ROUNDS · PER_ROUND confirmations
WARMUP = 100  # untimed requests of each kind first (other households)
# gunicorn worker processes; docs/operations.md recommends 2 · cores + 1 in production (BENCH_WORKERS=5 here).
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = max(4, 2 * WORKERS)  # client threads: enough to keep every server worker busy
TIME_LIMIT = 120.0  # seconds for one timed phase, whatever N


def run(scale: str) -> dict:
    from django.contrib.auth import get_user_model

    from bench.fanout import cleanup
    from bihuan.directives import fanout, links
    from bihuan.directives.actions import do_issue_directive
    from bihuan.directives.models import Reach, ReachMethod, ReachStatus

    ensure_scale(scale)
    cleanup(TITLE)
    commander = get_user_model().objects.get(username="commander")
    try:
        directive = do_issue_directive(acting_user=commander, title=TITLE, body="请居民点击确认收到。")
        fanout.run_fanout(directive)
        # Households spread over the district (every k-th reach row), the first WARMUP ones for the warm-up.
        n = ROUNDS * PER_ROUND
        ids = list(Reach.objects.filter(directive=directive).order_by("id").values_list("id", flat=True))
        step = max(1, len(ids) // (n + WARMUP))
        paths = [f"/r/{links.token_for(i)}/" for i in ids[::step][: n + WARMUP]]
        print(f"database: {database()}; {n:,} confirmations and as many GET /login/ in {ROUNDS} rounds each, "
              f"{THREADS} client threads, gunicorn -w {WORKERS}")
        trivial, confirm = [], []  # (seconds, requests) per round
        with Gunicorn(workers=WORKERS) as server:
            load(server.port, "GET", ["/login/"] * WARMUP)
            for _ in range(ROUNDS):
                trivial.append(load(server.port, "GET", ["/login/"] * PER_ROUND))
            load(server.port, "POST", paths[:WARMUP])
            for r in range(ROUNDS):
                confirm.append(load(server.port, "POST", paths[WARMUP + r * PER_ROUND: WARMUP + (r + 1) * PER_ROUND]))
        for r, ((ts, tk), (cs, ck)) in enumerate(zip(trivial, confirm, strict=True)):
            print(f"round {r + 1}: {ts / tk * 1000:.2f} ms per GET /login/, {cs / ck * 1000:.2f} ms per confirmation")
        done = sum(k for _, k in confirm)
        self_confirmed = Reach.objects.filter(directive=directive, status=ReachStatus.REACHED,
                                              method=ReachMethod.SELF).count()
        assert self_confirmed == WARMUP + done, (self_confirmed, WARMUP + done)
    finally:
        cleanup(TITLE)
    per_confirm = sum(s for s, _ in confirm) / done
    per_trivial = sum(s for s, _ in trivial) / sum(k for _, k in trivial)
    print(f"all rounds: {1 / per_confirm:,.0f} confirmations per second; {1 / per_trivial:,.0f} GET /login/ "
          f"per second; throughput ratio "
          f"{per_trivial / per_confirm:.2f} (≥ 0.5 is the target; the JSON ratio below is its inverse, "
          "time per confirmation / time per trivial request: lower is better, ≤ 2 meets the target)")
    return report("confirm-http", scale, done, per_confirm,
                  "GET /login/ (a template, no database work) on the same gunicorn; seconds are per request, "
                  "so ratio = 1 / throughput ratio: lower is better, target ≤ 2", per_trivial)


def load(port: int, method: str, paths: list[str]) -> tuple[float, int]:
    """Send every request of ``paths`` from THREADS threads; (wall seconds, requests done). Any answer but
    200 is an error. Stops early at TIME_LIMIT."""
    lock = threading.Lock()
    queue = iter(paths)
    done = [0]
    errors: list[str] = []
    deadline = time.monotonic() + TIME_LIMIT

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Length": "0"} if method == "POST" else {}
        try:
            while time.monotonic() < deadline:
                with lock:
                    path = next(queue, None)
                if path is None:
                    return
                try:
                    conn.request(method, path, headers=headers)
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()  # the next request opens a fresh connection
                    with lock:
                        errors.append(f"{method} {path}: {exc!r}")
                    continue
                with lock:
                    if response.status == 200:
                        done[0] += 1
                    else:
                        errors.append(f"{method} {path}: HTTP {response.status}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[:3]}")
    return seconds, done[0]
