"""Risk classification from versioned policy data (分级分类管控), and the actions that edit that data.

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
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.core.roles import Perm
from bihuan.register.access import require

from .models import Measure, Protocol, RiskArea, RiskLevel

SEVERITY = {RiskLevel.HIGH: 3, RiskLevel.MEDIUM: 2, RiskLevel.LOW: 1}
LEVELS = (RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW)  # most severe first
DEFAULT_WINDOW = 14  # days looked back when a protocol has no rules
MAX_DAYS = 60


class PolicyError(Refused):
    """A policy write was refused; the message starts with the field it is about (``rules[0].days: …``)."""


# --------------------------------------------------------------------------------------- place names

# Administrative suffixes, longest first (a segment of a name ends with one of them).
_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "自治旗", "地区", "新区", "林区", "街道", "省", "市", "盟",
             "区", "县", "旗", "镇", "乡")
_SEGMENT = re.compile("(.+?(?:" + "|".join(_SUFFIXES) + "))")
_ETHNIC = re.compile(r"(壮族|回族|维吾尔)$")
_CODE = re.compile(r"(?<!\d)(\d{12}|\d{9}|\d{6})(?!\d)")
_SPACE = re.compile(r"\s+")
# A residue like "长春市" names another place; "中国" or "来自" do not.
_ADMIN_WORD = re.compile(".(?:" + "|".join(_SUFFIXES) + ")")


def normalize_place(text: str) -> str:
    """NFKC (full-width digits and letters), no spaces."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text or ""))


def _stem(segment: str) -> str:
    for suffix in _SUFFIXES:
        if segment.endswith(suffix) and len(segment) > len(suffix):
            stem = _ETHNIC.sub("", segment[: -len(suffix)])
            return stem if len(stem) >= 2 else ""
    return ""


@lru_cache(maxsize=8192)
def name_segments(name: str) -> tuple[tuple[str, str], ...]:
    """``上海市浦东新区`` → ((``上海市``, ``上海``), (``浦东新区``, ``浦东``)): each part and its stem (or "")."""
    text = normalize_place(name)
    parts = _SEGMENT.findall(text)
    rest = text[sum(len(p) for p in parts):]
    if rest:
        if parts and rest in _SUFFIXES:  # 沙市 + 区 → 沙市区
            parts[-1] += rest
        else:
            parts.append(rest)
    return tuple((p, _stem(p)) for p in parts)


def code_prefix(code: str) -> str:
    """The significant part of a GB/T 2260 code: 310000 → 31, 310100 → 3101, 310115125 → 310115125."""
    code = normalize_place(code)
    if not code.isdigit():
        return ""
    while len(code) > 6 and code.endswith("000"):
        code = code[:-3]
    if len(code) == 6:
        while len(code) > 2 and code.endswith("00"):
            code = code[:-2]
    return code


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
    if missing and _ADMIN_WORD.search(residue):
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
        codes = [code_prefix(c) for c in _CODE.findall(place)]
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


def _as_date(value: Any) -> dt.date | None:
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


_VIA_SPLIT = re.compile(r"[、,，;；/|→>＞\n]+|-{1,2}>|—+")


def split_places(text: str) -> list[str]:
    """``北京市、天津市→石家庄`` → [``北京市``, ``天津市``, ``石家庄``]."""
    return [p.strip() for p in _VIA_SPLIT.split(text or "") if p.strip()]


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
            places.append((place, _as_date(visit.get("to")) or _as_date(visit.get("from"))))
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


# --------------------------------------------------------------------------------------- validation


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise PolicyError(f"{field}: 应为整数 (must be a whole number)")
    if isinstance(value, str) and value.strip():
        value = unicodedata.normalize("NFKC", value).strip()
        if re.fullmatch(r"-?\d+", value):
            value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise PolicyError(f"{field}: 应为整数 (must be a whole number)")
    if not low <= value <= high:
        raise PolicyError(f"{field}: 应在 {low}–{high} 之间 (must be from {low} to {high})")
    return value


