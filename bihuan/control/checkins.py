"""Daily health check-ins (健康打卡): temperature and symptoms, twice a day by default, by the person through
their signed link or by a member of their team; and what happens when one is abnormal or missing.

- An **abnormal** check-in (≥ 37.3 °C or a listed symptom) alerts at once, in the same transaction: an
  ``ALERT`` loop owned by the community (level 4), due within an hour on a short reminder policy (the kind's,
  in ``models``) — the loop engine tells the community's staff as it opens, reminds them, then escalates to
  the township — and the five-for-one team members outside the community (inbox, SMS where configured; SMS
  to members who have only a phone), the doctor among them being the health staff.
- A **missed** check-in is the ``control.checkins`` worker's job: once a slot's deadline has passed
  (10:00 / 18:00 local time), one ``MissedCheckIn`` row per case and slot is written set-based and the
  person is reminded once (SMS if they have a phone); if the slot is still missing after the grace period
  (1 h), a ``MISSED_CHECKIN`` loop opens at the case's unit (the engine tells its staff, reminds them, then
  the unit above) and the team members outside that unit are told. A check-in, even late, closes the loop.

This module also holds what the other care modules share: ``care_access`` (who may act on a case), the
case's community and command office, and ``send_alert`` / ``open_alert``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy

from bihuan.core import audit
from bihuan.core.bulk import update_rows
from bihuan.core.errors import Refused
from bihuan.core.models import AuditEntry
from bihuan.core.roles import RESPONSIBLE_ROLES, Perm
from bihuan.core.worker import claim
from bihuan.loops import engine, kinds
from bihuan.loops.engine import Notice, sql_time
from bihuan.loops.models import OPEN_STATES, TERMINAL_STATES, Loop, LoopState
from bihuan.notify import conf
from bihuan.notify.models import Channel
from bihuan.notify.outbox import enqueue, notify_user
from bihuan.register.access import require, scoped
from bihuan.register.models import SEGMENT, Staff, Unit, UnitKind, subtree_q

from . import links
from .actions import access_case
from .models import (
    ALERT,
    ALERT_KINDS,
    MISSED_CHECKIN,
    OPEN_CASE_STATES,
    CheckIn,
    CheckInSlot,
    ControlCase,
    ControlType,
    MissedCheckIn,
    TeamMember,
)

# ---- rules (module constants) ---------------------------------------------------------------------------

TEMPERATURE_MIN = Decimal("34.0")
TEMPERATURE_MAX = Decimal("43.0")
FEVER_AT = Decimal("37.3")  # ≥ this is abnormal
# Listed symptoms: any one of them makes a check-in abnormal. Other words may be entered; they are kept
# but do not raise an alert by themselves.
SYMPTOMS = ("发热", "咳嗽", "乏力", "咽痛", "嗅觉味觉减退", "腹泻", "肌肉酸痛", "鼻塞流涕", "结膜炎", "呼吸困难")
# The stored values stay Chinese (records are one language); the labels follow the reader's language.
SYMPTOM_LABELS = {s: gettext_lazy(s) for s in SYMPTOMS}  # labels from the catalogue
NO_SYMPTOMS = {"无", "没有", "none"}


MAX_SYMPTOMS = 12


def symptom_choices() -> list[tuple[str, str]]:
    return [(s, SYMPTOM_LABELS.get(s, s)) for s in SYMPTOMS]

SLOTS = (CheckInSlot.MORNING, CheckInSlot.AFTERNOON)  # a type with one check-in a day uses the first
SLOT_DEADLINES = {CheckInSlot.MORNING: dt.time(10, 0), CheckInSlot.AFTERNOON: dt.time(18, 0)}  # local time
GRACE = timedelta(hours=1)  # after the deadline: remind the person; after deadline + GRACE: alert the team

MISSED_BATCH = 100  # missed slots claimed, and handled in one transaction, at a time
MISSED_PER_TICK = 1000  # then give the worker's other tasks a turn
COMMUNITY_LEVEL = 4


class CareError(Refused):
    """Refused; the message starts with the field's name."""


class CheckInError(CareError):
    pass


# ---- shared: access, places, recipients, alerts ----------------------------------------------------------

