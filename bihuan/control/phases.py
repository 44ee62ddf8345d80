"""The phases of a control case, from the protocol version (``policy.Protocol``) or a type's defaults.

A protocol rule is ``{"risk", "within_days", "measure", "days", "tests", "then": [{"measure", "days", "tests"}]}``;
its phases are the first step and its ``then`` steps, each ``{"type": ControlType code, "days": n,
"tests": [day, …]}``. A step may also carry where it is spent (``site_kind``, ``site_address``, ``site_room``)
when that differs from the case's site, e.g. the home address of the home-monitoring phase that follows
centralized quarantine.

- 第九版, high risk: ``[{"type": "centralized_quarantine", "days": 7, "tests": [1, 2, 3, 5, 7]}]``
- 第八版 ("14 + 7"), high risk: 14 days centralized (tests 1, 4, 7, 14), then 7 days home monitoring (2, 7).

Chaining: **each phase is a case of its own** (one type per case). The case holds the whole list and its
``phase_index``; when a phase ends with its tests negative, ``release.propose_releases`` closes it as
``phase_ended`` and opens the next phase as a new case whose ``previous`` is this one.

Dates: day 1 is the start date, the end date is ``start + days − 1`` (inclusive), test day N is
``start + N − 1``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bihuan.core.errors import Refused, whole_number
from bihuan.policy.models import Measure, Protocol

# A verification's confirmed measure → the control type that carries it out (the codes are the same).
MEASURE_TYPES = {
    Measure.CENTRALIZED_QUARANTINE: "centralized_quarantine",
    Measure.HOME_ISOLATION: "home_isolation",
    Measure.HOME_MONITORING: "home_monitoring",
}

# A type's own phase when the protocol in force has no rule for it (第九版 has none for home monitoring).
DEFAULT_PHASES: dict[str, dict] = {
    "centralized_quarantine": {"days": 7, "tests": [1, 2, 3, 5, 7]},
    "home_isolation": {"days": 7, "tests": [1, 4, 7]},
    "home_monitoring": {"days": 7, "tests": [1, 4, 7]},
}
FALLBACK_PHASE = {"days": 7, "tests": [1, 7]}  # a type added as data, with no rule and no default here
MAX_DAYS = 60
SITE_KEYS = ("site_kind", "site_address", "site_room")


class PhaseError(Refused):
    """A phases list was refused; ``field`` names what is wrong (``phases[1].days``)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def type_code_for(measure: str) -> str | None:
    """The control type code of a ``Measure`` value (None for tests_only / none: no case for those)."""
    return MEASURE_TYPES.get(measure)


def step(type_code: str, days: int, tests: list[int] | tuple[int, ...] = (), **site: str) -> dict:
    out = {"type": type_code, "days": int(days), "tests": sorted({int(t) for t in tests})}
    out.update({k: v for k, v in site.items() if k in SITE_KEYS and v})
    return out


def _steps(steps: list[dict]) -> list[dict]:
    """Protocol steps as phases; the chain stops at a step no control type carries out (tests only)."""
    out = []
    for s in steps:
        code = MEASURE_TYPES.get(s.get("measure") or s.get("type"))
        if code is None:
            break
        out.append(step(code, s.get("days") or DEFAULT_PHASES.get(code, FALLBACK_PHASE)["days"],
                        s.get("tests") or ()))
    return out


def rule_phases(rule: dict) -> list[dict]:
    """A protocol rule's phases: its first step, then its ``then`` steps."""
    return _steps([rule, *(rule.get("then") or [])])


def default_phase(type_code: str) -> dict:
    d = DEFAULT_PHASES.get(type_code, FALLBACK_PHASE)
    return step(type_code, d["days"], d["tests"])