def parse_tests(value: Any, field: str = "tests") -> list[int]:
    """``[1, 2, 3]``, ``"1,2,3"`` or ``"1、2、3"`` → [1, 2, 3]."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [p for p in re.split(r"[\s,，、;；]+", unicodedata.normalize("NFKC", value)) if p]
    if not isinstance(value, list | tuple):
        raise PolicyError(f"{field}: 应为天数列表，如 1,2,3 (a list of days, e.g. 1,2,3)")
    return [_int(v, f"{field}[{i}]", 1, MAX_DAYS) for i, v in enumerate(value)]


def _step(raw: Any, field: str, *, first: bool) -> dict:
    if not isinstance(raw, dict):
        raise PolicyError(f"{field}: 应为对象 (must be an object)")
    allowed = {"risk", "within_days", "measure", "days", "tests", "then"} if first else {"measure", "days", "tests"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise PolicyError(f"{field}.{unknown[0]}: 未知字段 (unknown field)")
    measure = raw.get("measure")
    if measure not in Measure.values:
        raise PolicyError(f"{field}.measure: 应为 {' / '.join(Measure.values)} 之一 (unknown measure)")
    if not first and measure == Measure.NONE:
        raise PolicyError(f"{field}.measure: 后续措施不能是“无需管控” (a follow-up step needs a measure)")
    needs_days = measure not in (Measure.NONE,)
    days = _int(raw.get("days", 0) or 0, f"{field}.days", 1 if needs_days else 0, MAX_DAYS)
    tests = parse_tests(raw.get("tests"), f"{field}.tests")
    if tests != sorted(set(tests)):
        raise PolicyError(f"{field}.tests: 天数应从小到大且不重复 (days must be ascending, without repeats)")
    if tests and days and tests[-1] > days:
        raise PolicyError(f"{field}.tests: 第{tests[-1]}天超出了{days}天的期限 (a test day lies after the last day)")
    if measure == Measure.TESTS_ONLY and not tests:
        raise PolicyError(f"{field}.tests: “核酸检测”需要写明检测的天数 (tests_only needs test days)")
    return {"measure": measure, "days": days, "tests": tests}


def validate_rules(rules: Any) -> list[dict]:
    """Check and normalise a protocol's rules; raises ``PolicyError`` naming the field (``rules[1].days``)."""
    if not isinstance(rules, list) or not rules:
        raise PolicyError("rules: 至少需要一条规则 (at least one rule)")
    out, seen = [], set()
    for i, raw in enumerate(rules):
        field = f"rules[{i}]"
        step = _step(raw, field, first=True)
        risk = raw.get("risk")
        if risk not in RiskLevel.values:
            raise PolicyError(f"{field}.risk: 应为 high / medium / low 之一 (unknown risk level)")
        if risk in seen:
            raise PolicyError(f"{field}.risk: 同一风险等级只能有一条规则 (one rule per risk level)")
        seen.add(risk)
        rule = {"risk": risk, "within_days": _int(raw.get("within_days"), f"{field}.within_days", 1, MAX_DAYS),
                **step}
        then = raw.get("then") or []
        if not isinstance(then, list):
            raise PolicyError(f"{field}.then: 应为列表 (must be a list)")
        if then and step["measure"] == Measure.NONE:
            raise PolicyError(f"{field}.then: “无需管控”之后不能再有措施 (nothing follows “none”)")
        rule["then"] = [_step(s, f"{field}.then[{j}]", first=False) for j, s in enumerate(then)]
        out.append(rule)
    out.sort(key=lambda r: -SEVERITY[r["risk"]])
    return out


