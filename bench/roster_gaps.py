"""``python -m bench roster-gaps``: every unit's roster gaps and conflicts for this week, rolled up.

Set-up (once, reused): the scale's register, then its field force (``bihuan.demo.forces``: for yaodu about
20,000 helpers, 3,000 posts and this week's 60,000 shifts with a few gaps), unless the database holds helpers.

Times ``forces.roster.roster_rollup(monday)``: the three statements at the post level (gaps as a sweep over
shift and staffed-window events with window functions; overlaps per person; hours per person and day), the
posts' units, and the fold up the unit tree, for the whole district. Best of 5 after a warm-up. n = shifts of
the week.

Baseline: the same three statements through a plain cursor (``roster.raw_week``), best of 5. Acceptance: under
1 s and at most 2× the baseline.
"""

from __future__ import annotations

from bench.common import best_of, database, ensure_scale, report

LIMIT = 1.0


def ensure_forces(scale: str) -> None:
    from bihuan.demo.forces import generate_forces
    from bihuan.forces.models import Helper

    if Helper.objects.exists():
        print(f"reusing {Helper.objects.count():,} helpers")
        return
    print("building the field force …")
    generate_forces(scale, seed=1)


def run(scale: str) -> dict:
    from django.utils import timezone

    from bihuan.forces import roster
    from bihuan.forces.models import Post, Shift

    ensure_scale(scale)
    ensure_forces(scale)
    monday = roster.monday_of(timezone.localdate())
    lo, hi = roster.week_bounds(monday)
    n = Shift.objects.filter(starts_at__lt=hi, ends_at__gt=lo).count()
    units, totals = roster.roster_rollup(monday)
    top = totals[units[0].id]
    print(f"database: {database()}; {Post.objects.filter(active=True).count():,} posts, {n:,} shifts this week; "
          f"district: {top.posts_with_gaps} posts with gaps, {top.gap_hours:.0f} gap hours, "
          f"{top.short_hours:.0f} person-hours short, {top.overlaps} overlaps, {top.overhours} over-hours shifts")
    seconds = best_of(lambda: roster.roster_rollup(monday))
    baseline_seconds = best_of(lambda: roster.raw_week(monday))
    print(f"rollup {seconds * 1000:.1f} ms (under {LIMIT * 1000:.0f} ms: {'yes' if seconds < LIMIT else 'NO'}); "
          f"raw SQL {baseline_seconds * 1000:.1f} ms")
    return report("roster-gaps", scale, n, seconds,
                  "the three statements (gaps, overlaps, hours per day) through a cursor", baseline_seconds)
