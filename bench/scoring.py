"""``python -m bench scoring``: the weekly score of every unit of levels 1–6 from one week of live records.

Set-up (``bench.week_activity``, rebuilt on every run, set-based): last week's activity over the district —
50 directives with their receipts and the reach rows of their households (level 7), pushed people with their
verification loops, control cases at home with check-ins, missed check-ins, test samples and service requests,
inspection visits to every community with answers, findings and rectification loops.

Times ``scoring.score_week(last Monday)`` (all units of levels 1–6 with counts, scores and ranks per level; the
records of level 7 are counted into their grids), best of 5 after a warm-up; n = units scored.
Baseline: ``scoring.raw_counts`` — the raw SQL GROUP BYs that compute the same figures per path, best of 5.
Acceptance: under 2 s and at most 2× the baseline.
"""

from __future__ import annotations

import datetime as dt
import time

from bench.common import best_of, database, ensure_scale, report

LIMIT = 2.0


def run(scale: str) -> dict:
    from django.utils import timezone

    from bench.week_activity import build_week
    from bihuan.inspections import scoring
    from bihuan.inspections.planning import monday

    ensure_scale(scale)
    week = monday(timezone.localdate()) - dt.timedelta(days=7)
    t0 = time.perf_counter()
    counts = build_week(week, scale)
    print(f"database: {database()}; week of {week}: built in {time.perf_counter() - t0:.1f} s: {counts}")
    seconds = best_of(lambda: scoring.score_week(week))
    baseline_seconds = best_of(lambda: scoring.raw_counts(week))
    units, rules = scoring.score_week(week)
    scored = [u for u in units if u.score is not None]
    top = min((u for u in scored if u.level == 3), key=lambda u: u.rank, default=None)
    print(f"{len(units):,} units, {len(scored):,} scored (rules v{rules.version}); best township: "
          f"{top.name if top else '-'} {top.score if top else ''}; score_week {seconds:.3f} s "
          f"(under {LIMIT} s: {'yes' if seconds < LIMIT else 'NO'}), raw GROUP BYs {baseline_seconds:.3f} s")
    return report("scoring", scale, len(units), seconds,
                  "scoring.raw_counts(): the raw SQL GROUP BYs of the same figures per path", baseline_seconds)
