"""Residents' confirmations arriving all at once, through the running server (issue 3, acceptance: the
concurrency test).

gunicorn with four worker processes serves the test database. In waves of simultaneous requests (threads
released together by a barrier), some households' links are tapped a dozen times at once and many other
households' once each. Every request must answer 200 with the confirmation; afterwards every tapped
household is reached exactly once (one reach row, reached by the resident's own link, one
``directive.self_confirm`` audit row), every other household is untouched, and the directive's rollup at
every unit equals a recount from the raw rows.

Written for PostgreSQL, where requests really run in parallel; it runs on SQLite too (writers queue for
the database lock there, and the result must be the same).
"""

from __future__ import annotations

import http.client
import os
import random
import threading
from collections import Counter

import pytest
from django.contrib.auth import get_user_model

from bihuan.core.models import AuditEntry
from bihuan.demo.generate import generate_district
from bihuan.directives import links, rollup
from bihuan.directives.actions import do_issue_directive
from bihuan.directives.models import RECEIPT, Reach, ReachMethod, ReachStatus
from bihuan.loops.models import Loop
from bihuan.register.models import Unit, subtree_q

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

THREADS = 24  # requests per wave, released together
SAME = 6  # households tapped TAPS times at once, one wave each
TAPS = 12
DIFFERENT = 72  # households tapped once, THREADS - TAPS in each wave


def tap_in_waves(port: int, paths: list[str]) -> list[tuple[int, str]]:
    """POST every path, THREADS at a time released by a barrier; (status, body) per request, in order."""
    results: list[tuple[int, str] | None] = [None] * len(paths)
    for start in range(0, len(paths), THREADS):
        wave = list(enumerate(paths))[start:start + THREADS]
        barrier = threading.Barrier(len(wave))

        def tap(index: int, path: str, barrier=barrier) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.connect()
                barrier.wait(30)
                conn.request("POST", path, headers={"Content-Length": "0"})
                response = conn.getresponse()
                results[index] = (response.status, response.read().decode(errors="replace"))
            except Exception as exc:  # noqa: BLE001 - reported as a failed request below
                results[index] = (0, repr(exc))
            finally:
                conn.close()

        threads = [threading.Thread(target=tap, args=item) for item in wave]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    return [r if r is not None else (0, "no answer") for r in results]


def test_simultaneous_confirmations_of_the_same_and_of_different_households(gunicorn):
    seed = int(os.environ.get("BIHUAN_CONCURRENCY_SEED") or random.SystemRandom().randrange(1, 10**9))
    print(f"\nconcurrency test seed: {seed}")
    rng = random.Random(seed)
    generate_district("tiny", seed=1, out=lambda line: None)
    commander = get_user_model().objects.get(username="commander")
    directive = do_issue_directive(acting_user=commander, title="请确认收到", body="请点击确认。")
    reaches = list(Reach.objects.filter(directive=directive).order_by("id"))
    assert len(reaches) >= SAME + DIFFERENT + 10  # fanned out inline, some households left untouched
    chosen = rng.sample(reaches, SAME + DIFFERENT)
    same, different = chosen[:SAME], chosen[SAME:]
    # One wave per household tapped many times: its TAPS taps among as many taps of different households.
    per_wave = len(different) // SAME
    plan = []
    for i, r in enumerate(same):
        wave = [r] * TAPS + different[i * per_wave:(i + 1) * per_wave]
        rng.shuffle(wave)
        plan += wave
    assert len(plan) == SAME * THREADS

    server = gunicorn(workers=4)
    answers = tap_in_waves(server.port, [f"/r/{links.token_for(r.pk)}/" for r in plan])

    failed = [(r.pk, status, body[:300]) for r, (status, body) in zip(plan, answers, strict=True)
              if status != 200 or 'data-testid="confirmed"' not in body]
    assert not failed, f"{len(failed)} of {len(plan)} requests failed, e.g. {failed[:3]}\n{server.output()}"

    tapped = {r.pk for r in chosen}
    rows = {r.pk: r for r in Reach.objects.filter(directive=directive)}
    assert len(rows) == len(reaches)  # no row added or lost
    assert Counter(Reach.objects.filter(directive=directive).values_list("household_id", flat=True)).most_common(
        1)[0][1] == 1
    for pk, r in rows.items():
        if pk in tapped:
            assert (r.status, r.method, r.marked_by_id) == (ReachStatus.REACHED, ReachMethod.SELF, None), pk
            assert r.marked_at is not None
        else:
            assert r.status == ReachStatus.PENDING and r.marked_at is None, pk
    audit = Counter(AuditEntry.objects.filter(action="directive.self_confirm").values_list("target_id", flat=True))
    assert audit == Counter({str(pk): 1 for pk in tapped}), audit.most_common(3)

    # The rollup at every unit equals a recount from the raw rows.
    _, totals = rollup.rollup(directive, root=Unit.objects.get(level=1))
    for unit in Unit.objects.order_by("path"):
        reach_rows = Reach.objects.filter(subtree_q(unit.path), directive=directive)
        raw = {"households": reach_rows.count(), "reached": reach_rows.filter(status=ReachStatus.REACHED).count(),
               "unreachable": reach_rows.filter(status=ReachStatus.UNREACHABLE).count(),
               "units": Loop.objects.filter(subtree_q(unit.path), kind=RECEIPT, subject_id=directive.pk).count()}
        counts = totals[unit.id]
        assert {k: getattr(counts, k) for k in raw} == raw, (unit.level, unit.name)
    assert totals[Unit.objects.get(level=1).id].reached == len(tapped)