def care_access(user, case_id: int) -> ControlCase:
    """The case if ``user`` may care for it: a member of its five-for-one team (whatever their unit — the
    doctor or police officer often sits outside the community), or Perm.CARE with the case in their subtree
    (``actions.access_case``). ``PermissionDenied`` without CARE, ``Http404`` for a case outside the subtree
    (its existence stays hidden).
    """
    member = (getattr(user, "is_authenticated", False)
              and TeamMember.objects.filter(case_id=case_id, user_id=user.pk).exists())
    if not member:
        require(user, Perm.CARE)
    return access_case(user, case_id, member_ok=member)


def community_of(unit: Unit) -> Unit:
    """The village or community (level 4) a unit belongs to; the unit itself when it sits higher."""
    if unit.level <= COMMUNITY_LEVEL:
        return unit
    return Unit.objects.get(path=unit.path[: SEGMENT * COMMUNITY_LEVEL])


def command_office_of(unit: Unit) -> Unit | None:
    """The district's command office (level 2), whether or not the unit hangs under it."""
    return (Unit.objects.filter(subtree_q(unit.path[:SEGMENT]), level=2, kind=UnitKind.COMMAND_OFFICE)
            .order_by("path").first())


def staff_users(*units: Unit) -> list:
    """Every staff account of the given units (not their subtrees)."""
    return [s.user for s in Staff.objects.filter(unit__in=[u for u in units if u is not None])
            .select_related("user").order_by("unit__path", "pk")]


def sms_enabled() -> bool:
    return conf.load().sms is not None


@dataclass
class Recipients:
    """Who an alert goes to: accounts (inbox, plus email / SMS by ``notify_user``) and team members who have
    only a phone (SMS, when the gateway is configured). Accounts are de-duplicated."""

    users: dict = field(default_factory=dict)  # user id -> user
    phones: list = field(default_factory=list)  # (team member id, phone)

    def add_users(self, users) -> Recipients:
        for user in users:
            if user is not None and user.is_active:
                self.users.setdefault(user.pk, user)
        return self

    def without(self, user_ids: set[int]) -> Recipients:
        """The same recipients less some accounts (those the loop engine tells as the loop's owners)."""
        return Recipients(users={k: v for k, v in self.users.items() if k not in user_ids}, phones=list(self.phones))

    def summary(self) -> dict:
        return {"users": sorted(self.users), "members_by_sms": [m for m, _p in self.phones]}


def team_recipients(case: ControlCase) -> Recipients:
    """The case's five-for-one team; with no team at all, the grid's responsible people (grid worker,
    building leader, villager representative), or else every staff account of the case's unit."""
    return teams_of([case])[case.pk]


def teams_of(cases: list[ControlCase]) -> dict[int, Recipients]:
    """``team_recipients`` for many cases in two queries."""
    out = {case.pk: Recipients() for case in cases}
    has_team: set[int] = set()
    for member in TeamMember.objects.filter(case_id__in=out).select_related("user").order_by("pk"):
        has_team.add(member.case_id)
        if member.user_id:
            out[member.case_id].add_users([member.user])
        elif member.phone_sealed:
            out[member.case_id].phones.append((member.pk, member.reveal_phone()))
    bare = [case for case in cases if case.pk not in has_team]
    if bare:
        responsible, everyone = defaultdict(list), defaultdict(list)
        for staff in (Staff.objects.filter(unit_id__in={c.unit_id for c in bare}).select_related("user")
                      .order_by("unit_id", "pk")):
            everyone[staff.unit_id].append(staff.user)
            if staff.role in RESPONSIBLE_ROLES:
                responsible[staff.unit_id].append(staff.user)
        for case in bare:
            out[case.pk].add_users(responsible[case.unit_id] or everyone[case.unit_id])
    return out


def send_alert(recipients: Recipients, *, key: str, subject: str, body: str) -> None:
    """Enqueue one message per recipient (keys ``{key}:{user id}`` and ``{key}:m{member id}:sms``), in the
    caller's transaction. Enqueuing again changes nothing."""
    for user in recipients.users.values():
        notify_user(user, key=f"{key}:{user.pk}", subject=subject, body=body)
    if recipients.phones and sms_enabled():
        for member_id, phone in recipients.phones:
            try:
                enqueue(Channel.SMS, key=f"{key}:m{member_id}:sms", subject=subject, body=body, address=phone)
            except ValueError:
                pass  # an unusable phone on the team list; the audit row lists who was meant


