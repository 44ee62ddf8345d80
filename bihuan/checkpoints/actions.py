"""Every write of checkpoints, self-reports and screening campaigns, each in a transaction with its audit row.

- ``do_create_checkpoint``; ``do_register`` (a vehicle or a person on foot, matched, the people who need
  verification pushed, abnormal ones alerted at once through a ``checkpoints.alert`` loop);
- ``do_submit_self_report`` / ``do_update_self_report`` / ``do_cancel_self_report`` (the public page: no user);
- ``do_start_campaign``, ``do_answer_screening`` (at the door or through the household link),
  ``do_decide_register_change``.

Refusals are ``CheckpointError`` (a ``Refused``) naming the form field.
"""

from __future__ import annotations

import datetime as dt
import secrets
from types import SimpleNamespace

from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from bihuan.core import audit, crypto
from bihuan.core.personal import birth_date_from_id, sex_from_id
from bihuan.core.roles import Perm
from bihuan.loops import engine
from bihuan.pushes import intake
from bihuan.pushes.normalize import Row
from bihuan.register.access import access_unit, require, scoped
from bihuan.register.models import (
    ACTIVE_STATUSES,
    MAX_LEVEL,
    SEGMENT,
    Household,
    Relation,
    Resident,
    ResidentStatus,
    Unit,
)

from . import gate, matching
from .models import (
    ALERT,
    AnsweredVia,
    Campaign,
    ChangeState,
    Checkpoint,
    CheckpointKind,
    HealthCode,
    RegisterChange,
    Registration,
    ScreeningAnswer,
    Seat,
    SelfReport,
    SelfReportStatus,
    Transport,
    Traveller,
    VehicleType,
)
from .validation import (
    CheckpointError,
    clean_id_number,
    clean_phone,
    clean_plate,
    clean_temperature,
    clean_text,
)

MAX_PEOPLE = 60  # a coach
PENDING, DONE = "pending", "done"  # Traveller.push_state
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud and typed at a checkpoint
CODE_LENGTH = 8
COMMUNITY_LEVEL = 4
MEMBER_SLOTS = 2  # people moving in, per screening answer
LEAVING = (ResidentStatus.AWAY, ResidentStatus.MOVED_OUT, ResidentStatus.DECEASED)


# --- checkpoints ---------------------------------------------------------------------------------------------

def _time(value, field: str) -> dt.time | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(str(value).strip())
    except ValueError:
        raise CheckpointError(field, _("时间格式应为 HH:MM")) from None


def do_create_checkpoint(*, unit: Unit, name: str, kind: str, opens=None, closes=None, acting_user) -> Checkpoint:
    """A checkpoint under a unit of the user's part of the district (levels 3–5)."""
    require(acting_user, Perm.EDIT_REGISTER)
    unit = access_unit(acting_user, unit.pk)
    if not 3 <= unit.level <= MAX_LEVEL - 1:
        raise CheckpointError("unit", _("卡口设在乡镇（街道）、村（社区）或小区（村民小组）"))
    name = clean_text(name, "name", 100, required=True)
    if kind not in CheckpointKind.values:
        raise CheckpointError("kind", _("请选择卡口类型"))
    opens, closes = _time(opens, "opens"), _time(closes, "closes")
    if (opens is None) != (closes is None):
        raise CheckpointError("closes", _("开放时间和关闭时间要么都填，要么都不填（24 小时）"))
    with transaction.atomic():
        if Checkpoint.objects.filter(unit=unit, name=name).exists():
            raise CheckpointError("name", _("本单位已有同名卡口"))
        post = _create_post(unit, name, opens, closes)
        checkpoint = Checkpoint.objects.create(unit=unit, path=unit.path, name=name, kind=kind, opens=opens,
                                               closes=closes, post=post)
        audit.record(actor=acting_user, action="checkpoint.create", target=checkpoint,
                     changes={"unit": unit.pk, "name": name, "kind": kind, "hours": checkpoint.hours_text,
                              "post": post.pk})
    return checkpoint


def _create_post(unit: Unit, name: str, opens: dt.time | None, closes: dt.time | None):
    """The forces post (kind checkpoint) that staffs a new checkpoint, through the forces app's own action: the
    checkpoint's creator is authorized above (the register's editors set up checkpoints; the post follows it, so
    it is created as the system would, and the checkpoint's audit row names it)."""
    from bihuan.forces.actions import do_create_post
    from bihuan.forces.models import PostKind

    start, end = (0, 24) if opens is None or closes is None else (opens.hour, closes.hour or 24)
    return do_create_post(unit, name=name, kind=PostKind.CHECKPOINT, start_hour=start, end_hour=end,
                          acting_user=None)


def on_duty(checkpoint: Checkpoint, at: dt.datetime | None = None) -> list[dict]:
    """Who the roster of the checkpoint's post has on duty now: [{"name", "on": went on duty, "until"}]."""
    from bihuan.forces.models import Shift

    if checkpoint.post_id is None:
        return []
    at = at or timezone.now()
    shifts = (Shift.objects.filter(post_id=checkpoint.post_id, starts_at__lte=at, ends_at__gt=at)
              .select_related("helper", "staff").order_by("starts_at", "id"))
    return [{"name": (s.helper.name if s.helper_id else s.staff.name if s.staff_id else ""),
             "on": s.on_at is not None and s.off_at is None, "until": s.ends_at} for s in shifts]