def phases_for(measure: str, protocol: Protocol | None = None, *, risk: str | None = None) -> list[dict]:
    """The phases for ``measure`` (a ``Measure`` value or type code) under ``protocol``.

    The protocol's rule whose first step is this measure (the one for ``risk`` if given and present) gives the
    chain; else a ``then`` step with this measure gives it from there on; else the type's default phase.
    """
    code = MEASURE_TYPES.get(measure, measure)
    rules = list(getattr(protocol, "rules", None) or [])
    firsts = [r for r in rules if r.get("measure") == code]
    if risk:
        firsts.sort(key=lambda r: r.get("risk") != risk)
    if firsts:
        phases = rule_phases(firsts[0])
        if phases:
            return phases
    for r in rules:
        then = list(r.get("then") or [])
        for i, s in enumerate(then):
            if s.get("measure") == code:
                phases = _steps(then[i:])
                if phases:
                    return phases
    return [default_phase(code)]


def protocol_named(name: str, on: dt.date | None = None) -> Protocol | None:
    """The protocol version called ``name`` (the latest such, in force on ``on`` if given)."""
    qs = Protocol.objects.filter(name=name)
    if on is not None and qs.filter(effective_from__lte=on).exists():
        qs = qs.filter(effective_from__lte=on)
    return qs.order_by("-effective_from", "-id").first()


def protocol_for(on: dt.date, name: str = "") -> Protocol | None:
    """The named version, or the one in force on ``on``."""
    from bihuan.policy.rules import protocol_in_force

    if name:
        return protocol_named(name, on)
    return protocol_in_force(on)


def default_phases(type_code: str, on: dt.date, protocol_name: str = "") -> tuple[list[dict], str]:
    """(phases, protocol name) for a case of this type starting on ``on``: from the protocol in force (or the
    named one) if it has a rule for the type, else the type's default."""
    protocol = protocol_for(on, protocol_name)
    return phases_for(type_code, protocol), (protocol.name if protocol else "")


def _int(value: Any, field: str, low: int, high: int) -> int:
    return whole_number(value, field, low, high, error=PhaseError)


def clean_phases(phases: Any, type_codes: set[str] | None = None) -> list[dict]:
    """Check a phases list given by staff; returns it normalised. ``type_codes``: the known control types."""
    if not isinstance(phases, list | tuple) or not phases:
        raise PhaseError("phases", "至少需要一个阶段 (at least one phase)")
    out = []
    for i, raw in enumerate(phases):
        field = f"phases[{i}]"
        if not isinstance(raw, dict):
            raise PhaseError(field, "应为对象 (must be an object)")
        code = MEASURE_TYPES.get(raw.get("type") or raw.get("measure"), raw.get("type") or raw.get("measure"))
        if not code or (type_codes is not None and code not in type_codes):
            raise PhaseError(f"{field}.type", "未知的管控类型 (unknown control type)")
        days = _int(raw.get("days"), f"{field}.days", 1, MAX_DAYS)
        tests = raw.get("tests") or []
        if not isinstance(tests, list | tuple):
            raise PhaseError(f"{field}.tests", "应为天数列表 (a list of days)")
        tests = [_int(t, f"{field}.tests[{j}]", 1, days) for j, t in enumerate(tests)]
        if tests != sorted(set(tests)):
            raise PhaseError(f"{field}.tests", "天数应从小到大且不重复 (ascending, without repeats)")
        site = {k: str(raw[k]).strip() for k in SITE_KEYS if raw.get(k)}
        if site.get("site_kind") and site["site_kind"] not in ("home", "hotel"):
            raise PhaseError(f"{field}.site_kind", "应为 home 或 hotel (home or hotel)")
        out.append(step(code, days, tests, **site))
    return out


def end_date(start: dt.date, days: int) -> dt.date:
    """The last day (inclusive) of a phase of ``days`` days starting on ``start``."""
    return start + dt.timedelta(days=days - 1)


def test_date(start: dt.date, day: int) -> dt.date:
    return start + dt.timedelta(days=day - 1)


def replan_tests(tests: list[int], old_days: int, new_days: int) -> list[int]:
    """The test days after a period changes from ``old_days`` to ``new_days``: days past the new end go; if the
    old plan tested on its last day (the release test), the new plan tests on its new last day."""
    kept = [t for t in tests if t <= new_days]
    if tests and tests[-1] == old_days and new_days not in kept:
        kept.append(new_days)
    return sorted(set(kept))
