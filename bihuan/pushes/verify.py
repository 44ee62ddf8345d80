"""Verification actions (核查): call attempts, the verification form, outcomes with their required fields.

``do_save_verification`` updates only the keys present in ``data`` (the page saves one section at a time).
Setting an outcome other than ``verifying`` completes the verification and reports its loop (反馈); going
back to ``verifying`` reopens it. ``elsewhere_in_district`` transfers the person (转办) in the same
transaction. Errors are ``VerifyError``\\ s whose message starts with the field's name.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from typing import Any

from django.db import transaction
from django.db.models import TextChoices
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.core.roles import Perm
from bihuan.loops import engine
from bihuan.loops.models import OPEN_STATES, Loop, LoopState
from bihuan.register.access import require, scoped
from bihuan.register.models import Unit

from .models import Measure, Outcome, PushedPerson, Transfer, TransferState, Verification

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
    Outcome.NO_SUCH_PERSON: ("note",),
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
    """Refused; ``field`` names the form field, and the message starts with it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- access ----------------------------------------------------------------------------------------------

def access_person(user, person_id: int, *, for_update: bool = False) -> PushedPerson:
    """A person handled in the user's part of the district (their unit's subtree), else 404."""
    qs = PushedPerson.objects.select_related("unit")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    person = scoped(user, qs).filter(pk=person_id).first()
    if person is None:
        raise Http404("no such person in your part of the district")
    return person


def _verification_for(user, verification: Verification) -> tuple[PushedPerson, Verification]:
    require(user, Perm.VERIFY_PUSH)
    person = access_person(user, verification.person_id, for_update=True)
    ver = Verification.objects.select_for_update().get(pk=verification.pk)
    return person, ver


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
    if value in (None, ""):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise VerifyError(field, _("应为整数")) from None
    if not low <= n <= high:
        raise VerifyError(field, _("应在 %(low)s 到 %(high)s 之间") % {"low": low, "high": high})
    return n


def _text(field: str, value: Any, limit: int, *, required: bool = False) -> str:
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
        place = _text(f"visited[{i}].place", row.get("place"), 100)
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
        s = _text("symptoms", s, 30)
        if s and s not in out:
            out.append(s)
    return out[:20]


def clean_fields(data: dict) -> dict:
    """The form fields of Verification present in ``data``, validated (outcomes are checked separately)."""
    clean: dict[str, Any] = {}
    for name, limit in TEXT_FIELDS.items():
        if name in data:
            clean[name] = _text(name, data[name], limit)
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


def clean_outcome(ver: Verification, outcome: str, data: dict) -> dict:
    """The outcome's detail, its required fields checked (``data`` holds the form's detail fields)."""
    if outcome not in Outcome.values:
        raise VerifyError("outcome", _("请选择核查结果"))
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
        elif name == "measure":
            value = str(raw or "").strip()
            if value not in Measure.values:
                raise VerifyError(name, _("请确认或选择管控措施"))
            detail[name] = value
        else:
            value = _text(name, raw, DETAIL_TEXT_MAX, required=required)
            if value:
                detail[name] = value
    if outcome == Outcome.NO_SUCH_PERSON and not _has_failed_call(ver):
        raise VerifyError("call_attempts", _("查无此人需要至少一次未接通的通话记录"))
    return detail


# --- policy ----------------------------------------------------------------------------------------------

def recommendation(person: PushedPerson, ver: Verification) -> tuple[str, str]:
    """The policy's (measure, basis), or ("", "") when the policy module is missing or fails."""
    try:
        policy = importlib.import_module("bihuan.pushes.policy")
    except ImportError:
        return "", ""
    try:
        measure, basis = policy.recommend(person, ver)
    except Exception:  # noqa: BLE001 - advice only: a policy bug must not stop a verification being saved
        log.exception("policy.recommend failed for person %s", person.pk)
        return "", ""
    return (measure or "") if (measure or "") in Measure.values else "", (basis or "")[:300]


# --- actions ---------------------------------------------------------------------------------------------

def _start(loop: Loop | None, actor) -> None:
    if loop is not None and loop.state == LoopState.ISSUED:
        engine.transition(loop, LoopState.IN_PROGRESS, actor=actor, note="核查开始")