def access_checkpoint(user, checkpoint_id: int) -> Checkpoint:
    checkpoint = scoped(user, Checkpoint.objects.select_related("unit")).filter(pk=checkpoint_id).first()
    if checkpoint is None:
        raise Http404("no such checkpoint in your part of the district")
    return checkpoint


# --- registration --------------------------------------------------------------------------------------------

def _is_blank(p: dict) -> bool:
    return not any(str(p.get(k) or "").strip() for k in ("name", "id_number", "phone", "report"))


def _clean_person(i: int, p: dict, first: dict | None, reports: dict[str, SelfReport]) -> dict:
    """One person's block, checked; blank origin, destination and test proof follow the first person's."""
    f = f"people[{i}]."
    code = clean_text(p.get("report"), f + "report", 12).upper()
    report = None
    if code:
        report = reports.get(code)
        if report is None:
            raise CheckpointError(f + "report", _("没有这个报备码，或已取消"))
    name = clean_text(p.get("name"), f + "name", 50) or (report.name if report else "")
    if not name:
        raise CheckpointError(f + "name", _("请填写姓名"))
    raw_id = str(p.get("id_number") or "").strip()
    phone = clean_phone(p.get("phone"), f + "phone")
    id_number, id_problem = "", ""
    try:
        id_number = clean_id_number(raw_id, f + "id_number")
    except CheckpointError as exc:
        if not phone:
            raise
        id_problem = exc.message  # a phone to verify by: registered, marked "ID to fix"
    if not id_number and not phone and report is None:
        raise CheckpointError(f + "id_number", _("身份证号和手机号至少填一项"))
    origin = clean_text(p.get("origin"), f + "origin", 200) or (first or {}).get("origin", "") or (
        report.origin if report else "")
    destination = clean_text(p.get("destination"), f + "destination", 200) or (first or {}).get("destination", "") \
        or (report.destination if report else "")
    dest_unit = p.get("destination_unit") or (first or {}).get("destination_unit")
    code_colour = str(p.get("health_code") or HealthCode.GREEN)
    if code_colour not in HealthCode.values:
        raise CheckpointError(f + "health_code", _("请选择健康码颜色"))
    test = p.get("test_hours")
    if test in (None, "") and first is not None and p.get("test_hours") is None:
        test = first.get("test_hours")
    if test in (None, "", "none"):
        test_hours = None
    else:
        try:
            test_hours = int(test)
        except (TypeError, ValueError):
            raise CheckpointError(f + "test_hours", _("请选择核酸证明时间")) from None
        if not 0 < test_hours <= 24 * 14:
            raise CheckpointError(f + "test_hours", _("核酸证明时间应在 1 到 336 小时之间"))
    return {"name": name, "id_number": id_number, "id_problem": id_problem, "phone": phone, "report": report,
            "origin": origin, "destination": destination, "destination_unit": dest_unit,
            "temperature": clean_temperature(p.get("temperature"), f + "temperature"), "health_code": code_colour,
            "test_hours": test_hours, "note": clean_text(p.get("note"), f + "note", 200)}


def _destination_units(people: list[dict]) -> dict[int, Unit]:
    ids = set()
    for p in people:
        try:
            if p["destination_unit"] not in (None, ""):
                ids.add(int(p["destination_unit"]))
        except (TypeError, ValueError):
            raise CheckpointError("destination_unit", _("目的地单位无效")) from None
    return {u.pk: u for u in Unit.objects.filter(pk__in=ids)} if ids else {}