def alert_deadlines(kind: str, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """When an alert loop opened now must be signed for and reported: the kind's policy (``models``)."""
    now = now or timezone.now()
    spec = kinds.get(kind)
    return now + spec.ack_within, now + spec.due_within


def open_alert(case: ControlCase, *, kind: str, subject_id: int, title: str, data: dict, subject: str, body: str,
               others: Recipients, key: str, deadlines: tuple[dt.datetime, dt.datetime] | None = None,
               acting_user=None) -> tuple[Loop, Recipients]:
    """An alert loop owned by the case's community — the engine tells the community's staff with ``subject`` /
    ``body`` as it opens, then reminds and escalates — and the same message to ``others`` who are not the
    community's staff (the team, the command office). Idempotent (one loop per kind and subject; message keys).
    Returns the loop and who control told."""
    community = community_of(case.unit)
    actor = acting_user if getattr(acting_user, "is_authenticated", False) else None
    ack, due = deadlines or alert_deadlines(kind)
    loop = engine.open_one(kind=kind, subject_id=subject_id, title=title, owner_unit=community,
                           originator_unit=case.unit, originator_user=actor, ack_due_at=ack, due_at=due,
                           data={**data, "case": case.pk}, notice=Notice(subject, body))
    told = others.without({u.pk for u in staff_users(community)})
    send_alert(told, key=key, subject=subject, body=body)
    return loop, told


def place_of(case: ControlCase) -> str:
    site = case.site_address + (f" {case.site_room}" if case.site_room else "")
    return f"{case.type.name_zh}，{site}"


def local(value: dt.datetime) -> str:
    return f"{timezone.localtime(value):%m-%d %H:%M}"


# ---- recording -------------------------------------------------------------------------------------------

def slots_for(control_type: ControlType) -> tuple[str, ...]:
    """The slots a type checks in at: the first ``checkins_per_day`` of am, pm."""
    return tuple(SLOTS[: max(0, min(control_type.checkins_per_day, len(SLOTS)))])


def slot_deadline(date: dt.date, slot: str) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(date, SLOT_DEADLINES[slot]))


def parse_temperature(value) -> Decimal:
    try:
        t = Decimal(str(value).strip().replace("℃", "").replace("°C", "")).quantize(Decimal("0.1"))
    except (InvalidOperation, ValueError):
        raise CheckInError("temperature: a number such as 36.5") from None
    if not TEMPERATURE_MIN <= t <= TEMPERATURE_MAX:
        raise CheckInError(f"temperature: between {TEMPERATURE_MIN} and {TEMPERATURE_MAX} °C")
    return t


def clean_symptoms(symptoms) -> list[str]:
    if symptoms is None:
        return []
    if isinstance(symptoms, str):
        symptoms = symptoms.replace("，", ",").replace("、", ",").split(",")
    out: list[str] = []
    for raw in symptoms:
        word = " ".join(str(raw).split())[:30]
        if word and word.lower() not in NO_SYMPTOMS and word not in out:
            out.append(word)
    if len(out) > MAX_SYMPTOMS:
        raise CheckInError(f"symptoms: at most {MAX_SYMPTOMS}")
    return out


def is_abnormal(temperature: Decimal, symptoms: list[str]) -> bool:
    return temperature >= FEVER_AT or any(s in SYMPTOMS for s in symptoms)