def clean_area(*, level: Any, name: Any, area_code: Any = "", effective_from: Any, effective_to: Any = None,
               list_name: Any = "") -> dict:
    """Check one risk area's values; raises ``PolicyError`` naming the field."""
    if level not in RiskLevel.values:
        raise PolicyError("level: 应为 high / medium / low 之一 (unknown risk level)")
    name = normalize_place(str(name or ""))
    if not name:
        raise PolicyError("name: 必填 (required)")
    if len(name) > RiskArea._meta.get_field("name").max_length:
        raise PolicyError("name: 太长 (too long)")
    code = normalize_place(str(area_code or ""))
    if code and not re.fullmatch(r"\d{6}(\d{3}){0,2}", code):
        raise PolicyError("area_code: 地区编码应为 6、9 或 12 位数字 (GB/T 2260: 6, 9 or 12 digits)")
    start = _as_date(effective_from)
    if start is None:
        raise PolicyError("effective_from: 必填，如 2022-06-28 (required, e.g. 2022-06-28)")
    end = _as_date(effective_to) if effective_to not in (None, "") else None
    if effective_to not in (None, "") and end is None:
        raise PolicyError("effective_to: 无法识别的日期 (cannot read this date)")
    if end is not None and end <= start:
        raise PolicyError("effective_to: 失效日期应晚于生效日期 (must be after the effective date)")
    list_name = str(list_name or "").strip()
    if len(list_name) > RiskArea._meta.get_field("list_name").max_length:
        raise PolicyError("list_name: 太长 (too long)")
    return {"level": level, "name": name, "area_code": code, "effective_from": start, "effective_to": end,
            "list_name": list_name}


# --------------------------------------------------------------------------------------- actions


def _check(acting_user) -> None:
    if acting_user is not None:  # None = the system itself (data migrations, tests' setup)
        require(acting_user, Perm.EDIT_POLICY)


def _area_changes(area: RiskArea) -> dict:
    return {"level": area.level, "name": area.name, "area_code": area.area_code,
            "effective_from": area.effective_from.isoformat(),
            "effective_to": area.effective_to.isoformat() if area.effective_to else None,
            "list_name": area.list_name}


def do_add_risk_area(*, level: str, name: str, effective_from, area_code: str = "", effective_to=None,
                     list_name: str = "", acting_user) -> RiskArea:
    values = clean_area(level=level, name=name, area_code=area_code, effective_from=effective_from,
                        effective_to=effective_to, list_name=list_name)
    with transaction.atomic():
        _check(acting_user)
        area = RiskArea.objects.create(**values)
        audit.record(actor=acting_user, action="policy.risk_area.add", target=area, changes=_area_changes(area))
    return area


def do_end_risk_area(*, area_id: int, effective_to, acting_user) -> RiskArea:
    """Lift a risk area: from ``effective_to`` on it no longer applies."""
    end = _as_date(effective_to)
    if end is None:
        raise PolicyError("effective_to: 必填，如 2022-07-10 (required)")
    with transaction.atomic():
        _check(acting_user)
        area = RiskArea.objects.select_for_update().filter(pk=area_id).first()
        if area is None:
            raise PolicyError("area: 没有这个风险区 (no such risk area)")
        if end <= area.effective_from:
            raise PolicyError("effective_to: 失效日期应晚于生效日期 (must be after the effective date)")
        if area.effective_to is not None and area.effective_to <= end:
            raise PolicyError(f"effective_to: 该风险区已于 {area.effective_to:%Y-%m-%d} 失效 (already ended)")
        before = area.effective_to
        area.effective_to = end
        area.save(update_fields=["effective_to"])
        audit.record(actor=acting_user, action="policy.risk_area.end", target=area,
                     changes={"name": area.name, "effective_to": [before.isoformat() if before else None,
                                                                   end.isoformat()]})
    return area


def do_add_protocol(*, name: str, effective_from, rules: Any, note: str = "", acting_user) -> Protocol:
    """A new protocol version, in force from ``effective_from`` until the next one."""
    name = (name or "").strip()
    if not name:
        raise PolicyError("name: 必填，如 第九版 (required)")
    if len(name) > Protocol._meta.get_field("name").max_length:
        raise PolicyError("name: 太长 (too long)")
    start = _as_date(effective_from)
    if start is None:
        raise PolicyError("effective_from: 必填，如 2022-06-28 (required)")
    clean = validate_rules(rules)
    with transaction.atomic():
        _check(acting_user)
        if Protocol.objects.filter(effective_from=start).exists():
            raise PolicyError(f"effective_from: {start:%Y-%m-%d} 已有一个方案版本生效 (a version already starts that day)")
        protocol = Protocol.objects.create(name=name, effective_from=start, rules=clean, note=(note or "").strip())
        audit.record(actor=acting_user, action="policy.protocol.add", target=protocol,
                     changes={"name": name, "effective_from": start.isoformat(), "rules": clean})
    return protocol