def do_register(checkpoint: Checkpoint, *, token: str, people: list[dict], acting_user, vehicle_type: str = "",
                plate: str = "", at: dt.datetime | None = None) -> tuple[Registration, bool]:
    """Register a vehicle with its driver and passengers (or one person on foot): (registration, created).

    ``token`` is the form's one-time key: the same token again returns the registration already made. Each
    person is matched (``matching``); those who need verification are pushed (source 卡口) with the
    registration as evidence; a red or yellow code or a fever opens an alert loop for the checkpoint's unit and
    the destination community at once."""
    scope = require(acting_user, Perm.REGISTER_CHECKPOINT)
    if not checkpoint.path.startswith(scope.root.path):
        raise Http404("no such checkpoint in your part of the district")
    token = clean_text(token, "token", 40, required=True)
    known = getattr(checkpoint, "_known_token", None)  # read with the checkpoint (``gate.checkpoint_in_scope``)
    if known is not None and known[0] == token:
        existing = Registration.objects.filter(pk=known[1]).first() if known[1] else None
    else:  # by the unique (checkpoint, token) index alone: no ORDER BY (the model's ordering would sort)
        existing = next(iter(Registration.objects.filter(checkpoint=checkpoint, token=token).order_by()[:1]), None)
    if existing is not None:
        return existing, False
    if vehicle_type not in VehicleType.values:
        raise CheckpointError("vehicle_type", _("请选择车辆类型"))
    plate = clean_plate(plate) if vehicle_type else ""
    blocks = [p for p in people if not _is_blank(p)]
    if not blocks:
        raise CheckpointError("people[0].name", _("请至少登记一人"))
    if len(blocks) > MAX_PEOPLE:
        raise CheckpointError("people", _("一次最多登记 %(n)s 人") % {"n": MAX_PEOPLE})
    codes = {str(p.get("report") or "").strip().upper() for p in blocks} - {""}
    reports = {r.code: r for r in SelfReport.objects.filter(code__in=codes).exclude(
        status=SelfReportStatus.CANCELLED)} if codes else {}
    clean: list[dict] = []
    for i, p in enumerate(blocks):
        clean.append(_clean_person(i, p, clean[0] if clean else None, reports))
    units = _destination_units(clean)
    at = at or timezone.now()
    people_ = [matching.Person(
        name=c["name"],
        id_hash=crypto.lookup_hash("id", c["id_number"]) if c["id_number"] else (
            c["report"].id_hash if c["report"] else ""),
        phone_hash=crypto.lookup_hash("phone", c["phone"]) if c["phone"] else (
            c["report"].phone_hash if c["report"] else ""),
        origin=c["origin"], health_code=c["health_code"],
        temperature=float(c["temperature"]) if c["temperature"] is not None else None, test_hours=c["test_hours"],
        report_code=c["report"].code if c["report"] else "") for c in clean]
    if not reports:
        assessed = matching.assess(people_, at=at)
        if not any(m.abnormal for m in assessed):
            # the usual car: no receipt code, nobody abnormal (no alert loop): the prepared hot path
            return _register_lean(checkpoint, token, vehicle_type, plate, clean, assessed, units, at, scope,
                                  acting_user)
    matched = matching.match(people_, at=at)
    try:
        with transaction.atomic():
            registration = Registration.objects.create(
                checkpoint=checkpoint, path=checkpoint.path, token=token, vehicle_type=vehicle_type, plate=plate,
                registered_by=acting_user, registered_at=at, persons=len(clean),
                from_risk=sum(1 for m in matched if m.risk_level),
                to_verify=sum(1 for m in matched if m.needs_verification),
                abnormal=sum(1 for m in matched if m.abnormal))
            travellers = []
            for i, (c, m) in enumerate(zip(clean, matched, strict=True)):
                seat = Seat.PEDESTRIAN if not vehicle_type else (Seat.DRIVER if i == 0 else Seat.PASSENGER)
                t = Traveller(registration=registration, path=checkpoint.path, seat=seat, name=c["name"],
                              id_problem=c["id_problem"][:200], origin=c["origin"], destination=c["destination"],
                              destination_unit=units.get(int(c["destination_unit"])) if c["destination_unit"]
                              else None, temperature=c["temperature"], health_code=c["health_code"],
                              test_hours=c["test_hours"], note=c["note"], risk_level=m.risk_level,
                              risk_area=m.risk_area[:200], resident_id=m.resident[0] if m.resident else None,
                              self_report=m.self_report, already_pushed=m.already_pushed,
                              reasons="；".join(m.reasons)[:300], abnormal=m.abnormal,
                              push_state=PENDING if m.needs_verification else "")
                if c["id_number"]:
                    t.set_id_number(c["id_number"])
                elif c["report"] is not None:
                    t.id_sealed, t.id_hash = c["report"].id_sealed, c["report"].id_hash
                    t.id_masked, t.id_tail = c["report"].id_masked, c["report"].id_tail
                if c["phone"]:
                    t.set_phone(c["phone"])
                elif c["report"] is not None:
                    t.phone_sealed, t.phone_hash = c["report"].phone_sealed, c["report"].phone_hash
                    t.phone_masked, t.phone_tail = c["report"].phone_masked, c["report"].phone_tail
                travellers.append(t)
            Traveller.objects.bulk_create(travellers)
            registration.new_travellers = travellers  # for the answer, without reading them back
            _alert(checkpoint, travellers, acting_user)
            arrived = [t.self_report_id for t in travellers if t.self_report_id]
            if arrived:
                SelfReport.objects.filter(pk__in=arrived, status=SelfReportStatus.REPORTED).update(
                    status=SelfReportStatus.ARRIVED, updated_at=at)
            audit.record(actor=acting_user, action="checkpoint.register", target=registration,
                         changes={"checkpoint": checkpoint.pk, "vehicle": vehicle_type, "persons": len(clean),
                                  "to_verify": registration.to_verify, "abnormal": registration.abnormal,
                                  "self_reports": len(arrived)})
    except IntegrityError:  # the same form sent twice at the same moment: the other request made it
        existing = Registration.objects.filter(checkpoint=checkpoint, token=token).first()
        if existing is None:
            raise
        return existing, False
    return registration, True