def do_record_checkin(case: ControlCase, *, date: dt.date, slot: str, temperature, symptoms,
                      acting_user=None) -> CheckIn:
    """Record one check-in. ``acting_user`` None: the person through their signed link (the caller resolved
    the case from the token), for today only; else a team member or Perm.CARE staff in scope, for any day of
    the case up to today. The same values again return the existing check-in (a double tap); different
    values for a recorded slot are refused. An abnormal check-in alerts at once (see the module docstring).
    """
    by_person = acting_user is None
    if not by_person:
        case = care_access(acting_user, case.pk)
    temperature = parse_temperature(temperature)
    symptoms = clean_symptoms(symptoms)
    if slot not in CheckInSlot.values:
        raise CheckInError(f"slot: one of {CheckInSlot.values}")
    today = timezone.localdate()
    if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
        raise CheckInError("date: a date")
    if by_person and date != today:
        raise CheckInError("date: check in for today")
    if date > today:
        raise CheckInError("date: not in the future")
    with transaction.atomic():
        case = (ControlCase.objects.select_for_update(of=("self",)).select_related("type", "unit")
                .get(pk=case.pk))
        if case.state not in OPEN_CASE_STATES:
            raise CheckInError("case: no longer under control")
        if not case.start_date <= date <= case.end_date:
            raise CheckInError("date: outside the case's period")
        if slot not in slots_for(case.type):
            raise CheckInError(f"slot: this measure checks in at {', '.join(slots_for(case.type)) or 'no slot'}")
        existing = CheckIn.objects.filter(case=case, date=date, slot=slot).first()
        if existing is not None:
            if existing.temperature == temperature and existing.symptoms == symptoms:
                return existing
            raise CheckInError("slot: already recorded for this day")
        abnormal = is_abnormal(temperature, symptoms)
        checkin = CheckIn.objects.create(case=case, date=date, slot=slot, temperature=temperature,
                                         symptoms=symptoms, abnormal=abnormal, entered_by=acting_user)
        late = close_missed(case, date, slot, acting_user=acting_user)
        audit.record(actor=acting_user, action="control.checkin", target=checkin, unit=case.unit if by_person else None,
                     changes={"case": case.pk, "date": date.isoformat(), "slot": slot, "temperature": str(temperature),
                              "symptoms": symptoms, "abnormal": abnormal, "by": "person" if by_person else "staff",
                              "late": late})
        if abnormal:
            alert_abnormal(case, checkin, acting_user=acting_user)
    return checkin


def alert_abnormal(case: ControlCase, checkin: CheckIn, *, acting_user=None) -> Loop:
    """The community gets an ALERT loop (one per check-in; the engine tells its staff at once) and the team is
    told at once."""
    symptoms = "、".join(checkin.symptoms)
    what = f"体温 {checkin.temperature}℃" + (f"，症状：{symptoms}" if symptoms else "")
    community = community_of(case.unit)
    ack, due = alert_deadlines(ALERT)
    body = (f"{case.name}（{place_of(case)}）{checkin.date:%m-%d}{checkin.get_slot_display()}{what}。"
            f"请包保人员立即上门核实并联系医生；{community.name}请于 {local(ack)} 前签收、{local(due)} 前反馈处置情况。")
    loop, told = open_alert(case, kind=ALERT, subject_id=checkin.pk, title=f"健康打卡异常：{case.name} {what}"[:200],
                            data={"checkin": checkin.pk}, subject=f"健康打卡异常：{case.name}", body=body,
                            others=team_recipients(case), key=f"control.alert:checkin:{checkin.pk}",
                            deadlines=(ack, due), acting_user=acting_user)
    audit.record(actor=acting_user, action="control.alert", target=loop, unit=case.unit,
                 changes={"reason": "abnormal_checkin", "case": case.pk, "checkin": checkin.pk,
                          "community": community.pk, **told.summary()})
    return loop


def do_resolve_alert(loop: Loop, note: str, *, acting_user) -> Loop:
    """The community reports how an alert was handled and closes it (反馈 and 销号 in one step)."""
    note = " ".join((note or "").split())
    if not note:
        raise CareError("note: say how it was handled")
    require(acting_user, Perm.CARE)
    with transaction.atomic():
        loop = scoped(acting_user, Loop.objects.filter(kind__in=ALERT_KINDS)).filter(pk=loop.pk).first()
        if loop is None:
            raise Http404("no such alert in your part of the district")
        if loop.state in TERMINAL_STATES:
            return loop  # a double tap
        loop = engine.transition(loop, LoopState.REPORTED, actor=acting_user, note=note[:2000])
        return engine.transition(loop, LoopState.CLOSED, actor=acting_user, note="已处置")


# ---- missed check-ins (the control.checkins worker task) -------------------------------------------------

