"""The writes of policy data, each checked, in a transaction, with its audit row: risk areas added and
lifted (one by one or a whole published list, ``io.import_risk_areas``) and protocol editions added. An
edition in use is never edited: a change is a new edition in force from its own date."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from bihuan.core import audit
from bihuan.core.roles import Perm
from bihuan.register.access import require

from .models import Protocol, RiskArea
from .rules import as_date
from .validation import PolicyError, clean_area, validate_rules


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
    end = as_date(effective_to)
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
    start = as_date(effective_from)
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