def _register_lean(checkpoint: Checkpoint, token: str, vehicle_type: str, plate: str, clean: list[dict],
                   assessed: list[matching.Person], units: dict, at: dt.datetime, scope, acting_user
                   ) -> tuple[Registration, bool]:
    """``do_register`` for a registration without a receipt code or an abnormal person: ``gate.write`` matches
    and inserts it (one statement on PostgreSQL), the audit row with it."""
    from bihuan.core.personal import mask_id_number, mask_phone
    from bihuan.pushes.dedupe import DEFAULT_WINDOW_DAYS

    sealed = iter(crypto.seal_many([v for c in clean for v in (c["id_number"], c["phone"])]))
    rows = []
    for i, (c, m) in enumerate(zip(clean, assessed, strict=True)):
        id_number, phone = c["id_number"], c["phone"]
        dest = units.get(int(c["destination_unit"])) if c["destination_unit"] else None
        rows.append({
            "seat": Seat.PEDESTRIAN if not vehicle_type else (Seat.DRIVER if i == 0 else Seat.PASSENGER),
            "name": c["name"], "id_problem": c["id_problem"][:200], "origin": c["origin"],
            "destination": c["destination"], "destination_unit_id": dest.pk if dest else None,
            "temperature": c["temperature"], "health_code": c["health_code"], "test_hours": c["test_hours"],
            "note": c["note"], "risk_level": m.risk_level, "risk_area": m.risk_area[:200],
            "reasons": "；".join(m.reasons)[:300], "abnormal": False,
            "push_state": PENDING if m.needs_verification else "", "id_sealed": next(sealed),
            "id_hash": m.id_hash, "id_masked": mask_id_number(id_number) if id_number else "",
            "id_tail": id_number[-4:], "phone_sealed": next(sealed), "phone_hash": m.phone_hash,
            "phone_masked": mask_phone(phone) if phone else "", "phone_tail": phone[-4:], "locked_by": ""})
    values = {"checkpoint_id": checkpoint.pk, "path": checkpoint.path, "token": token, "vehicle_type": vehicle_type,
              "plate": plate, "registered_by_id": acting_user.pk, "registered_at": at, "persons": len(clean),
              "from_risk": sum(1 for m in assessed if m.risk_level),
              "to_verify": sum(1 for m in assessed if m.needs_verification), "abnormal": 0}
    staff = acting_user._state.fields_cache.get("staff")  # cached by the scope (no query)
    written = gate.write(values, rows, since=at - dt.timedelta(days=DEFAULT_WINDOW_DAYS),
                         actor_unit_id=staff.unit_id if staff is not None else None,
                         changes={"checkpoint": checkpoint.pk, "vehicle": vehicle_type, "persons": len(clean),
                                  "to_verify": values["to_verify"], "abnormal": 0})
    if written.registration_id is None:  # the same form sent twice at the same moment: the other request made it
        return Registration.objects.get(checkpoint=checkpoint, token=token), False
    registration = Registration(pk=written.registration_id, checkpoint=checkpoint,
                                **{k: v for k, v in values.items() if k != "checkpoint_id"})
    # what the answer shows of each person, without model instances (a plain namespace reads the same)
    registration.new_travellers = [
        SimpleNamespace(pk=pk, registration_id=written.registration_id, resident_id=match[0],
                        self_report_id=match[1], already_pushed=match[2], pushed_person_id=None,
                        **{k: v for k, v in row.items() if not k.endswith(("_sealed", "_hash"))})
        for pk, match, row in zip(written.traveller_ids, written.matched, rows, strict=True)]
    return registration, True


def _row(name: str, id_number: str, phone: str, *, origin: str = "", address: str = "", community: str = "",
         arrival: dt.date | None = None, id_problem: str = "") -> Row:
    row = Row(0, name=name, id_number=id_number, phone=phone, origin=origin[:200], address=address[:300],
              community=community[:100], arrival_date=arrival, id_problem=id_problem)
    if id_number:
        row.birth_date, row.sex = birth_date_from_id(id_number), sex_from_id(id_number)
    return row