def do_record_call(verification: Verification, result: str, *, acting_user, at: dt.datetime | None = None,
                   note: str = "") -> Verification:
    """One call attempt (reached / no_answer / wrong_number / refused / powered_off) with its time."""
    if result not in CallResult.values:
        raise VerifyError("result", _("请选择通话结果"))
    with transaction.atomic():
        person, ver = _verification_for(acting_user, verification)
        attempts = list(ver.call_attempts or [])
        if len(attempts) >= MAX_ATTEMPTS:
            raise VerifyError("call_attempts", _("最多记录 %(n)s 次通话") % {"n": MAX_ATTEMPTS})
        at = at or timezone.now()
        attempts.append({"at": at.isoformat(), "result": result, "by": getattr(acting_user, "pk", None),
                         "note": _text("note", note, 100)})
        ver.call_attempts = attempts
        ver.save(update_fields=["call_attempts", "updated_at"])
        _start(ver.loop, acting_user)
        audit.record(actor=acting_user, action="push.call", target=ver,
                     changes={"person": person.pk, "result": result, "attempt": len(attempts)})
    return ver


def _pending_transfer(person: PushedPerson) -> Transfer | None:
    return Transfer.objects.filter(person=person, state=TransferState.PENDING).first()


def do_save_verification(verification: Verification, data: dict, *, acting_user) -> Verification:
    """Save the form fields present in ``data`` and, if ``outcome`` is present, the outcome with its detail.

    new_control needs ``measure``; choosing another than the recommended one needs ``override_reason`` (audited
    as ``push.verification.override``). elsewhere_in_district needs ``target_unit`` and transfers the person.
    """
    from .routing import RoutingError
    from .transfers import TransferError, do_transfer

    with transaction.atomic():
        person, ver = _verification_for(acting_user, verification)
        clean = clean_fields(data)
        changed = [k for k, v in clean.items() if getattr(ver, k) != v]
        for k, v in clean.items():
            setattr(ver, k, v)
        before_outcome = ver.outcome
        override = None
        if "outcome" in data:
            outcome = str(data.get("outcome") or "")
            detail = clean_outcome(ver, outcome, data)
            pending = _pending_transfer(person)
            if pending is not None and (outcome != before_outcome or outcome == Outcome.ELSEWHERE_IN_DISTRICT):
                raise VerifyError("outcome", _("该人员正在转办中，等待对方接收或退回"))
            if changed or not ver.recommendation_basis or outcome == Outcome.NEW_CONTROL:
                ver.recommended_measure, ver.recommendation_basis = recommendation(person, ver)
            if outcome == Outcome.NEW_CONTROL:
                measure = detail["measure"]
                reason = detail.get("override_reason", "")
                if ver.recommended_measure and measure != ver.recommended_measure:
                    if not reason:
                        raise VerifyError("override_reason", _("所选措施与建议不同，请说明理由"))
                    override = {"recommended": ver.recommended_measure, "chosen": measure, "reason": reason,
                                "basis": ver.recommendation_basis}
                ver.measure, ver.override_reason = measure, reason if override else ""
            else:
                ver.measure, ver.override_reason = "", ""
            ver.outcome, ver.outcome_detail = outcome, detail
            if outcome != Outcome.VERIFYING:
                ver.verified_by, ver.verified_at = acting_user, timezone.now()
            else:
                ver.verified_by, ver.verified_at = None, None
        elif changed and not ver.recommendation_basis:
            ver.recommended_measure, ver.recommendation_basis = recommendation(person, ver)
        ver.save()
        loop = Loop.objects.filter(pk=ver.loop_id).first()
        if "outcome" in data and ver.outcome != Outcome.VERIFYING:
            if loop is not None and loop.state in OPEN_STATES:
                engine.transition(loop, LoopState.REPORTED, actor=acting_user,
                                  note=f"核查结果：{Outcome(ver.outcome).label}", data={"outcome": ver.outcome})
            if ver.outcome == Outcome.ELSEWHERE_IN_DISTRICT:
                unit = Unit.objects.get(pk=ver.outcome_detail["target_unit"])
                reason = ver.outcome_detail.get("transfer_reason") or f"核查：实际居住在{unit.name}"
                try:
                    transfer = do_transfer(person, unit, reason, acting_user=acting_user)
                except (TransferError, RoutingError) as exc:
                    raise VerifyError("target_unit", str(exc).split(": ", 1)[-1]) from None
                ver.outcome_detail = {**ver.outcome_detail, "transfer": transfer.pk}
                ver.save(update_fields=["outcome_detail", "updated_at"])
        elif "outcome" in data and loop is not None and loop.state == LoopState.REPORTED:
            reopen(loop, actor=acting_user, note="核查结果改回核查中")
        elif changed:
            _start(loop, acting_user)
        audit.record(actor=acting_user, action="push.verification.save", target=ver,
                     changes={"person": person.pk, "fields": sorted(clean), "changed": sorted(changed),
                              "outcome": [before_outcome, ver.outcome] if "outcome" in data else None})
        if override:
            audit.record(actor=acting_user, action="push.verification.override", target=ver,
                         changes={"person": person.pk, **override})
    return ver


