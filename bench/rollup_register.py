"""``python -m bench rollup-register``: coverage of the whole district rolled up through all levels.

Times ``coverage.rollup()`` for the whole district (best of 5 after a warm-up); n = units rolled up.
Baseline: ``coverage.grid_level_counts()``, the three raw GROUP BYs that do the rollup's database work.
"""

from __future__ import annotations

from bench.common import best_of, database, ensure_scale, report


def run(scale: str) -> dict:
    from bihuan.register import coverage
    from bihuan.register.models import Unit

    ensure_scale(scale)
    n = Unit.objects.count()
    print(f"database: {database()}; units: {n:,}")
    seconds = best_of(coverage.rollup)
    baseline_seconds = best_of(coverage.grid_level_counts)
    units, totals = coverage.rollup()
    root = next(u for u in units if u.parent_id is None)
    total = totals[root.id]
    print(f"district: {total.households:,} households, {total.residents:,} residents, "
          f"blind spots {total.blind_spots}")
    return report("rollup-register", scale, n, seconds,
                  "coverage.grid_level_counts(): the raw GROUP BYs of households, residents and staff per unit",
                  baseline_seconds)