def push_pending(*, owner: str = "", limit: int = 500) -> int:
    """Push the registered people who need verification (source 卡口), as the worker task ``checkpoints.push``
    does every tick: claimed by a lease (a crashed worker loses nothing), grouped by checkpoint, one
    ``intake.push_findings`` call per checkpoint (de-duplicated, routed, verification loops opened, owners told),
    each registration as the person's evidence. Idempotent. Returns how many people it pushed."""
    from bihuan.core.worker import claim, worker_id

    owner = owner or f"{worker_id()}:inline"
    todo = Traveller.objects.filter(push_state=PENDING).order_by("id")
    held = claim(todo, owner=owner, limit=limit, lease_seconds=120)
    if not held:
        return 0
    held = list(Traveller.objects.filter(pk__in=[t.pk for t in held], locked_by=owner)
                .select_related("registration__checkpoint", "destination_unit", "registration__registered_by"))
    by_checkpoint: dict[int, list[Traveller]] = {}
    for t in held:
        by_checkpoint.setdefault(t.registration.checkpoint_id, []).append(t)
    for group in by_checkpoint.values():
        checkpoint = group[0].registration.checkpoint
        findings = []
        for t in group:
            reg, dest = t.registration, t.destination_unit
            row = _row(t.name, crypto.unseal(t.id_sealed) if t.id_sealed else "",
                       crypto.unseal(t.phone_sealed) if t.phone_sealed else "", origin=t.origin, address=t.destination,
                       community=dest.name if dest else "", arrival=timezone.localdate(reg.registered_at),
                       id_problem=t.id_problem)
            where = reg.plate or str(VehicleType.FOOT.label)
            findings.append(intake.Finding(
                row=row, ref_type="checkpoints.traveller", ref_id=t.pk, reasons=t.reasons, unit_id=checkpoint.unit_id,
                summary=f"{checkpoint.name} {timezone.localtime(reg.registered_at):%m-%d %H:%M} {where}"))
        with transaction.atomic():
            people = intake.push_findings(findings, source=intake.CHECKPOINT, unit=checkpoint.unit,
                                          acting_user=group[0].registration.registered_by,
                                          at=min(t.registration.registered_at for t in group))
            for t, person in zip(group, people, strict=True):
                Traveller.objects.filter(pk=t.pk, locked_by=owner).update(
                    pushed_person=person, push_state=DONE, locked_by="", locked_until=None)
    return len(held)


def _community_path(path: str) -> str:
    return path[:SEGMENT * COMMUNITY_LEVEL] if len(path) >= SEGMENT * COMMUNITY_LEVEL else ""


def _alert(checkpoint: Checkpoint, travellers: list[Traveller], acting_user) -> None:
    """A red or yellow code or a fever: one alert loop per person, owned by the checkpoint's unit and by the
    destination community (the resident's, or the chosen destination's), told at once."""
    abnormal = [t for t in travellers if t.abnormal]
    if not abnormal:
        return
    paths = {}
    for t in abnormal:
        if t.resident_id:
            paths[t.pk] = _community_path(t.resident.path) if t.resident else ""
        elif t.destination_unit is not None:
            paths[t.pk] = _community_path(t.destination_unit.path)
    communities = dict(Unit.objects.filter(path__in={p for p in paths.values() if p}).values_list("path", "id"))
    for t in abnormal:
        unit_ids = {checkpoint.unit_id} | ({communities[paths[t.pk]]} if paths.get(t.pk) in communities else set())
        what = "、".join(r for r in t.reasons.split("；") if not r.startswith("无 ")) or t.get_health_code_display()
        notice = engine.Notice(f"卡口异常：{checkpoint.name}",
                               f"{checkpoint.name} 登记到 1 人{what}，目的地 {t.destination or '未填'}。"
                               "请立即处置并反馈（详情见“卡口”）。")
        engine.open_for_units(kind=ALERT, subject_id=t.pk, title=f"卡口异常：{t.name}"[:200],
                              units=Unit.objects.filter(pk__in=unit_ids), originator_unit=checkpoint.unit,
                              originator_user=acting_user, due_at=timezone.now() + dt.timedelta(hours=2),
                              notice=notice)


# --- self-reports --------------------------------------------------------------------------------------------

def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _i in range(CODE_LENGTH))


def _clean_report(data: dict, *, partial: bool = False) -> dict:
    out: dict = {}
    if not partial:
        out["name"] = clean_text(data.get("name"), "name", 50, required=True)
        out["id_number"] = clean_id_number(data.get("id_number"), "id_number")
        out["phone"] = clean_phone(data.get("phone"), "phone")
        if not out["phone"]:
            raise CheckpointError("phone", _("请填写手机号（社区会打电话核实）"))
    out["origin"] = clean_text(data.get("origin"), "origin", 200, required=True)
    out["destination"] = clean_text(data.get("destination"), "destination", 200, required=True)
    transport = str(data.get("transport") or "")
    if transport not in Transport.values:
        raise CheckpointError("transport", _("请选择出行方式"))
    out["transport"] = transport
    raw = str(data.get("arrival_date") or "").strip()
    try:
        arrival = dt.date.fromisoformat(raw)
    except ValueError:
        raise CheckpointError("arrival_date", _("请选择抵达日期")) from None
    today = timezone.localdate()
    if not today - dt.timedelta(days=14) <= arrival <= today + dt.timedelta(days=30):
        raise CheckpointError("arrival_date", _("抵达日期应在 14 天前到 30 天后之间"))
    out["arrival_date"] = arrival
    companions = []
    for n, line in enumerate(str(data.get("companions") or "").splitlines()[:20]):
        parts = line.replace("，", " ").replace(",", " ").split()
        if not parts:
            continue
        name = clean_text(parts[0], f"companions[{n}]", 50)
        relation = clean_text(" ".join(parts[1:]), f"companions[{n}]", 20)
        companions.append({"name": name, "relation": relation})
    if len(str(data.get("companions") or "")) > 1000:
        raise CheckpointError("companions", _("同行人员最多 20 人"))
    out["companions"] = companions
    return out


def _root_unit() -> Unit:
    unit = Unit.objects.filter(level=1).order_by("path").first()
    if unit is None:
        raise CheckpointError("", _("系统尚未建立区划"))
    return unit


