"""The verification form (核查): its choices, the checking of its fields and of each outcome's required
fields, and the policy's recommendation. Reads only: ``actions.do_save_verification`` writes.

``clean_fields`` checks the keys present in ``data`` (the page saves one section at a time); ``clean_outcome``
checks an outcome's detail. Errors are ``VerifyError``\\ s naming the form field (``VerifyError.field``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db.models import TextChoices
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bihuan.core.errors import Refused, whole_number
from bihuan.policy import rules as policy
from bihuan.register.models import Unit

from .models import Measure, Outcome, PushedPerson, Verification

log = logging.getLogger("bihuan.pushes")

MAX_ATTEMPTS = 20
MAX_ROWS = 30  # visited places, tests


class CallResult(TextChoices):
    REACHED = "reached", _("已接通")
    NO_ANSWER = "no_answer", _("无人接听")
    WRONG_NUMBER = "wrong_number", _("号码错误")
    REFUSED = "refused", _("拒绝配合")
    POWERED_OFF = "powered_off", _("关机 / 停机")


class TestResult(TextChoices):
    NEGATIVE = "negative", _("阴性")
    POSITIVE = "positive", _("阳性")
    PENDING = "pending", _("待出结果")


# Why a person cannot be reached (无法触达): a short list, "other" needs the free-text note. The default is the
# last failed call's result.
UNREACHABLE_REASONS = [("wrong_number", _("号码错误 / 空号")), ("no_answer", _("多次拨打无人接听")),
                       ("powered_off", _("关机 / 停机")), ("refused", _("拒绝配合")),
                       ("not_found", _("查无此人（地址无此人）")), ("other", _("其他（请说明）"))]
REASON_VALUES = {value for value, _label in UNREACHABLE_REASONS}

DWELLING_TYPES = [("own", _("自有住房")), ("rented", _("租住")), ("relatives", _("亲友家")),
                  ("hotel", _("宾馆酒店")), ("dormitory", _("单位宿舍 / 工地")), ("other", _("其他"))]
HEALTH_STATUSES = [("healthy", _("健康")), ("symptoms", _("有症状")), ("ill", _("患病在治")),
                   ("other", _("其他"))]
SYMPTOMS = [("fever", _("发热")), ("cough", _("咳嗽")), ("sore_throat", _("咽痛")), ("fatigue", _("乏力")),
            ("smell_taste", _("嗅（味）觉减退")), ("diarrhea", _("腹泻"))]

# outcome -> its required detail fields (the form's names; values go to ``outcome_detail``).
OUTCOME_FIELDS: dict[str, tuple[str, ...]] = {
    Outcome.NEW_CONTROL: ("measure",),
    Outcome.ELSEWHERE_IN_DISTRICT: ("target_unit",),
    Outcome.OUTSIDE_DISTRICT: ("destination_city",),
    Outcome.NO_SUCH_PERSON: (),
    Outcome.LEFT: ("left_date", "left_to"),
    Outcome.ALREADY_CONTROLLED: ("where", "since"),
    Outcome.ALREADY_RELEASED: ("where", "since"),
    Outcome.NO_CONTROL_NEEDED: ("basis",),
    Outcome.VERIFYING: (),
    Outcome.OTHER: ("note",),
}
# Optional detail fields kept with an outcome.
OUTCOME_OPTIONAL: dict[str, tuple[str, ...]] = {
    Outcome.NEW_CONTROL: ("override_reason",),
    Outcome.ELSEWHERE_IN_DISTRICT: ("transfer_reason",),
    Outcome.OUTSIDE_DISTRICT: ("destination_address", "handoff_note"),
    Outcome.NO_SUCH_PERSON: ("reason", "note"),
    Outcome.LEFT: (),
    Outcome.ALREADY_CONTROLLED: (),
    Outcome.ALREADY_RELEASED: (),
    Outcome.NO_CONTROL_NEEDED: (),
    Outcome.VERIFYING: (),
    Outcome.OTHER: (),
}
DETAIL_DATES = {"left_date", "since"}
TEXT_FIELDS = {"origin": 200, "destination": 200, "compound": 100, "building": 20, "entrance": 20, "room": 20,
               "dwelling_type": 30, "health_status": 100}
DETAIL_TEXT_MAX = 300



class VerifyError(Refused):
    """Refused; ``field`` names the form field (``visited[2].to``), ``message`` says why."""


# --- parsing ---------------------------------------------------------------------------------------------

def _date(field: str, value: Any, *, required: bool = False) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value or "").strip()
    if not text:
        if required:
            raise VerifyError(field, _("必填"))
        return None
    try:
        day = dt.date.fromisoformat(text[:10])
    except ValueError:
        raise VerifyError(field, _("日期格式应为 YYYY-MM-DD")) from None
    if day > timezone.localdate() + dt.timedelta(days=1):
        raise VerifyError(field, _("日期不能晚于今天"))
    return day


def _int(field: str, value: Any, low: int, high: int) -> int | None:
    return None if value in (None, "") else whole_number(value, field, low, high, error=VerifyError)


def text_field(field: str, value: Any, limit: int, *, required: bool = False) -> str:
    text = " ".join(str(value or "").split())
    if required and not text:
        raise VerifyError(field, _("必填"))
    if len(text) > limit:
        raise VerifyError(field, _("最多 %(n)s 个字") % {"n": limit})
    return text


def _visited(value: Any) -> list[dict]:
    rows = []
    for i, row in enumerate(value or []):
        if not isinstance(row, dict):
            raise VerifyError(f"visited[{i}]", _("格式错误"))
        place = text_field(f"visited[{i}].place", row.get("place"), 100)
        start = _date(f"visited[{i}].from", row.get("from"))
        end = _date(f"visited[{i}].to", row.get("to"))
        if not place:
            if start or end:
                raise VerifyError(f"visited[{i}].place", _("请填写地点"))
            continue
        if start and end and start > end:
            raise VerifyError(f"visited[{i}].to", _("离开日期早于到达日期"))
        rows.append({"place": place, "from": start.isoformat() if start else "", "to": end.isoformat() if end else ""})
    if len(rows) > MAX_ROWS:
        raise VerifyError("visited", _("最多 %(n)s 条") % {"n": MAX_ROWS})
    return rows


def _tests(value: Any) -> list[dict]:
    rows = []
    for i, row in enumerate(value or []):
        if not isinstance(row, dict):
            raise VerifyError(f"tests[{i}]", _("格式错误"))
        day = _date(f"tests[{i}].date", row.get("date"))
        result = str(row.get("result") or "").strip()
        if not day and not result:
            continue
        if not day:
            raise VerifyError(f"tests[{i}].date", _("请填写检测日期"))
        if result not in TestResult.values:
            raise VerifyError(f"tests[{i}].result", _("请选择检测结果"))
        rows.append({"date": day.isoformat(), "result": result})
    if len(rows) > MAX_ROWS:
        raise VerifyError("tests", _("最多 %(n)s 条") % {"n": MAX_ROWS})
    return sorted(rows, key=lambda r: r["date"])


def _symptoms(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [s for s in value.replace("，", ",").replace("、", ",").split(",")]
    out = []
    for s in value or []:
        s = text_field("symptoms", s, 30)
        if s and s not in out:
            out.append(s)
    return out[:20]


def clean_fields(data: dict) -> dict:
    """The form fields of Verification present in ``data``, validated (outcomes are checked separately)."""
    clean: dict[str, Any] = {}
    for name, limit in TEXT_FIELDS.items():
        if name in data:
            clean[name] = text_field(name, data[name], limit)
    if "arrival_date" in data:
        clean["arrival_date"] = _date("arrival_date", data["arrival_date"])
    if "cohabitants" in data:
        clean["cohabitants"] = _int("cohabitants", data["cohabitants"], 0, 50)
    if "vaccine_doses" in data:
        clean["vaccine_doses"] = _int("vaccine_doses", data["vaccine_doses"], 0, 6)
    if "visited" in data:
        clean["visited"] = _visited(data["visited"])
    if "tests" in data:
        clean["tests"] = _tests(data["tests"])
    if "symptoms" in data:
        clean["symptoms"] = _symptoms(data["symptoms"])
    return clean


def _has_failed_call(ver: Verification) -> bool:
    return any(a.get("result") and a.get("result") != CallResult.REACHED for a in ver.call_attempts or [])


def last_failed_call(ver: Verification) -> str:
    """The reason the last failed call suggests (``""`` when none does)."""
    for a in reversed(ver.call_attempts or []):
        result = a.get("result")
        if result and result != CallResult.REACHED:
            return result if result in REASON_VALUES else "other"
    return ""


def clean_outcome(ver: Verification, outcome: str, data: dict) -> dict:
    """The outcome's detail, its required fields checked (``data`` holds the form's detail fields)."""
    if outcome not in Outcome.values:
        raise VerifyError("outcome", _("请选择核查结果"))
    if outcome == Outcome.NO_SUCH_PERSON and not _has_failed_call(ver):
        raise VerifyError("call_attempts", _("查无此人需要至少一次未接通的通话记录"))
    detail: dict[str, Any] = {}
    for name in OUTCOME_FIELDS[outcome] + OUTCOME_OPTIONAL[outcome]:
        required = name in OUTCOME_FIELDS[outcome]
        raw = data.get(name)
        if name in DETAIL_DATES:
            day = _date(name, raw, required=required)
            if day:
                detail[name] = day.isoformat()
        elif name == "target_unit":
            if raw in (None, ""):
                raise VerifyError(name, _("请选择居住地所属单位"))
            unit = raw if isinstance(raw, Unit) else Unit.objects.filter(pk=_int(name, raw, 1, 2**62)).first()
            if unit is None:
                raise VerifyError(name, _("没有这个单位"))
            detail[name], detail["target_unit_name"] = unit.pk, unit.name
        elif name == "reason":
            value = str(raw or "").strip() or last_failed_call(ver)
            if value not in REASON_VALUES:
                raise VerifyError(name, _("请选择无法触达的原因"))
            detail[name] = value
        elif name == "measure":
            value = str(raw or "").strip()
            if value not in Measure.values:
                raise VerifyError(name, _("请确认或选择管控措施"))
            detail[name] = value
        else:
            value = text_field(name, raw, DETAIL_TEXT_MAX, required=required)
            if value:
                detail[name] = value
    if outcome == Outcome.NO_SUCH_PERSON and detail.get("reason") == "other" and not detail.get("note"):
        raise VerifyError("note", _("原因为“其他”时请说明"))
    return detail


# --- policy ----------------------------------------------------------------------------------------------

def recommendation(person: PushedPerson, ver: Verification) -> tuple[str, str]:
    """The policy's (measure, basis), or ("", "") when the policy fails (advice only: a bug there must not
    stop a verification being saved)."""
    try:
        measure, basis = policy.recommend(person, ver)
    except Exception:  # noqa: BLE001 - advice only
        log.exception("policy.recommend failed for person %s", person.pk)
        return "", ""
    return (measure or "") if (measure or "") in Measure.values else "", (basis or "")[:300]
