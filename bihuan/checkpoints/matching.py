"""Matching the people registered at a checkpoint: against residents, pushed people and self-reports — by the
lookup hashes of their ID numbers and phones, never clear text — and against the risk-area list and protocol
in force today. A handful of indexed queries for a whole registration, whatever its size.

A person **needs verification** when they come from a listed risk area, when their health code is red or
yellow or they have a fever, or when they show no negative test within ``CHECKPOINT_TEST_HOURS`` (48) hours.
The reasons are kept and shown to the grid. Everyone else is registered only.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from bihuan.policy.models import RiskLevel
from bihuan.policy.rules import RiskIndex, protocol_in_force
from bihuan.pushes.dedupe import DEFAULT_WINDOW_DAYS
from bihuan.pushes.models import PushedPerson
from bihuan.register.models import ACTIVE_STATUSES, Resident

from .models import FEVER, HealthCode, SelfReport, SelfReportStatus

POLICY_TTL = 60.0  # seconds a process keeps the day's risk areas and protocol before reading them again
RISK_LABELS = {RiskLevel.HIGH: "高风险区", RiskLevel.MEDIUM: "中风险区", RiskLevel.LOW: "低风险区"}

_policy_lock = threading.Lock()
_policy: dict = {}


def test_hours_required() -> int:
    return int(getattr(settings, "CHECKPOINT_TEST_HOURS", 48))


def policy_today(day: dt.date | None = None) -> tuple[RiskIndex, str]:
    """(the risk index of ``day``, the name of the protocol in force), kept for ``POLICY_TTL`` seconds."""
    day = day or timezone.localdate()
    now = time.monotonic()
    with _policy_lock:
        hit = _policy.get(day)
        if hit is not None and now - hit[0] < POLICY_TTL:
            return hit[1], hit[2]
    index = RiskIndex(day)
    protocol = protocol_in_force(day)
    with _policy_lock:
        _policy.clear()
        _policy[day] = (now, index, protocol.name if protocol else "")
    return index, protocol.name if protocol else ""


def forget_policy() -> None:
    """Drop the kept policy (tests, and the policy desk after a change)."""
    with _policy_lock:
        _policy.clear()


@dataclass
class Person:
    """What matching needs of one person, and what it found."""

    name: str
    id_hash: str = ""
    phone_hash: str = ""
    origin: str = ""
    health_code: str = HealthCode.GREEN
    temperature: float | None = None
    test_hours: int | None = None
    report_code: str = ""
    # found:
    resident: tuple | None = None  # (id, unit_id, path, address)
    already_pushed: bool = False
    self_report: SelfReport | None = None
    risk_level: str = ""
    risk_area: str = ""
    reasons: list[str] = field(default_factory=list)

    @property
    def abnormal(self) -> bool:
        return self.health_code in (HealthCode.RED, HealthCode.YELLOW) or (
            self.temperature is not None and self.temperature >= FEVER)

    @property
    def needs_verification(self) -> bool:
        return bool(self.reasons)


def match(people: list[Person], *, at: dt.datetime | None = None) -> list[Person]:
    """Fill in what each person matches and why they need verification (``reasons``)."""
    at = at or timezone.now()
    ids = sorted({p.id_hash for p in people if p.id_hash})
    phones = sorted({p.phone_hash for p in people if p.phone_hash})
    codes = sorted({p.report_code for p in people if p.report_code})
    residents = {}
    if ids:
        for rid, id_hash, unit_id, path, address in (
                Resident.objects.filter(id_hash__in=ids, status__in=ACTIVE_STATUSES).order_by("-id")
                .values_list("id", "id_hash", "unit_id", "path", "household__address")):
            residents[id_hash] = (rid, unit_id, path, address)
    pushed_ids, pushed_phones = set(), set()
    if ids or phones:
        since = at - dt.timedelta(days=DEFAULT_WINDOW_DAYS)
        for id_hash, phone_hash in (PushedPerson.objects.filter(Q(id_hash__in=ids) | Q(phone_hash__in=phones),
                                                                last_pushed_at__gte=since)
                                    .values_list("id_hash", "phone_hash")):
            pushed_ids.add(id_hash)
            pushed_phones.add(phone_hash)
    reports_by_code, reports_by_id = {}, {}
    if ids or codes:
        for report in SelfReport.objects.filter(Q(code__in=codes) | Q(id_hash__in=ids),
                                                status=SelfReportStatus.REPORTED).order_by("created_at"):
            reports_by_code[report.code] = report
            if report.id_hash:
                reports_by_id[report.id_hash] = report
    for p in people:
        p.resident = residents.get(p.id_hash) if p.id_hash else None
        p.already_pushed = bool((p.id_hash and p.id_hash in pushed_ids) or (p.phone_hash and p.phone_hash in pushed_phones))
        p.self_report = reports_by_code.get(p.report_code) or (reports_by_id.get(p.id_hash) if p.id_hash else None)
    return assess(people, at=at)


def assess(people: list[Person], *, at: dt.datetime | None = None) -> list[Person]:
    """Fill in the risk area and the reasons for verification: what needs no look-up in the database (the
    registration's hot path, ``gate``, matches against residents, pushed people and self-reports in SQL)."""
    at = at or timezone.now()
    index, protocol = policy_today(timezone.localdate(at))
    hours = test_hours_required()
    for p in people:
        level, area = classify(index, p.origin) if p.origin else (None, "")
        p.risk_level, p.risk_area = level or "", area
        reasons = []
        if level:
            basis = f"（{protocol}）" if protocol else ""
            reasons.append(f"来自{RISK_LABELS.get(level, level)} {p.risk_area}{basis}")
        if p.health_code in (HealthCode.RED, HealthCode.YELLOW):
            reasons.append(str(HealthCode(p.health_code).label))
        if p.temperature is not None and p.temperature >= FEVER:
            reasons.append(f"发热 {p.temperature:.1f}℃")
        if p.test_hours is None or p.test_hours > hours:
            reasons.append(f"无 {hours} 小时内核酸阴性证明")
        p.reasons = reasons
    return people


def classify(index: RiskIndex, origin: str) -> tuple[str | None, str]:
    """(risk level or None, the area's name) of a place as typed, remembered with the kept policy (a checkpoint
    sees the same few dozen origins all day; the risk index compares each with every area in force)."""
    memo = index.__dict__.setdefault("_checkpoint_memo", {})
    hit = memo.get(origin)
    if hit is None:
        level, area = index.classify(origin)
        hit = (level, area.name if area is not None else "")
        if len(memo) < 10_000:
            memo[origin] = hit
    return hit