def do_submit_self_report(data: dict) -> SelfReport:
    """报备 from the public page (no user): checked, sealed, given a receipt code, pushed (source 报备)."""
    clean = _clean_report(data)
    now = timezone.now()
    index, _protocol = matching.policy_today(timezone.localdate(now))
    level, _area = index.classify(clean["origin"])
    with transaction.atomic():
        for _attempt in range(5):
            code = new_code()
            if not SelfReport.objects.filter(code=code).exists():
                break
        report = SelfReport(code=code, name=clean["name"], companions=clean["companions"], origin=clean["origin"],
                            transport=clean["transport"], arrival_date=clean["arrival_date"],
                            destination=clean["destination"], risk_level=level or "", created_at=now, updated_at=now)
        if clean["id_number"]:
            report.set_id_number(clean["id_number"])
        report.set_phone(clean["phone"])
        report.save()
        people = [(clean["name"], clean["id_number"], clean["phone"])]
        people += [(c["name"], "", "") for c in clean["companions"] if c["name"]]
        findings = []
        for i, (name, id_number, phone) in enumerate(people):
            if i and not id_number and not phone:
                continue  # a companion without an ID or a phone is named in the report; the reporter is called
            findings.append(intake.Finding(
                row=_row(name, id_number, phone, origin=clean["origin"], address=clean["destination"],
                         arrival=clean["arrival_date"]),
                ref_type="checkpoints.selfreport" if i == 0 else "checkpoints.companion",
                ref_id=report.pk if i == 0 else report.pk * 100 + i,
                summary=f"报备码 {report.code}：{clean['arrival_date']:%m-%d} 自{clean['origin']}"
                        f"（{Transport(clean['transport']).label}）"
                        + (f"，同行 {len(clean['companions'])} 人" if clean["companions"] else "")))
        pushed = intake.push_findings(findings, source=intake.SELF_REPORT, unit=_root_unit(), at=now)
        report.pushed_person = pushed[0]
        report.save(update_fields=["pushed_person"])
        audit.record(actor=None, action="selfreport.submit", target=report,
                     changes={"code": report.code, "companions": len(clean["companions"]),
                              "phone": report.phone_masked})
    return report


def do_update_self_report(report: SelfReport, data: dict) -> SelfReport:
    """The reporter changes when, from where, how and to where (from the receipt's signed link)."""
    if report.status != SelfReportStatus.REPORTED:
        raise CheckpointError("", _("该报备已到达或已取消，不能再修改"))
    clean = _clean_report(data, partial=True)
    with transaction.atomic():
        changed = [k for k, v in clean.items() if getattr(report, k) != v]
        for k, v in clean.items():
            setattr(report, k, v)
        report.updated_at = timezone.now()
        report.save()
        _note_loop(report, f"报备已修改：{'、'.join(changed) or '无变化'}")
        audit.record(actor=None, action="selfreport.update", target=report, changes={"fields": changed})
    return report


def do_cancel_self_report(report: SelfReport) -> SelfReport:
    if report.status == SelfReportStatus.CANCELLED:
        return report
    if report.status != SelfReportStatus.REPORTED:
        raise CheckpointError("", _("已经在卡口核验到达，不能取消"))
    with transaction.atomic():
        report.status, report.updated_at = SelfReportStatus.CANCELLED, timezone.now()
        report.save(update_fields=["status", "updated_at"])
        _note_loop(report, "报备人已取消报备")
        audit.record(actor=None, action="selfreport.cancel", target=report, changes={"code": report.code})
    return report


def _note_loop(report: SelfReport, text: str) -> None:
    from bihuan.pushes.models import Verification

    loop_id = (Verification.objects.filter(person_id=report.pushed_person_id).values_list("loop_id", flat=True)
               .first() if report.pushed_person_id else None)
    if loop_id:
        engine.note(loop_id, actor=None, action="selfreport", note=f"{text}（报备码 {report.code}）")


# --- screening campaigns -------------------------------------------------------------------------------------

SCREENING_BODY = ("拉网式排查：请逐户核实在家人数、外来返乡人员、发热等症状、独居老人和生活需求，"
                  "网格员上门填写，或居民通过本户链接自行填报。")


def do_start_campaign(*, title: str, since: dt.date, acting_user, scope_unit: Unit | None = None,
                      reach_hours: int = 48) -> Campaign:
    """A directive to every household of (part of) the user's subtree, with the screening form per household."""
    from bihuan.directives.actions import do_issue_directive

    title = clean_text(title, "title", 200, required=True)
    if not isinstance(since, dt.date) or since > timezone.localdate():
        raise CheckpointError("since", _("起始日期不能晚于今天"))
    with transaction.atomic():
        directive = do_issue_directive(title=title, body=SCREENING_BODY, acting_user=acting_user,
                                       scope_unit=scope_unit, reach_hours=reach_hours)
        campaign = Campaign.objects.create(directive=directive, since=since, created_by=acting_user)
        audit.record(actor=acting_user, action="campaign.start", target=campaign,
                     changes={"directive": directive.pk, "since": since.isoformat()})
    return campaign