def reopen(loop: Loop, *, actor, note: str, due_at: dt.datetime | None = None) -> Loop:
    """A reported verification back to work (outcome withdrawn, transfer returned): in progress again and
    reminded from its deadline on."""
    loop = engine.transition(loop, LoopState.IN_PROGRESS, actor=actor, note=note)
    loop.due_at = due_at or loop.due_at
    loop.reminders_sent, loop.escalated_at = 0, None
    loop.next_reminder_at = loop.due_at
    loop.save(update_fields=["due_at", "reminders_sent", "escalated_at", "next_reminder_at"])
    return loop


def do_reveal_person(person: PushedPerson, *, acting_user, reason: str = "") -> dict:
    """The full phone and ID number, on purpose (to call the person), audited."""
    from bihuan.core import crypto

    require(acting_user, Perm.REVEAL_PERSONAL)
    person = access_person(acting_user, person.pk)
    values = {"phone": person.reveal_phone() if person.phone_sealed else "",
              "id_number": crypto.unseal(person.id_sealed) if person.id_sealed else ""}
    audit.record(actor=acting_user, action="push.person.reveal", target=person,
                 changes={"reason": reason[:200], "fields": [k for k, v in values.items() if v]})
    return values


HANDOFF_HEADER = ["序号", "姓名", "性别", "身份证号", "手机号", "来源地", "途经地", "抵达日期", "去往城市",
                  "去往详细地址", "移交说明", "核查单位", "核查人", "核查时间"]


def handoff_rows(unit: Unit, day: dt.date):
    """Verifications completed on ``day`` with the outcome 'lives outside the district', under ``unit``."""
    from bihuan.register.models import subtree_q

    from .routing import push_day_bounds

    low, high = push_day_bounds(day)
    return (Verification.objects.filter(subtree_q(unit.path, "person__path"), outcome=Outcome.OUTSIDE_DISTRICT,
                                        verified_at__gte=low, verified_at__lt=high)
            .select_related("person", "person__unit", "verified_by").order_by("verified_at", "id"))


def handoff_xlsx(unit: Unit, date: dt.date, *, acting_user=None, reveal: bool = False) -> bytes:
    """The hand-off record (区外人员移交表) of a unit's subtree for one day, as an Excel workbook.

    Full ID numbers and phones only with ``reveal`` (the receiving city must reach the person); masked
    otherwise. Every export is audited."""
    from openpyxl import Workbook

    from bihuan.core import crypto, excel

    wb = Workbook()
    ws = wb.active
    ws.title = "区外移交"
    excel.title_row(ws, f"{unit.name} 区外人员移交表（{date:%Y-%m-%d}）")
    ws.append(HANDOFF_HEADER)
    excel.header_style(ws[2], center=True)
    n = 0
    sexes = {"M": "男", "F": "女"}
    for n, ver in enumerate(handoff_rows(unit, date).iterator(chunk_size=500), start=1):
        p, d = ver.person, ver.outcome_detail or {}
        id_number = (crypto.unseal(p.id_sealed) if reveal and p.id_sealed else p.id_masked)
        phone = (p.reveal_phone() if reveal and p.phone_sealed else p.phone_masked)
        who = (ver.verified_by.get_full_name() or ver.verified_by.get_username()) if ver.verified_by else ""
        ws.append([n, p.name, sexes.get(p.sex, ""), id_number, phone, ver.origin or p.origin, p.via,
                   (ver.arrival_date or p.arrival_date or "") and f"{ver.arrival_date or p.arrival_date:%Y-%m-%d}",
                   d.get("destination_city", ""), d.get("destination_address", ""), d.get("handoff_note", ""),
                   p.unit.name if p.unit else "", who,
                   f"{timezone.localtime(ver.verified_at):%Y-%m-%d %H:%M}" if ver.verified_at else ""])
    excel.set_widths(ws, (6, 10, 6, 22, 14, 16, 16, 12, 12, 24, 20, 16, 10, 17))
    audit.record(actor=acting_user, action="push.handoff.export", target=unit,
                 changes={"date": date.isoformat(), "rows": n, "revealed": reveal})
    return excel.to_bytes(wb)
