"""Risk classification from versioned policy data (分级分类管控).

Risk-area lists (``RiskArea``) and protocol versions (``Protocol``) are data with dates, never code: the
command office adds areas as lists are published, ends them as they are lifted, and adds a protocol version
when a new edition takes effect. Classification always uses what was in force on the day in question, so a
record from March 2022 is judged by the rules of March 2022 even when read in July.

Dates
-----
A risk area is in force from ``effective_from`` (inclusive) until ``effective_to`` (exclusive: the first day it
no longer applies; empty = still in force). A protocol is in force from its ``effective_from`` until the next
version's.

Matching a place to an area (``risk_of``)
-----------------------------------------
Places come as typed by people and by other systems: ``上海市浦东新区张江镇``, ``上海浦东``, ``浦东新区``,
``310115``. An area matches a place when

- by code: the place holds a GB/T 2260 code that starts with the area's code (trailing zero groups of the
  area's code dropped: ``310000`` is all of Shanghai, ``310115`` Pudong), or
- by name: the area's most specific part (``浦东新区``, or its stem ``浦东``) is in the place text, and what
  stands in front of it does not contradict the area's higher parts: it names them (``上海市`` / ``上海``), or
  it names no administrative unit at all (``中国``, nothing). So ``上海市浦东新区``, ``上海浦东`` and
  ``浦东新区`` match ``上海市浦东新区``, while ``长春市朝阳区`` does not match ``北京市朝阳区``. An area listed
  by its bare name (``浦东新区``) matches whatever stands in front.

The longest match wins: the area whose match reaches furthest into the place text, then the one with more
matched characters (``北京朝阳`` is 北京市朝阳区 rather than 辽宁省朝阳市), then the higher risk.

Recommending a measure (``recommend``)
--------------------------------------
The protocol in force on the arrival date; the places the person was at — origin and route (as pushed and as
verified, on the arrival date) and the visited places with their dates (on the last day there); the most
severe risk level found within its rule's ``within_days`` before arrival decides, and the rule gives the
measure, its days and test days, and what follows (``then``). The basis text names the protocol and the area:
``第九版：7日内到过高风险区 上海市浦东新区 → 集中隔离7天，第1、2、3、5、7天核酸``. Staff confirm or override
the recommendation (with a reason) in the verification action; this module only recommends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils import timezone, translation

from .models import Measure, Protocol, RiskArea, RiskLevel
from .places import code_prefix, codes_in, name_segments, names_a_place, normalize_place, split_places

SEVERITY = {RiskLevel.HIGH: 3, RiskLevel.MEDIUM: 2, RiskLevel.LOW: 1}
LEVELS = (RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW)  # most severe first
DEFAULT_WINDOW = 14  # days looked back when a protocol has no rules


# --------------------------------------------------------------------------------------- risk areas

def _find(text: str, forms: Iterable[str]) -> tuple[int, str] | None:
    for form in forms:
        if form:
            at = text.rfind(form)
            if at >= 0:
                return at, form
    return None


def _name_score(area_name: str, place: str) -> tuple[int, int] | None:
    """(where the match ends in the place text, matched characters), or None."""
    segments = name_segments(area_name)
    if not segments:
        return None
    found = _find(place, segments[-1])
    if found is None:
        return None
    at, form = found
    end, chars, residue = at + len(form), len(form), place[:at]
    missing = False
    for segment in reversed(segments[:-1]):
        higher = _find(residue, segment)
        if higher is None:
            missing = True
            continue
        h_at, h_form = higher
        residue = residue[:h_at] + residue[h_at + len(h_form):]
        chars += len(h_form)
    # The place names another province or city where the area names its own: not this area.
    if missing and names_a_place(residue):
        return None
    return end, chars


@dataclass(frozen=True)
class _Area:
    area: RiskArea
    prefix: str  # code prefix, or ""


class RiskIndex:
    """The risk areas in force on one day, loaded once (one query) for many places."""

    def __init__(self, on_date: dt.date, areas: Iterable[RiskArea] | None = None):
        self.on_date = on_date
        if areas is None:
            areas = areas_in_force(on_date)
        self.areas = [_Area(a, code_prefix(a.area_code)) for a in areas]

    def classify(self, place_text: str) -> tuple[str | None, RiskArea | None]:
        place = normalize_place(place_text)
        if not place:
            return None, None
        codes = codes_in(place)
        best: tuple | None = None
        for item in self.areas:
            area = item.area
            score = None
            if item.prefix and any(c.startswith(item.prefix) for c in codes):
                score = (len(place), len(area.name) + len(item.prefix))
            else:
                score = _name_score(area.name, place)
            if score is None:
                continue
            key = (*score, SEVERITY.get(area.level, 0), -area.pk if area.pk else 0)
            if best is None or key > best[0]:
                best = (key, area)
        if best is None:
            return None, None
        return best[1].level, best[1]


def areas_in_force(on_date: dt.date):
    """Risk areas in force on ``on_date`` (from inclusive, to exclusive)."""
    return RiskArea.objects.filter(
        Q(effective_to__isnull=True) | Q(effective_to__gt=on_date), effective_from__lte=on_date
    ).order_by("id")


def risk_of(place_text: str, on_date: dt.date, *, index: RiskIndex | None = None
            ) -> tuple[str | None, RiskArea | None]:
    """The risk level (a ``RiskLevel`` value, None when no listed area matches) of a place on a day, and the
    area that matched. Pass ``index`` (a ``RiskIndex`` of that day) to classify many places with one query."""
    if index is None or index.on_date != on_date:
        index = RiskIndex(on_date)
    return index.classify(place_text)


# --------------------------------------------------------------------------------------- protocols


def protocol_in_force(on_date: dt.date) -> Protocol | None:
    return Protocol.objects.filter(effective_from__lte=on_date).order_by("-effective_from", "-id").first()


def _label(choices, value: str) -> str:
    with translation.override(None):  # the Chinese msgids: basis texts are stored, one language
        try:
            return str(choices(value).label)
        except ValueError:
            return value


def _days(tests: list[int]) -> str:
    return "、".join(str(t) for t in tests)


def measure_text(measure: str, days: int = 0, tests: list[int] | None = None) -> str:
    """``集中隔离7天，第1、2、3、5、7天核酸``; ``核酸检测：3天内2次（第1、3天）``; ``无需管控``."""
    tests = list(tests or [])
    label = _label(Measure, measure)
    if measure == Measure.NONE:
        return label
    if measure == Measure.TESTS_ONLY:
        if days and tests:
            return f"{label}：{days}天内{len(tests)}次（第{_days(tests)}天）"
        return f"{label}：第{_days(tests)}天" if tests else label
    text = f"{label}{days}天" if days else label
    if tests:
        text += f"，第{_days(tests)}天核酸"
    return text


def rule_text(rule: dict) -> str:
    text = measure_text(rule["measure"], rule.get("days", 0), rule.get("tests"))
    for step in rule.get("then") or []:
        text += "；再" + measure_text(step["measure"], step.get("days", 0), step.get("tests"))
    return text


def rule_summary(rule: dict) -> str:
    """One line for the policy page: ``7日内到过高风险区 → 集中隔离7天，第1、2、3、5、7天核酸``."""
    return f"{rule['within_days']}日内到过{_label(RiskLevel, rule['risk'])}区 → {rule_text(rule)}"


@dataclass(frozen=True)
class Recommendation:
    measure: str  # a Measure value ("" when no protocol is in force)
    basis: str
    protocol: Protocol | None = None
    rule: dict | None = None
    level: str | None = None
    area: RiskArea | None = None
    place: str = ""
    days: int = 0
    tests: tuple[int, ...] = ()


def as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None




def places_of(person, verification=None) -> list[tuple[str, dt.date | None]]:
    """Every place the person was at, with the last day there (None = on the arrival date): origin and route
    as pushed and as verified, then the verified visited places."""
    places: list[tuple[str, dt.date | None]] = []
    texts = [getattr(verification, "origin", "") or "", person.origin or "", person.via or ""]
    for text in texts:
        for place in split_places(text):
            if (place, None) not in places:
                places.append((place, None))
    for visit in getattr(verification, "visited", None) or []:
        if not isinstance(visit, dict):
            continue
        place = str(visit.get("place") or "").strip()
        if place:
            places.append((place, as_date(visit.get("to")) or as_date(visit.get("from"))))
    return places


def arrival_of(person, verification=None) -> dt.date:
    return (getattr(verification, "arrival_date", None) or person.arrival_date
            or (timezone.localdate(person.first_pushed_at) if getattr(person, "first_pushed_at", None)
                else timezone.localdate()))


def explain(person, verification=None, *, arrival: dt.date | None = None) -> Recommendation:
    """The full recommendation for a pushed person (``recommend`` gives its measure and basis text)."""
    arrival = arrival or arrival_of(person, verification)
    protocol = protocol_in_force(arrival)
    if protocol is None:
        return Recommendation("", f"{arrival:%Y-%m-%d} 没有生效的防控方案，请人工研判")
    rules = {r["risk"]: r for r in protocol.rules or []}
    window = max((int(r.get("within_days") or 0) for r in rules.values()), default=DEFAULT_WINDOW)
    indexes: dict[dt.date, RiskIndex] = {}
    hits: list[tuple[str, RiskArea, str, int]] = []  # (level, area, place, days before arrival)
    for place, day in places_of(person, verification):
        day = min(day or arrival, arrival)
        if (arrival - day).days > window:
            continue
        index = indexes.get(day)
        if index is None:
            index = indexes[day] = RiskIndex(day)
        level, area = index.classify(place)
        if level and area is not None:
            hits.append((level, area, place, (arrival - day).days))
    for level in LEVELS:
        rule = rules.get(level)
        within = int(rule["within_days"]) if rule else window
        found = next((h for h in hits if h[0] == level and h[3] <= within), None)
        if found is None:
            continue
        _, area, place, _ago = found
        been = f"{protocol.name}：{within}日内到过{_label(RiskLevel, level)}区 {area.name}"
        if rule is None:
            return Recommendation(Measure.NONE, f"{been}（本版方案对此无管控要求）→ {_label(Measure, Measure.NONE)}",
                                  protocol, None, level, area, place)
        return Recommendation(rule["measure"], f"{been} → {rule_text(rule)}", protocol, rule, level, area, place,
                              int(rule.get("days") or 0), tuple(rule.get("tests") or ()))
    return Recommendation(Measure.NONE, f"{protocol.name}：{window}日内未到过风险区 → {_label(Measure, Measure.NONE)}",
                          protocol)


def recommend(person, verification=None) -> tuple[str, str]:
    """(recommended ``Measure`` value, basis text) for a pushed person and their verification (if any).
    The measure is "" when no protocol is in force on the arrival date."""
    r = explain(person, verification)
    return r.measure, r.basis