def _clean_answer(data: dict, campaign: Campaign, household: Household | None = None) -> dict:
    try:
        present = int(str(data.get("present") if data.get("present") is not None else "").strip())  # 0 counts
    except ValueError:
        raise CheckpointError("present", _("请填写在家人数")) from None
    if not 0 <= present <= 30:
        raise CheckpointError("present", _("在家人数应在 0 到 30 之间"))
    arrived = []
    for i in range(5):
        name = clean_text(data.get(f"arrived_name_{i}"), f"arrived_name_{i}", 50)
        origin = clean_text(data.get(f"arrived_from_{i}"), f"arrived_from_{i}", 100)
        phone = clean_phone(data.get(f"arrived_phone_{i}"), f"arrived_phone_{i}")
        if not name:
            if origin or phone:
                raise CheckpointError(f"arrived_name_{i}", _("请填写返乡人员姓名"))
            continue
        if not origin:
            raise CheckpointError(f"arrived_from_{i}", _("请填写从哪里来"))
        arrived.append({"name": name, "from": origin, "phone": phone})
    adds = []
    for i in range(MEMBER_SLOTS):
        name = clean_text(data.get(f"add_name_{i}"), f"add_name_{i}", 50)
        raw_id = str(data.get(f"add_id_{i}") or "").strip()
        phone = clean_phone(data.get(f"add_phone_{i}"), f"add_phone_{i}")
        relation = str(data.get(f"add_relation_{i}") or Relation.OTHER)
        if not name:
            if raw_id or phone:
                raise CheckpointError(f"add_name_{i}", _("请填写新住进人员的姓名"))
            continue
        if not raw_id:
            raise CheckpointError(f"add_id_{i}", _("请填写新住进人员的身份证号（登记户籍信息需要）"))
        if relation not in Relation.values:
            raise CheckpointError(f"add_relation_{i}", _("请选择与户主关系"))
        adds.append({"name": name, "id_number": clean_id_number(raw_id, f"add_id_{i}"), "phone": phone,
                     "relation": relation})
    leaves = []
    if household is not None:
        members = {r.pk: r for r in Resident.objects.filter(household=household, status__in=ACTIVE_STATUSES)}
        for key, value in data.items():
            if not key.startswith("leave_") or not value:
                continue
            resident = members.get(int(key[6:])) if key[6:].isdigit() else None
            if resident is None:
                raise CheckpointError(key, _("该成员不在本户登记中"))
            if value not in LEAVING:
                raise CheckpointError(key, _("请选择离开的原因"))
            leaves.append({"resident_id": resident.pk, "name": resident.name, "status": value})
    return {"present": present, "arrived": arrived, "fever": bool(data.get("fever")),
            "elderly_alone": bool(data.get("elderly_alone")),
            "needs": clean_text(data.get("needs"), "needs", 200),
            "member_change": clean_text(data.get("member_change"), "member_change", 200),
            "adds": adds, "leaves": sorted(leaves, key=lambda x: x["resident_id"])}


def _change_summary(adds: list[dict], leaves: list[dict]) -> str:
    labels = dict(ResidentStatus.choices)
    parts = [f"新住进 {a['name']}" for a in adds]
    parts += [f"{x['name']} {labels.get(x['status'], x['status'])}" for x in leaves]
    return "；".join(parts)