def detect_missed(now: dt.datetime | None = None) -> int:
    """Write a ``MissedCheckIn`` for every slot of today whose deadline has passed with no check-in, for
    every open case in its period (opened before that deadline). One read finds them all; rows are inserted
    only when there are new ones (a write on SQLite takes the database lock). Returns rows added."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    due = [(i, slot, slot_deadline(today, slot)) for i, slot in enumerate(SLOTS) if now >= slot_deadline(today, slot)]
    if not due:
        return 0
    cases = ControlCase.objects.filter(state__in=OPEN_CASE_STATES, start_date__lte=today, end_date__gte=today)
    wanted = Q()
    for i, slot, deadline in due:
        cases = cases.annotate(**{
            f"done_{slot}": Exists(CheckIn.objects.filter(case=OuterRef("pk"), date=today, slot=slot)),
            f"seen_{slot}": Exists(MissedCheckIn.objects.filter(case=OuterRef("pk"), date=today, slot=slot)),
        })
        wanted |= Q(type__checkins_per_day__gt=i, created_at__lt=deadline, **{f"done_{slot}": False,
                                                                              f"seen_{slot}": False})
    columns = ["pk", "path", "type__checkins_per_day", "created_at"]
    columns += [f"{flag}_{slot}" for _i, slot, _d in due for flag in ("done", "seen")]
    rows = []
    for row in cases.filter(wanted).values(*columns):
        for i, slot, deadline in due:
            if (row["type__checkins_per_day"] > i and row["created_at"] < deadline and not row[f"done_{slot}"]
                    and not row[f"seen_{slot}"]):
                rows.append(MissedCheckIn(case_id=row["pk"], path=row["path"], date=today, slot=slot, due_at=deadline,
                                          alert_at=deadline + GRACE))
    if rows:
        MissedCheckIn.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return len(rows)


def close_missed(case: ControlCase, date: dt.date, slot: str, *, acting_user=None) -> bool:
    """A check-in arrived for a missed slot: its loop, if one opened, is reported and closed (销号). Returns
    whether the slot had been missed."""
    missed = list(MissedCheckIn.objects.filter(case=case, date=date, slot=slot).values_list("pk", flat=True))
    actor = acting_user if getattr(acting_user, "is_authenticated", False) else None
    by = "本人补打卡" if actor is None else "工作人员代为登记"
    for loop in Loop.objects.filter(kind=MISSED_CHECKIN, subject_id__in=missed, state__in=OPEN_STATES):
        loop = engine.transition(loop, LoopState.REPORTED, actor=actor, note=by)
        engine.transition(loop, LoopState.CLOSED, actor=actor, note=by)
    return bool(missed)


def process_missed(owner: str, now: dt.datetime | None = None, *, max_rows: int = MISSED_PER_TICK) -> int:
    """Claim missed slots with a step due (remind the person / hand the slot to its loop) and take it. Safe with
    any number of workers: rows are leased, each step is stamped in the same transaction as its loops and
    messages, and message keys (``checkin-remind:…``, ``checkin-alert:…``) make a repeated step a no-op."""
    now = now or timezone.now()
    work = (MissedCheckIn.objects.filter(Q(reminded_at__isnull=True) | Q(handed_at__isnull=True, alert_at__lte=now))
            .order_by("due_at", "pk"))
    handled = 0
    while handled < max_rows:
        if not work.exists():
            break  # a read: claim() would open a write transaction
        rows = claim(work, owner=owner, limit=min(MISSED_BATCH, max_rows - handled), lease_seconds=120)
        if not rows:
            break
        handled += _handle_missed([row.pk for row in rows], owner, now)
    return handled


def _handle_missed(row_ids: list[int], owner: str, now: dt.datetime) -> int:
    """One claimed batch in one transaction: a handful of queries, one set-based loop opening, the messages."""
    with transaction.atomic():
        rows = list(MissedCheckIn.objects.select_for_update(of=("self",)).select_related("case__type", "case__unit")
                    .filter(pk__in=row_ids, locked_by=owner).order_by("pk"))  # a lease ran out: not ours now
        if not rows:
            return 0
        checked_in = set(CheckIn.objects.filter(case_id__in={r.case_id for r in rows}, date__in={r.date for r in rows})
                         .values_list("case_id", "date", "slot"))
        filled = {r.pk for r in rows
                  if r.case.state not in OPEN_CASE_STATES or (r.case_id, r.date, r.slot) in checked_in}
        handing = [r for r in rows if r.handed_at is None and now >= r.alert_at]
        to_open = [r for r in handing if r.pk not in filled]
        loops = _open_missed_loops(to_open)
        teams = teams_of(list({r.case_id: r.case for r in to_open}.values()))
        owners: dict[int, set[int]] = defaultdict(set)
        for unit_id, user_id in Staff.objects.filter(unit_id__in={r.case.unit_id for r in to_open}).values_list(
                "unit_id", "user_id"):
            owners[unit_id].add(user_id)
        entries = []
        for row in rows:
            case, what = row.case, {"case": row.case_id, "date": row.date.isoformat(), "slot": row.slot}
            if row.reminded_at is None:
                row.reminded_at = now
                if row.pk not in filled:
                    entries.append(_entry(row, "control.checkin_reminded", {**what, "sms": remind_person(case, row)}))
        for row in handing:
            row.handed_at = now
            if row.pk in filled:
                continue
            told = alert_team_missed(row.case, row, teams[row.case_id].without(owners[row.case.unit_id]))
            entries.append(_entry(row, "control.checkin_missed_alert",
                                  {"case": row.case_id, "date": row.date.isoformat(), "slot": row.slot,
                                   "loop": loops.get(row.pk), "owner_unit": row.case.unit_id, **told.summary()}))
        for row in rows:
            row.locked_by, row.locked_until = "", None
        update_rows(MissedCheckIn, rows, ["reminded_at", "handed_at", "locked_by", "locked_until"])
        AuditEntry.objects.bulk_create(entries)
    return len(rows)


def _open_missed_loops(rows: list[MissedCheckIn]) -> dict[int, int]:
    """One ``MISSED_CHECKIN`` loop per row, owned by the case's unit, in one ``INSERT … SELECT`` (the engine
    tells each unit's staff once, in one digest). Returns {row id: loop id}."""
    if not rows:
        return {}
    q = connection.ops.quote_name
    labels = dict(CheckInSlot.choices)
    combos = sorted({(r.date, r.slot) for r in rows})
    when = " ".join("WHEN m.date = %s AND m.slot = %s THEN %s" for _ in combos)
    when_params = [x for d, slot in combos
                   for x in (connection.ops.adapt_datefield_value(d), slot, f" {d:%m-%d}{labels[slot]}体温打卡")]
    ids = [r.pk for r in rows]
    rows_sql = (
        f"SELECT m.id AS subject_id, CAST(c.name || CASE {when} END AS VARCHAR(200)) AS title, "
        "u.id AS owner_unit_id, u.path AS owner_path, u.level AS owner_level, u.id AS originator_unit_id, "
        f"{sql_time('NULL')} AS ack_due_at, {sql_time('NULL')} AS due_at "
        f"FROM {q(MissedCheckIn._meta.db_table)} m JOIN {q(ControlCase._meta.db_table)} c ON c.id = m.case_id "
        f"JOIN {q(Unit._meta.db_table)} u ON u.id = c.unit_id WHERE m.id IN ({', '.join(['%s'] * len(ids))})")
    engine.open_many(MISSED_CHECKIN, rows_sql, [*when_params, *ids])
    return dict(Loop.objects.filter(kind=MISSED_CHECKIN, subject_id__in=ids).values_list("subject_id", "pk"))


