"""``python -m bench control-dashboard``: the district's control-and-care dashboard, rolled up through all levels.

Uses the 10,000 open control cases of ``control-today`` (built set-based once a day, then reused). Times
``GET /control/dashboard/`` with Django's test client, logged in (``force_login``) as the district commander:
the whole district rolled up (``dashboard.collect``: four GROUP BYs at the level holding cases and one walk
over every unit), the charts' data and the drill-down table; 20 renders after a warm-up, ``seconds`` is the
median. DEBUG is off. n = units rolled up. The time of ``dashboard.rollup()`` alone is printed too.

Baseline: ``dashboard.raw_counts()``, the four raw GROUP BYs (cases by unit and type; today's check-ins,
samples and open service requests by unit) for the whole district — the rollup's own database work — median
of 20. Acceptance: the page renders in under 500 ms.
"""

from __future__ import annotations

import statistics
import time

from bench.common import best_of, database, ensure_scale, report

RENDERS = 20
LIMIT = 0.5  # seconds


def run(scale: str) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings
    from django.utils import timezone

    from bench.control_today import ensure_cases
    from bihuan.control import dashboard
    from bihuan.register.access import scope_of
    from bihuan.register.models import Staff, Unit

    ensure_scale(scale)
    ensure_cases()
    staff = Staff.objects.filter(unit__level=1).select_related("user", "unit").order_by("id").first()
    if staff is None:
        raise RuntimeError("the district has no commander account")
    n = Unit.objects.count()
    day = timezone.localdate()
    url = "/control/dashboard/"
    root = scope_of(staff.user).root
    _units, totals = dashboard.rollup(root, day)
    c = totals[root.id]
    print(f"database: {database()}; units: {n:,}; as {staff.user.username} ({staff.role}); GET {url}")
    print(f"district: {c.open_cases:,} open cases {c.under}; check-ins {c.checkins_done:,} / {c.checkins_due:,}, "
          f"abnormal {c.abnormal}; tests {c.tests_done:,} / {c.tests_due:,}, positive {c.tests_positive}; "
          f"services open {c.services_open} (overdue {c.services_overdue}), waiting for confirmation "
          f"{c.services_unconfirmed}; ending today {c.ending}")
    with override_settings(DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        client = Client()
        client.force_login(staff.user)
        response = client.get(url)  # warm-up
        assert response.status_code == 200, response.status_code
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        assert f'data-testid="kpi-open">{c.open_cases:,}<' in response.content.decode() or \
            f'data-testid="kpi-open">{c.open_cases}<' in response.content.decode()
        captured = list(queries.captured_queries)
        times = []
        for _ in range(RENDERS):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200
    raw_times = []
    for _ in range(RENDERS + 1):
        t0 = time.perf_counter()
        dashboard.raw_counts(None, day)
        raw_times.append(time.perf_counter() - t0)
    rollup_seconds = best_of(lambda: dashboard.rollup(root, day))
    seconds, baseline_seconds = statistics.median(times), statistics.median(raw_times[1:])
    print(f"{len(captured)} queries per render; median render {seconds * 1000:.1f} ms "
          f"(under {LIMIT * 1000:.0f} ms: {'yes' if seconds < LIMIT else 'NO'}); rollup alone (best of 5) "
          f"{rollup_seconds * 1000:.1f} ms; raw GROUP BYs {baseline_seconds * 1000:.1f} ms")
    for q in sorted(captured, key=lambda q: -float(q["time"]))[:8]:
        print(f"  {float(q['time']) * 1000:6.1f} ms  {q['sql'][:150]}")
    return report("control-dashboard", scale, n, seconds,
                  "dashboard.raw_counts(): the four raw GROUP BYs of cases, check-ins, samples and service requests",
                  baseline_seconds)