def do_answer_screening(campaign: Campaign, household: Household, data: dict, *, acting_user=None) -> ScreeningAnswer:
    """One household's screening answer: by a grid worker at the door (``acting_user``, the household in their
    part) or by the resident through the household link (no user). The household is marked reached; an arrival
    becomes a pushed person (source 排查); a member change becomes a proposed register change."""
    from bihuan.directives.models import Reach, ReachMethod, ReachStatus

    if acting_user is not None:
        require(acting_user, Perm.MARK_REACH)
        if not household.path.startswith(require(acting_user, Perm.MARK_REACH).root.path):
            raise Http404("no such household in your part of the district")
    if campaign.directive.status != "issued":
        raise CheckpointError("", _("本次排查已结束"))
    clean = _clean_answer(data, campaign, household)
    now = timezone.now()
    via = AnsweredVia.DOOR if acting_user is not None else AnsweredVia.LINK
    with transaction.atomic():
        answer = ScreeningAnswer.objects.select_for_update().filter(campaign=campaign, household=household).first()
        before = answer.present if answer else household.member_count
        stored = {k: v for k, v in clean.items() if k not in ("adds", "leaves")}
        stored["arrived"] = [{"name": a["name"], "from": a["from"], "phone": crypto.seal(a["phone"]).hex()
                              if a["phone"] else "", "phone_masked": _mask(a["phone"])} for a in clean["arrived"]]
        if answer is None:
            answer = ScreeningAnswer.objects.create(campaign=campaign, household=household, unit_id=household.unit_id,
                                                    path=household.path, via=via, answered_by=acting_user,
                                                    answered_at=now, **stored)
        else:
            for k, v in stored.items():
                setattr(answer, k, v)
            answer.via, answer.answered_by, answer.answered_at = via, acting_user, now
            answer.save()
        Reach.objects.filter(directive=campaign.directive, household=household).exclude(
            status=ReachStatus.REACHED).update(status=ReachStatus.REACHED,
                                               method=ReachMethod.VISIT if acting_user else ReachMethod.SELF,
                                               marked_by=acting_user, marked_at=now)
        findings = [intake.Finding(
            row=_row(a["name"], "", a["phone"], origin=a["from"], address=household.address,
                     arrival=timezone.localdate(now)),
            ref_type="checkpoints.arrival", ref_id=answer.pk * 10 + i,
            summary=f"{campaign.directive.title}：{household.address} 报告 {a['name']} 自{a['from']}返回",
            reasons="排查发现外来返乡人员", unit_id=household.unit_id)
            for i, a in enumerate(clean["arrived"])]
        if findings:
            intake.push_findings(findings, source=intake.SCREENING, unit=household.unit, acting_user=acting_user,
                                 at=now)
        if clean["member_change"] or clean["adds"] or clean["leaves"] or clean["present"] != before:
            summary = _change_summary(clean["adds"], clean["leaves"])
            text = "；".join(t for t in (clean["member_change"], summary) if t)[:200] or \
                f"在家人数 {before} → {clean['present']}"
            adds = [{"name": a["name"], "relation": a["relation"], "id_sealed": crypto.seal(a["id_number"]).hex(),
                     "id_masked": _mask_id(a["id_number"]),
                     "phone_sealed": crypto.seal(a["phone"]).hex() if a["phone"] else "",
                     "phone_masked": _mask(a["phone"])} for a in clean["adds"]]
            # a new answer replaces the household's change still waiting for the grid (one proposal per answer)
            RegisterChange.objects.filter(answer=answer, state=ChangeState.PROPOSED).delete()
            RegisterChange.objects.create(household=household, path=household.path, answer=answer, text=text,
                                          adds=adds, leaves=clean["leaves"], present_before=before,
                                          present_after=clean["present"], proposed_at=now)
        audit.record(actor=acting_user, action="campaign.answer", target=answer,
                     changes={"campaign": campaign.pk, "household": household.pk, "via": via,
                              "arrived": len(clean["arrived"]), "fever": clean["fever"]})
    return answer


def _mask(phone: str) -> str:
    from bihuan.core.personal import mask_phone

    return mask_phone(phone) if phone else ""


def _mask_id(id_number: str) -> str:
    from bihuan.core.personal import mask_id_number

    return mask_id_number(id_number)


def do_decide_register_change(change: RegisterChange, *, confirm: bool, acting_user, note: str = "") -> RegisterChange:
    """The grid confirms or rejects a proposed register change. Confirming applies it through the register's own
    actions (``do_create_resident`` for each person moving in, ``do_update_resident`` for each one leaving), each
    with its audit row; the household's head and member count follow from its residents. Nothing is written to
    the register before this, and a text-only change writes nothing (the household's page is where to edit)."""
    from bihuan.register.actions import do_create_resident, do_update_resident

    scope = require(acting_user, Perm.EDIT_REGISTER)
    with transaction.atomic():
        change = RegisterChange.objects.select_for_update().filter(
            pk=change.pk, path__gte=scope.root.path).select_related("household").first()
        if change is None or not change.path.startswith(scope.root.path):
            raise Http404("no such change in your part of the district")
        if change.state != ChangeState.PROPOSED:
            return change
        applied = {"added": [], "left": [], "skipped": []}
        if confirm:
            household = change.household
            present = set(Resident.objects.filter(household=household, status__in=ACTIVE_STATUSES)
                          .values_list("id_hash", flat=True))
            for a in change.adds:
                id_number = crypto.unseal(bytes.fromhex(a["id_sealed"]))
                if crypto.lookup_hash("id", id_number) in present:
                    applied["skipped"].append(a["name"])  # already in the household (entered meanwhile)
                    continue
                resident = do_create_resident(
                    household=household, name=a["name"], id_number=id_number, relation=a.get("relation", "other"),
                    phone=crypto.unseal(bytes.fromhex(a["phone_sealed"])) if a.get("phone_sealed") else "",
                    acting_user=acting_user)
                applied["added"].append(resident.pk)
            for x in change.leaves:
                resident = Resident.objects.filter(pk=x["resident_id"], household=household,
                                                   status__in=ACTIVE_STATUSES).first()
                if resident is None:
                    applied["skipped"].append(x["name"])
                    continue
                do_update_resident(resident=resident, changes={"status": x["status"]}, acting_user=acting_user)
                applied["left"].append(resident.pk)
        change.state = ChangeState.CONFIRMED if confirm else ChangeState.REJECTED
        change.decided_by, change.decided_at = acting_user, timezone.now()
        change.decision_note = clean_text(note, "note", 200)
        change.save()
        audit.record(actor=acting_user, action="register.change.decide", target=change,
                     changes={"household": change.household_id, "state": change.state,
                              "present": [change.present_before, change.present_after], **applied})
    return change
