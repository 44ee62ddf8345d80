"""Checking policy data before it is written: a protocol edition's rules and one risk area's values. Errors
are ``PolicyError``\\ s naming the field (``rules[1].days``, ``effective_to``)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from bihuan.core.errors import Refused, whole_number

from .models import Measure, RiskArea, RiskLevel
from .places import normalize_place
from .rules import SEVERITY, as_date

MAX_DAYS = 60


class PolicyError(Refused):
    """A policy write was refused; ``field`` names what it is about (``rules[0].days``)."""


def _int(value: Any, field: str, low: int, high: int) -> int:
    return whole_number(value, field, low, high, error=PolicyError)


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
    start = as_date(effective_from)
    if start is None:
        raise PolicyError("effective_from: 必填，如 2022-06-28 (required, e.g. 2022-06-28)")
    end = as_date(effective_to) if effective_to not in (None, "") else None
    if effective_to not in (None, "") and end is None:
        raise PolicyError("effective_to: 无法识别的日期 (cannot read this date)")
    if end is not None and end <= start:
        raise PolicyError("effective_to: 失效日期应晚于生效日期 (must be after the effective date)")
    list_name = str(list_name or "").strip()
    if len(list_name) > RiskArea._meta.get_field("list_name").max_length:
        raise PolicyError("list_name: 太长 (too long)")
    return {"level": level, "name": name, "area_code": code, "effective_from": start, "effective_to": end,
            "list_name": list_name}