def _entry(row: MissedCheckIn, action: str, changes: dict) -> AuditEntry:
    """The audit row of a worker step (no actor; the unit is the case's)."""
    return AuditEntry(actor=None, actor_unit_id=row.case.unit_id, action=action,
                      target_type=MissedCheckIn._meta.label_lower, target_id=str(row.pk), changes=changes)


def remind_person(case: ControlCase, row: MissedCheckIn) -> bool:
    """SMS to the person, once per slot (key ``checkin-remind:{case}:{date}:{slot}``). False if they have no
    phone or no SMS gateway is configured (the team alert still follows)."""
    phone = case.reveal_phone() if case.phone_sealed else ""
    if not phone or not sms_enabled():
        return False
    url = links.person_url(case.pk)
    body = (f"{case.name}您好，您 {row.date:%m月%d日}{row.get_slot_display()} 的体温打卡尚未提交，请尽快上报"
            + (f"：{url}" if url else "。"))
    try:
        enqueue(Channel.SMS, key=f"checkin-remind:{case.pk}:{row.date.isoformat()}:{row.slot}", subject="健康打卡提醒",
                body=body, address=phone)
    except ValueError:
        return False
    return True


def missed_text(case: ControlCase, row: MissedCheckIn) -> str:
    return (f"{case.name}（{place_of(case)}）{row.date:%m-%d}{row.get_slot_display()}的体温打卡截至 "
            f"{local(row.alert_at)} 仍未提交（已提醒本人）。请包保人员电话或上门询问并代为登记。")


def alert_team_missed(case: ControlCase, row: MissedCheckIn, recipients: Recipients | None = None) -> Recipients:
    recipients = recipients if recipients is not None else team_recipients(case)
    send_alert(recipients, key=f"checkin-alert:{case.pk}:{row.date.isoformat()}:{row.slot}",
               subject=f"未按时打卡：{case.name}", body=missed_text(case, row))
    return recipients
