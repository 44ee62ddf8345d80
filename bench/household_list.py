"""``python -m bench household-list``: the household list of the largest community, as its staff see it.

Renders ``GET /households/?unit=<community id>`` with Django's test client, logged in (``force_login``) as
a staff account of that community, 20 times after a warm-up; ``seconds`` is the median render. DEBUG is
off, as in production. n = households in the community.

Baseline: the page's own database work as raw SQL — the paginator's COUNT and the SELECT of the first
page (50 households with their grids), compiled from the view's queryset and run through a plain cursor,
median of 20. The number of queries the page runs is printed. Acceptance: the page renders in under 300 ms.
"""

from __future__ import annotations

import statistics
import time

from bench.common import database, ensure_scale, report

RENDERS = 20
LIMIT = 0.3  # seconds


def run(scale: str) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from bihuan.register.access import scoped
    from bihuan.register.models import Household, Staff, Unit, UnitKind, subtree_q
    from bihuan.register.search import search_households
    from bihuan.register.views import PAGE_SIZE

    ensure_scale(scale)
    communities = Unit.objects.filter(level=4, kind=UnitKind.COMMUNITY)
    sizes = {}
    for c in communities:
        sizes[c.pk] = Household.objects.filter(subtree_q(c.path)).count()
    community = communities.get(pk=max(sizes, key=sizes.get))
    staff = Staff.objects.filter(unit=community).select_related("user").order_by("id").first()
    if staff is None:
        raise RuntimeError(f"community {community.name} has no staff account")
    user = staff.user
    n = sizes[community.pk]
    url = f"/households/?unit={community.pk}"
    print(f"database: {database()}; {community.name}: {n:,} households; as {user.username} ({staff.role}); "
          f"GET {url}")

    with override_settings(DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        client = Client()
        client.force_login(user)
        response = client.get(url)  # warm-up
        assert response.status_code == 200, response.status_code
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        captured = list(queries.captured_queries)  # read now: the next request resets the connection's log
        rows = response.content.decode().count('<li><a href="/households/')
        times = []
        for _ in range(RENDERS):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200

        # The same queryset the view builds, as raw SQL: the paginator's COUNT and the first page.
        user = type(user).objects.get(pk=user.pk)
        qs = search_households(scoped(user, Household.objects).filter(subtree_q(community.path)), "")
        statements = [qs.order_by().values("pk").query, qs.select_related("unit")[:PAGE_SIZE].query]
        compiled = []
        for query in statements:
            sql, params = query.sql_with_params()
            compiled.append((f"SELECT COUNT(*) FROM ({sql}) sub" if query is statements[0] else sql, params))
        raw_times = []
        with connection.cursor() as cur:
            for _ in range(RENDERS + 1):
                t0 = time.perf_counter()
                for sql, params in compiled:
                    cur.execute(sql, params)
                    cur.fetchall()
                raw_times.append(time.perf_counter() - t0)
    seconds, baseline_seconds = statistics.median(times), statistics.median(raw_times[1:])
    print(f"{len(captured)} queries per render; {rows} household rows shown; median render "
          f"{seconds * 1000:.1f} ms (under {LIMIT * 1000:.0f} ms: {'yes' if seconds < LIMIT else 'NO'}); "
          f"raw COUNT + page SELECT {baseline_seconds * 1000:.1f} ms")
    for q in captured:
        print(f"  {float(q['time']) * 1000:6.1f} ms  {q['sql'][:150]}")
    return report("household-list", scale, n, seconds,
                  "the page's COUNT and first-page SELECT as raw SQL (compiled from the view's queryset)",
                  baseline_seconds)
