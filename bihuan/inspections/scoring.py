"""The weekly score (考核) of every unit of levels 1–6 (households, level 7, count in their grid), from live records, and the ranking per level (红黑榜).

Each indicator counts records — the households of level 7 and the work of every unit — as *[done in time,
due]* pairs, attributed to the path of the unit that answers for the record. A unit's pair is the sum over its
whole subtree: a parent's score is derived from its children's records, never averaged from their scores.

A record counts in the week its deadline falls in (Monday 00:00 to Monday 00:00, local time), once the deadline
has passed or the record was done in time. "In time" is read from timestamps only (signed at ≤ deadline …),
so recomputing a finished week gives the same result. The score is

    score = 100 × Σ wᵢ · doneᵢ / dueᵢ  ÷  Σ wᵢ      (over the indicators with dueᵢ > 0)

with the weights of the rule set in force on the week's Monday (``RuleSet``, versioned data).

The database work is one GROUP BY per source table (``raw_counts``); the rest is an in-memory walk of paths.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from operator import add

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bihuan.register.models import SEGMENT, Unit

from . import shipped
from .models import RECTIFY_KIND_LIST, RuleSet, WeekScore

RECEIPT, VERIFICATION, SERVICE = "directive.receipt", "push.verification", "control.service"
SERVICE_HOURS = 24
MAX_REACH_HOURS = 30 * 24  # the longest reach deadline a directive may have

# key → (label, how it is counted): shown on the ranking page beside the weights.
INDICATORS: dict[str, tuple[str, str]] = {
    "directive_signed": (_("指令按时签收"), _("签收时间 ≤ 签收时限的指令回执 ÷ 签收时限在本周的回执")),
    "directive_relayed": (_("指令按时转发"), _("网格以上单位在反馈时限前转发的回执 ÷ 反馈时限在本周的回执")),
    "directive_reported": (_("指令按时反馈"), _("反馈时间 ≤ 反馈时限的回执 ÷ 反馈时限在本周的回执")),
    "households_reached": (_("住户触达"), _("触达时限内已触达或确认无法触达的住户 ÷ 触达时限在本周的指令住户")),
    "pushes_verified": (_("推送人员按时核查"), _("时限内完成核查的推送人员 ÷ 核查时限在本周的推送人员")),
    "checkins_done": (_("管控人员健康打卡"), _("本周已打卡次数 ÷（已打卡 + 漏报未补）")),
    "tests_done": (_("核酸按期采样"), _("已采样 ÷ 本周应采样（已过采样日）")),
    "services_closed": (_("服务需求24小时办结"), _("提出后 24 小时内办结的服务需求 ÷ 24 小时时限在本周的服务需求")),
    "rectified_on_time": (_("督查整改按期销号"), _("按期反馈且已销号的整改 ÷ 整改时限在本周的整改")),
    "inspection_passed": (_("督查检查合格率"), _("本周督查中符合的检查项 ÷ 已检查的项")),
}
KEYS = list(INDICATORS)
DONE_LOOP_STATES = ("reported", "closed")


def week_bounds(week_start: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(week_start, dt.time()))
    return start, start + dt.timedelta(days=7)


def rules_for(week_start: dt.date) -> RuleSet:
    rules = RuleSet.objects.filter(effective_from__lte=week_start).order_by("-version").first()
    if rules is None:
        shipped.ensure()  # an emptied database lost the shipped rules: never a 500 for that
    return rules or RuleSet.objects.order_by("version").first()


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _t(model) -> str:
    return _q(model._meta.db_table)


def _dt(value):
    return connection.ops.adapt_datetimefield_value(value)


def _d(value):
    return connection.ops.adapt_datefield_value(value)


def raw_counts(week_start: dt.date, at: dt.datetime | None = None) -> dict[str, list[tuple]]:
    """The database work: each source grouped by the path records are attributed to. ``at`` (default: now, at
    most the week's end) is the moment of counting. Returns statement name → rows of (path, done, due, …)."""
    from bihuan.control.models import CheckIn, ControlCase, MissedCheckIn, TestSample
    from bihuan.directives.models import Directive, Reach
    from bihuan.loops.models import Loop

    from .models import Answer

    start, end = week_bounds(week_start)
    at = min(at or timezone.now(), end)
    p = {"s": _dt(start), "e": _dt(end), "at": _dt(at), "ds": _d(week_start), "de": _d(week_start + dt.timedelta(days=7)),
         "today": _d(timezone.localtime(at).date()), "receipt": RECEIPT, "verification": VERIFICATION,
         "service": SERVICE, "s24": _dt(start - dt.timedelta(hours=SERVICE_HOURS)),
         **{f"r{i}": k for i, k in enumerate(RECTIFY_KIND_LIST)}}
    rect = ", ".join(f"%(r{i})s" for i in range(len(RECTIFY_KIND_LIST)))
    loop = _t(Loop)
    # A deadline column in the week: due once past (at), or counted early when done in time.
    in_week = "{d} >= %(s)s AND {d} < %(e)s AND ({d} < %(at)s OR ({ok}))"
    sign_ok = "acknowledged_at IS NOT NULL AND acknowledged_at <= ack_due_at AND acknowledged_at <= %(at)s"
    relay_ok = "started_at IS NOT NULL AND started_at <= due_at AND started_at <= %(at)s"
    report_ok = "reported_at IS NOT NULL AND reported_at <= due_at AND reported_at <= %(at)s"
    closed_ok = f"{report_ok} AND closed_at IS NOT NULL AND closed_at <= %(at)s"

    def pair(d: str, ok: str, extra: str = "1 = 1") -> str:
        return (f"SUM(CASE WHEN {extra} AND {in_week.format(d=d, ok=ok)} AND {ok} THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN {extra} AND {in_week.format(d=d, ok=ok)} THEN 1 ELSE 0 END)")

    statements = {
        "loops": (
            f"SELECT path, "
            f"{pair('ack_due_at', sign_ok, 'kind = %(receipt)s')}, "
            f"{pair('due_at', relay_ok, 'kind = %(receipt)s AND level < 6')}, "
            f"{pair('due_at', report_ok, 'kind = %(receipt)s')}, "
            f"{pair('due_at', report_ok, 'kind = %(verification)s')}, "
            f"{pair('due_at', closed_ok, f'kind IN ({rect})')} "
            f"FROM {loop} WHERE kind IN (%(receipt)s, %(verification)s, {rect}) "
            "AND ((ack_due_at >= %(s)s AND ack_due_at < %(e)s) OR (due_at >= %(s)s AND due_at < %(e)s)) "
            "GROUP BY path"),
        # Service requests: the 24-hour deadline is computed in Python from the opening time.
        "services": (
            f"SELECT path, created_at, COALESCE(reported_at, closed_at) FROM {loop} "
            "WHERE kind = %(service)s AND created_at >= %(s24)s AND created_at < %(e)s"),
        "checkins": (
            f"SELECT c.path, COUNT(*) FROM {_t(CheckIn)} k JOIN {_t(ControlCase)} c ON c.id = k.case_id "
            "WHERE k.date >= %(ds)s AND k.date < %(de)s AND k.at <= %(at)s GROUP BY c.path"),
        "missed": (
            f"SELECT m.path, COUNT(*) FROM {_t(MissedCheckIn)} m WHERE m.date >= %(ds)s AND m.date < %(de)s "
            f"AND m.due_at <= %(at)s AND NOT EXISTS (SELECT 1 FROM {_t(CheckIn)} k WHERE k.case_id = m.case_id "
            "AND k.date = m.date AND k.slot = m.slot AND k.at <= %(at)s) GROUP BY m.path"),
        "tests": (
            f"SELECT c.path, SUM(CASE WHEN t.result IN ('negative', 'positive', 'pending') THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN t.date < %(today)s OR t.result IN ('negative', 'positive', 'pending') THEN 1 ELSE 0 END) "
            f"FROM {_t(TestSample)} t JOIN {_t(ControlCase)} c ON c.id = t.case_id "
            "WHERE t.date >= %(ds)s AND t.date < %(de)s AND t.date <= %(today)s GROUP BY c.path"),
        "answers": (
            f"SELECT path, SUM(CASE WHEN result = 'pass' THEN 1 ELSE 0 END), COUNT(*) FROM {_t(Answer)} "
            "WHERE answered_at >= %(s)s AND answered_at < %(e)s AND answered_at <= %(at)s "
            "AND result IN ('pass', 'fail') GROUP BY path"),
    }
    # Households reached: directives whose reach deadline (issued + reach_hours) falls in the week.
    directives = [(pk, issued + dt.timedelta(hours=hours)) for pk, issued, hours in
                  Directive.objects.filter(issued_at__gte=start - dt.timedelta(hours=MAX_REACH_HOURS), issued_at__lt=end)
                  .values_list("id", "issued_at", "reach_hours")]
    directives = [(pk, deadline) for pk, deadline in directives if start <= deadline < end]
    if directives:
        for i, (pk, deadline) in enumerate(directives):
            p[f"d{i}"], p[f"t{i}"] = pk, _dt(deadline)
        deadline = "CASE r.directive_id " + " ".join(f"WHEN %(d{i})s THEN %(t{i})s" for i in range(len(directives))) \
            + " END"
        ids = ", ".join(f"%(d{i})s" for i in range(len(directives)))
        ok = f"r.status <> 'pending' AND r.marked_at <= {deadline} AND r.marked_at <= %(at)s"
        statements["reach"] = (
            f"SELECT r.path, SUM(CASE WHEN {ok} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {deadline} < %(at)s OR ({ok}) THEN 1 ELSE 0 END) "
            f"FROM {_t(Reach)} r WHERE r.directive_id IN ({ids}) GROUP BY r.path")
    out = {"reach": []}
    with connection.cursor() as cur:
        for name, sql in statements.items():
            cur.execute(sql, p)
            out[name] = cur.fetchall()
    return out


def _parse(value):
    """An aware datetime from a raw row (SQLite gives naive UTC datetimes or text)."""
    if value is None:
        return None
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


N = len(KEYS)
LOOP_KEYS = [KEYS.index(k) for k in ("directive_signed", "directive_relayed", "directive_reported",
                                     "pushes_verified", "rectified_on_time")]
I_SERVICES, I_CHECKINS = KEYS.index("services_closed"), KEYS.index("checkins_done")
PAIRS = (("reach", KEYS.index("households_reached")), ("tests", KEYS.index("tests_done")),
         ("answers", KEYS.index("inspection_passed")))


@dataclass
class UnitScore:
    unit_id: int
    parent_id: int | None
    level: int
    path: str
    name: str
    vec: list[int] = field(default_factory=lambda: [0] * (2 * N))  # done, due of each indicator in KEYS order
    score: float | None = None
    rank: int | None = None

    @property
    def counts(self) -> dict[str, list[int]]:
        """Indicator key → [done in time, due]."""
        v = self.vec
        return {k: [v[2 * i], v[2 * i + 1]] for i, k in enumerate(KEYS)}

    def rate(self, key: str) -> float | None:
        i = KEYS.index(key)
        done, due = self.vec[2 * i], self.vec[2 * i + 1]
        return done / due if due else None

    def lost(self, weights: dict[str, float]) -> dict[str, float]:
        """Points lost per indicator (what the drill-down explains)."""
        used = {k: w for k, w in weights.items() if self.vec[2 * KEYS.index(k) + 1]}
        total = sum(used.values())
        if not total:
            return {}
        return {k: round(100 * w * (1 - self.rate(k)) / total, 2) for k, w in used.items()}


def per_path(raw: dict[str, list[tuple]], week_start: dt.date, at: dt.datetime | None = None) -> dict[str, list[int]]:
    """Exact path → [done, due] of each indicator (in ``KEYS`` order, flat), from ``raw_counts``."""
    start, end = week_bounds(week_start)
    at = min(at or timezone.now(), end)
    counts: dict[str, list[int]] = {}

    def vec(path: str) -> list[int]:
        v = counts.get(path)
        if v is None:
            v = counts[path] = [0] * (2 * N)
        return v

    for path, *v in raw["loops"]:
        c = vec(path)
        for j, i in enumerate(LOOP_KEYS):
            c[2 * i] += int(v[2 * j] or 0)
            c[2 * i + 1] += int(v[2 * j + 1] or 0)
    for path, created, finished in raw["services"]:
        deadline = _parse(created) + dt.timedelta(hours=SERVICE_HOURS)
        if not start <= deadline < end:
            continue
        finished = _parse(finished)
        ok = finished is not None and finished <= deadline and finished <= at
        if deadline < at or ok:
            c = vec(path)
            c[2 * I_SERVICES] += ok
            c[2 * I_SERVICES + 1] += 1
    for path, n in raw["checkins"]:
        c = vec(path)
        c[2 * I_CHECKINS] += n
        c[2 * I_CHECKINS + 1] += n
    for path, n in raw["missed"]:
        vec(path)[2 * I_CHECKINS + 1] += n
    for name, i in PAIRS:
        for path, done, total in raw[name]:
            c = vec(path)
            c[2 * i] += int(done or 0)
            c[2 * i + 1] += int(total or 0)
    return counts


def score_week(week_start: dt.date, at: dt.datetime | None = None, rules: RuleSet | None = None,
               root: Unit | None = None) -> tuple[list[UnitScore], RuleSet]:
    """Every unit of levels 1–6 (under ``root`` if given) with its counts, score and rank within its level.

    Households (level 7) are not scored one by one: they are whom the grid serves, not who answers for the work.
    Their records (a household's reach of a directive, its people pushed, under control, checked in and tested)
    carry the grid's path and count in the grid's score and every level above it; the drill-down of a grid lists
    the households behind each point it lost."""
    rules = rules or rules_for(week_start)
    weights = [(2 * KEYS.index(k), float(w)) for k, w in rules.weights.items() if k in INDICATORS]
    paths = per_path(raw_counts(week_start, at), week_start, at)
    units_qs = Unit.objects.order_by("path")
    if root is not None:
        units_qs = units_qs.filter(root.subtree())
    units = [UnitScore(pk, parent, level, path, name, None) for pk, parent, level, path, name in
             units_qs.values_list("id", "parent_id", "level", "path", "name")]
    by_path = {u.path: u for u in units}
    by_id = {u.unit_id: u for u in units}
    # Each exact path's records are its unit's; a path without a unit of its own (none in practice) goes to the
    # nearest unit above it. Then one walk up the tree, deepest first: records roll up, scores never average.
    for path, v in paths.items():
        u = by_path.get(path)
        n = len(path)
        while u is None and n > SEGMENT:
            n -= SEGMENT
            u = by_path.get(path[:n])
        if u is not None:
            u.vec = v if u.vec is None else list(map(add, u.vec, v))
    zero = [0] * (2 * N)
    for u in sorted(units, key=lambda u: -len(u.path)):
        if u.vec is None:
            u.vec = list(zero)
            continue
        parent = by_id.get(u.parent_id)
        if parent is not None:
            parent.vec = list(u.vec) if parent.vec is None else list(map(add, parent.vec, u.vec))
    for u in units:
        v = u.vec
        num = den = 0.0
        for i, w in weights:
            due = v[i + 1]
            if due:
                num += w * v[i] / due
                den += w
        u.score = round(100.0 * num / den, 2) if den else None
    by_level: dict[int, list[UnitScore]] = defaultdict(list)
    for u in units:
        if u.score is not None:
            by_level[u.level].append(u)
    for items in by_level.values():
        items.sort(key=lambda u: (-u.score, u.path))
        for i, u in enumerate(items, start=1):
            u.rank = i
    return units, rules


def is_finished(week_start: dt.date) -> bool:
    return week_bounds(week_start)[1] <= timezone.now()


def snapshot(week_start: dt.date) -> int:
    """Keep a finished week's scores (the trend reads them). Idempotent: an existing snapshot stays as it is."""
    if not is_finished(week_start) or WeekScore.objects.filter(week_start=week_start).exists():
        return 0
    units, rules = score_week(week_start)
    with transaction.atomic():
        WeekScore.objects.bulk_create(
            [WeekScore(week_start=week_start, rules=rules, unit_id=u.unit_id, level=u.level, score=u.score,
                       rank=u.rank, counts=u.counts) for u in units], batch_size=2000, ignore_conflicts=True)
    return len(units)


def trend(unit_ids: list[int], weeks: list[dt.date]) -> dict[int, list[float | None]]:
    """unit id → score per week (finished weeks from their snapshots, taken on first need)."""
    for w in weeks:
        snapshot(w)
    rows = WeekScore.objects.filter(unit_id__in=unit_ids, week_start__in=weeks).values_list("unit_id", "week_start",
                                                                                          "score")
    got = {(u, w): s for u, w, s in rows}
    return {u: [got.get((u, w)) for w in weeks] for u in unit_ids}
