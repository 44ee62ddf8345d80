"""Every write of the field force, each in a transaction with its audit row. Loops move only through
``bihuan.loops.engine``. ``acting_user=None`` is the system (the worker, the demo generator); a helper acting
through their signed link passes ``helper=`` instead and is recorded by name."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from bihuan.core import audit, crypto
from bihuan.core.errors import Refused
from bihuan.core.personal import InvalidIdNumber, normalize_id_number, normalize_phone
from bihuan.loops import engine
from bihuan.loops.models import OPEN_STATES, Loop, LoopState
from bihuan.register.access import require, scope_of
from bihuan.register.models import Staff, Unit

from . import photos
from .access import MANAGE, RECORD
from .models import (
    MAX_HOURS_PER_DAY,
    MISSED_START,
    REPORT_IN,
    TASK,
    DisinfectionLog,
    GroupCode,
    Helper,
    HelperKind,
    HelperStatus,
    Notice,
    NoticeView,
    Place,
    PlaceKind,
    Post,
    PostKind,
    Shift,
    ShiftSwap,
    SwapState,
    Task,
    TaskKind,
    Team,
    TeamMember,
)

S = LoopState
REPORT_IN_LEVELS = (4, 5, 6)  # a helper reports to a village / community (or a compound or grid of one)


class ForcesError(Refused):
    pass


def _authorize(acting_user, path: str, perm: str) -> None:
    """The acting user may ``perm`` at ``path`` (None: the system)."""
    if acting_user is None:
        return
    scope = require(acting_user, perm)
    if not scope.contains(path):
        raise ForcesError("unit", "不在您的管辖范围内")


def _clean_phone(phone: str) -> str:
    try:
        return normalize_phone(phone)
    except ValueError:
        raise ForcesError("phone", "手机号格式不正确：应为 11 位手机号或带区号的固话") from None


def _clean_id(id_number: str) -> str:
    if not (id_number or "").strip():
        return ""
    try:
        return normalize_id_number(id_number)
    except InvalidIdNumber:
        raise ForcesError("id_number", "身份证号不正确：请核对 18 位号码及校验位") from None


def _choice(value: str, choices, field: str) -> str:
    if value not in choices.values:
        raise ForcesError(field, f"无效的选项：{value}")
    return value


# --- helpers and report-in (报到) ---------------------------------------------------------------------------

def find_helper(phone: str = "", id_number: str = "") -> Helper | None:
    """The helper with this phone or ID number (by lookup hash), if any: one person is one helper."""
    q = Q()
    if phone:
        q |= Q(phone_hash=crypto.lookup_hash("phone", phone))
    if id_number:
        q |= Q(id_hash=crypto.lookup_hash("id", id_number))
    return Helper.objects.filter(q).order_by("id").first() if q else None


def do_report_in(unit: Unit, *, name: str, phone: str, kind: str, id_number: str = "", home_unit: Unit | None = None,
                 home_org: str = "", party_member: bool = False, skills: str = "", availability: str = "",
                 acting_user=None) -> tuple[Helper, bool]:
    """A person reports in to ``unit`` (a poster's QR, or staff typing it in). Returns (helper, merged): the same
    phone or ID number reporting again updates the one helper rather than adding a second. A new or moved
    report-in opens the community's approval loop (its people are told at once); an approved helper reporting
    again to the same place stays approved."""
    name = (name or "").strip()
    if not name or len(name) > 50:
        raise ForcesError("name", "请填写姓名（不超过 50 字）")
    phone, id_number = _clean_phone(phone), _clean_id(id_number)
    kind = _choice(kind, HelperKind, "kind")
    if unit.level not in REPORT_IN_LEVELS:
        raise ForcesError("unit", "请向村（社区）报到")
    if home_unit is not None and home_unit.level > 3:
        raise ForcesError("home_unit", "单位应为区直部门或乡镇（街道）")
    now = timezone.now()
    with transaction.atomic():
        helper = find_helper(phone, id_number)
        merged = helper is not None
        if helper is None:
            helper = Helper(kind=kind, unit=unit, path=unit.path, status=HelperStatus.PENDING)
        else:
            helper = Helper.objects.select_for_update().get(pk=helper.pk)
        moved = merged and helper.unit_id != unit.pk
        was = helper.status
        helper.name, helper.kind = name, kind
        helper.unit, helper.path = unit, unit.path
        helper.set_phone(phone)
        if id_number:
            helper.set_id_number(id_number)
        if home_unit is not None or home_org:
            helper.home_unit = home_unit
            helper.home_path = home_unit.path if home_unit else ""
            helper.home_org = "" if home_unit else home_org.strip()[:100]
        helper.party_member = party_member or kind == HelperKind.PARTY_MEMBER
        helper.skills, helper.availability = skills.strip()[:200], availability.strip()[:200]
        helper.reported_at = now
        helper.reports = (helper.reports or 0) + 1
        if not merged or moved or was == HelperStatus.REJECTED:
            helper.status = HelperStatus.PENDING
        elif was == HelperStatus.LEFT:
            helper.status = HelperStatus.ACTIVE  # approved here before: back on the roster
        helper.save()
        if moved:
            for loop in Loop.objects.filter(kind=REPORT_IN, subject_id=helper.pk, state__in=OPEN_STATES):
                engine.transition(loop, S.CANCELLED, actor=acting_user, note="改向其他社区报到")
        if helper.status == HelperStatus.PENDING:
            _open_report_in(helper, unit, acting_user)
        audit.record(actor=acting_user, action="forces.helper.report_in", target=helper, unit=unit, changes={
            "unit": unit.pk, "kind": kind, "merged": merged, "status": [was if merged else "", helper.status]})
    return helper, merged


def _open_report_in(helper: Helper, unit: Unit, acting_user) -> Loop:
    """The community's approval loop: opened (its people told at once), or — after a rejection — issued again
    with a fresh deadline (the same loop, so the history stays in one place)."""
    title = f"{helper.name}（{helper.get_kind_display()}）报到"
    existing = Loop.objects.filter(kind=REPORT_IN, subject_id=helper.pk, owner_unit=unit).first()
    if existing is not None and existing.state == S.RETURNED:
        loop = engine.transition(existing, S.ISSUED, actor=acting_user, note="再次报到")
        return engine.reassign(loop, unit, actor=acting_user, action="reissued", note="再次报到",
                               due_at=timezone.now() + engine.kinds.get(REPORT_IN).due_within)
    return engine.open_one(kind=REPORT_IN, subject_id=helper.pk, title=title, owner_unit=unit, originator_unit=unit,
                           originator_user=acting_user, notice=engine.Notice(
                               f"新报到待审核：{helper.name}",
                               f"{helper.name}（{helper.get_kind_display()}，{helper.organisation or '无单位'}）"
                               f"向{unit.name}报到，请在一天内审核。"))


def report_in_loop(helper: Helper) -> Loop | None:
    return (Loop.objects.filter(kind=REPORT_IN, subject_id=helper.pk, owner_unit_id=helper.unit_id)
            .order_by("-id").first())


def do_decide_report_in(helper: Helper, *, approve: bool, acting_user, note: str = "") -> Helper:
    """The community approves (在岗) or rejects (未通过) a report-in; its loop closes."""
    with transaction.atomic():
        helper = Helper.objects.select_for_update().get(pk=helper.pk)
        _authorize(acting_user, helper.path, MANAGE)
        if helper.status != HelperStatus.PENDING:
            raise ForcesError.conflict("status", f"该报到已处理（{helper.get_status_display()}）")
        loop = report_in_loop(helper)
        if loop is not None and loop.is_open:
            if approve:  # reported and closed: 销号
                if loop.state != S.REPORTED:
                    loop = engine.transition(loop, S.REPORTED, actor=acting_user, note=note,
                                             data={"decision": "approved"})
                engine.transition(loop, S.CLOSED, actor=acting_user, note=note or "通过")
            else:  # returned: a new report-in issues the same loop again
                engine.transition(loop, S.RETURNED, actor=acting_user, note=note or "未通过",
                                  data={"decision": "rejected"})
        before = helper.status
        helper.status = HelperStatus.ACTIVE if approve else HelperStatus.REJECTED
        helper.decided_at, helper.decided_by = timezone.now(), acting_user
        helper.save(update_fields=["status", "decided_at", "decided_by"])
        audit.record(actor=acting_user, action="forces.helper.decide", target=helper,
                     changes={"status": [before, helper.status], "note": note[:200]})
    return helper


def do_set_helper_status(helper: Helper, status: str, *, acting_user) -> Helper:
    """Pause, resume or let go of an approved helper."""
    status = _choice(status, HelperStatus, "status")
    if status not in (HelperStatus.ACTIVE, HelperStatus.PAUSED, HelperStatus.LEFT):
        raise ForcesError("status", "只能设为在岗、暂停或已离开")
    with transaction.atomic():
        helper = Helper.objects.select_for_update().get(pk=helper.pk)
        _authorize(acting_user, helper.path, MANAGE)
        if helper.status in (HelperStatus.PENDING, HelperStatus.REJECTED):
            raise ForcesError("status", "请先审核报到")
        before = helper.status
        helper.status = status
        helper.save(update_fields=["status"])
        audit.record(actor=acting_user, action="forces.helper.status", target=helper, changes={"status": [before, status]})
    return helper


def do_reveal_helper(helper: Helper, *, acting_user, reason: str) -> dict:
    """The full phone and ID number, on purpose — the reveal of residents (``core.reveal``): a reason is required
    (a listed code or free text), the reveals of one user are throttled (helpers count with residents, staff phones
    and pushed people), and the read is audited with its reason."""
    from bihuan.core import reveal
    from bihuan.core.roles import Perm

    with transaction.atomic():
        _authorize(acting_user, helper.path, Perm.REVEAL_PERSONAL)
        reason = reveal.reason_of(text=reason)
        reveal.check(acting_user)
        audit.record(actor=acting_user, action="forces.helper.reveal", target=helper,
                     changes={"fields": ["phone", "id_number"], "reason": reason})
    return {"phone": helper.reveal_phone() if helper.phone_sealed else "",
            "id_number": helper.reveal_id_number() if helper.id_sealed else ""}


# --- teams ----------------------------------------------------------------------------------------------------

def do_create_team(unit: Unit, *, name: str, purpose: str = "", leader: Helper | None = None,
                   members: list[Helper] = (), acting_user) -> Team:
    name = (name or "").strip()
    if not name:
        raise ForcesError("name", "请填写服务队名称")
    with transaction.atomic():
        _authorize(acting_user, unit.path, MANAGE)
        _check_members(unit, [*members, *([leader] if leader else [])])
        team = Team.objects.create(unit=unit, path=unit.path, name=name[:100], purpose=purpose[:200], leader=leader)
        people = {h.pk: h for h in [*members, *([leader] if leader else [])]}
        TeamMember.objects.bulk_create([TeamMember(team=team, helper=h) for h in people.values()])
        audit.record(actor=acting_user, action="forces.team.create", target=team,
                     changes={"unit": unit.pk, "leader": getattr(leader, "pk", None), "members": sorted(people)})
    return team


def do_add_team_member(team: Team, helper: Helper, *, acting_user, leader: bool = False) -> Team:
    with transaction.atomic():
        _authorize(acting_user, team.path, MANAGE)
        TeamMember.objects.get_or_create(team=team, helper=helper)
        if leader:
            Team.objects.filter(pk=team.pk).update(leader=helper)
            team.leader = helper
        audit.record(actor=acting_user, action="forces.team.add_member", target=team,
                     changes={"helper": helper.pk, "leader": leader})
    return team


def reach_path(unit: Unit) -> str:
    """Whose helpers a unit may draw on: its subtree's, or — for a compound, villager group or grid — its
    community's (helpers report in to the village or community)."""
    from bihuan.register.models import SEGMENT

    return unit.path if unit.level <= 4 else unit.path[:4 * SEGMENT]


def _check_members(unit: Unit, people: list[Helper]) -> None:
    """A team's people serve in its unit's reach (``reach_path``), or belong to it (a department's own cadres)."""
    from bihuan.register.models import next_path

    lo, hi = reach_path(unit), next_path(reach_path(unit))
    for h in people:
        if not (lo <= h.path < hi or (h.home_path and lo <= h.home_path < hi)):
            raise ForcesError.conflict("members", f"{h.name} 不在本单位范围内")
        if h.status in (HelperStatus.PENDING, HelperStatus.REJECTED):
            raise ForcesError("members", f"{h.name} 的报到尚未通过审核")


def do_update_team(team: Team, *, name: str | None = None, purpose: str | None = None,
                   leader: Helper | None = None, members: list[Helper] | None = None, clear_leader: bool = False,
                   acting_user) -> Team:
    """Rename a team, change its purpose or leader, or set its members (the leader is always a member)."""
    with transaction.atomic():
        team = Team.objects.select_for_update(of=("self",)).select_related("unit").get(pk=team.pk)
        _authorize(acting_user, team.path, MANAGE)
        before = {"name": team.name, "leader": team.leader_id,
                  "members": sorted(TeamMember.objects.filter(team=team).values_list("helper_id", flat=True))}
        if name is not None:
            name = name.strip()
            if not name:
                raise ForcesError("name", "请填写服务队名称")
            team.name = name[:100]
        if purpose is not None:
            team.purpose = purpose.strip()[:200]
        if leader is not None:
            _check_members(team.unit, [leader])
            team.leader = leader
        elif clear_leader:
            team.leader = None
        team.save()
        if members is not None:
            people = {h.pk: h for h in [*members, *([team.leader] if team.leader_id else [])]}
            _check_members(team.unit, list(people.values()))
            TeamMember.objects.filter(team=team).exclude(helper_id__in=list(people)).delete()
            have = set(TeamMember.objects.filter(team=team).values_list("helper_id", flat=True))
            TeamMember.objects.bulk_create([TeamMember(team=team, helper_id=pk) for pk in people if pk not in have])
        elif team.leader_id:
            TeamMember.objects.get_or_create(team=team, helper=team.leader)
        after = {"name": team.name, "leader": team.leader_id,
                 "members": sorted(TeamMember.objects.filter(team=team).values_list("helper_id", flat=True))}
        audit.record(actor=acting_user, action="forces.team.update", target=team,
                     changes={k: [before[k], after[k]] for k in after if before[k] != after[k]})
    return team


# --- posts and rosters ---------------------------------------------------------------------------------------

def do_create_post(unit: Unit, *, name: str, kind: str, start_hour: int = 0, end_hour: int = 24, required: int = 1,
                   acting_user) -> Post:
    name, kind = _check_post_fields(name, kind, start_hour, end_hour, required)
    with transaction.atomic():
        _authorize(acting_user, unit.path, MANAGE)
        post = Post.objects.create(unit=unit, path=unit.path, name=name[:100], kind=kind, start_hour=start_hour,
                                   end_hour=end_hour, required=required)
        audit.record(actor=acting_user, action="forces.post.create", target=post,
                     changes={"unit": unit.pk, "hours": [start_hour, end_hour], "required": required})
    return post


def _check_post_fields(name: str, kind: str, start_hour: int, end_hour: int, required: int) -> tuple[str, str]:
    name = (name or "").strip()
    if not name:
        raise ForcesError("name", "请填写岗位名称")
    kind = _choice(kind, PostKind, "kind")
    if not (0 <= start_hour <= 23 and 1 <= end_hour <= 24):
        raise ForcesError("start_hour", "值守时间应在 0–24 点之间")
    if not 1 <= required <= 50:
        raise ForcesError("required", "每班人数应为 1–50")
    return name[:100], kind


def do_update_post(post: Post, *, name: str, kind: str, start_hour: int, end_hour: int, required: int,
                   active: bool = True, acting_user) -> Post:
    """Change a post's name, kind, staffed hours or people per shift, or retire it (its roster is kept)."""
    name, kind = _check_post_fields(name, kind, start_hour, end_hour, required)
    with transaction.atomic():
        post = Post.objects.select_for_update().get(pk=post.pk)
        _authorize(acting_user, post.path, MANAGE)
        fields_ = ("name", "kind", "start_hour", "end_hour", "required", "active")
        before = {f: getattr(post, f) for f in fields_}
        post.name, post.kind, post.start_hour, post.end_hour, post.required, post.active = (
            name, kind, start_hour, end_hour, required, active)
        post.save(update_fields=list(fields_))
        audit.record(actor=acting_user, action="forces.post.update", target=post,
                     changes={f: [before[f], getattr(post, f)] for f in fields_ if before[f] != getattr(post, f)})
    return post


def person_conflicts(*, helper_id: int | None, staff_id: int | None, starts_at: dt.datetime, ends_at: dt.datetime,
                     exclude_id: int | None = None) -> str:
    """Why this person cannot take a shift then ("" if they can): already on another post at the time, or over
    ``MAX_HOURS_PER_DAY`` on the shift's day."""
    mine = Shift.objects.filter(helper_id=helper_id) if helper_id else Shift.objects.filter(staff_id=staff_id)
    if exclude_id:
        mine = mine.exclude(pk=exclude_id)
    clash = mine.filter(starts_at__lt=ends_at, ends_at__gt=starts_at).select_related("post").first()
    if clash is not None:
        local = timezone.localtime(clash.starts_at)
        return f"同一时段已在「{clash.post.name}」值班（{local:%m-%d %H:%M}–{timezone.localtime(clash.ends_at):%H:%M}）"
    day = timezone.localtime(starts_at).date()
    lo = timezone.make_aware(dt.datetime.combine(day, dt.time()))
    total = (ends_at - starts_at).total_seconds()
    for s, e in mine.filter(starts_at__gte=lo, starts_at__lt=lo + dt.timedelta(days=1)).values_list("starts_at", "ends_at"):
        total += (e - s).total_seconds()
    if total > MAX_HOURS_PER_DAY * 3600:
        return f"当天排班将超过 {MAX_HOURS_PER_DAY} 小时"
    return ""


def do_assign_shift(post: Post, *, starts_at: dt.datetime, ends_at: dt.datetime, helper: Helper | None = None,
                    staff: Staff | None = None, acting_user) -> Shift:
    """Put a helper (active) or a staff member on a post for a time; refused if it would be a conflict."""
    if (helper is None) == (staff is None):
        raise ForcesError("helper", "请选择一名志愿者或工作人员")
    if ends_at <= starts_at:
        raise ForcesError("ends_at", "结束时间应晚于开始时间")
    if ends_at - starts_at > dt.timedelta(hours=MAX_HOURS_PER_DAY):
        raise ForcesError("ends_at", f"一个班次不能超过 {MAX_HOURS_PER_DAY} 小时")
    if helper is not None and helper.status != HelperStatus.ACTIVE:
        raise ForcesError.conflict("helper", f"{helper.name} 不在岗（{helper.get_status_display()}）")
    with transaction.atomic():
        _authorize(acting_user, post.path, MANAGE)
        if helper is not None:
            Helper.objects.select_for_update().filter(pk=helper.pk).first()  # one assignment at a time per person
        why = person_conflicts(helper_id=getattr(helper, "pk", None), staff_id=getattr(staff, "pk", None),
                               starts_at=starts_at, ends_at=ends_at)
        if why:
            raise ForcesError.conflict("helper", f"{(helper or staff).name}：{why}")
        shift = Shift.objects.create(post=post, path=post.path, helper=helper, staff=staff, starts_at=starts_at,
                                     ends_at=ends_at)
        audit.record(actor=acting_user, action="forces.shift.assign", target=shift, changes={
            "post": post.pk, "helper": getattr(helper, "pk", None), "staff": getattr(staff, "pk", None),
            "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()})
    return shift


def do_remove_shift(shift: Shift, *, acting_user) -> None:
    with transaction.atomic():
        _authorize(acting_user, shift.path, MANAGE)
        if shift.on_at:
            raise ForcesError("shift", "已到岗的班次不能删除")
        for loop in Loop.objects.filter(kind=MISSED_START, subject_id=shift.pk, state__in=OPEN_STATES):
            engine.transition(loop, S.CANCELLED, actor=acting_user, note="班次已取消")
        audit.record(actor=acting_user, action="forces.shift.remove", target=shift,
                     changes={"post": shift.post_id, "starts_at": shift.starts_at.isoformat()})
        shift.delete()


def do_copy_week(unit: Unit, *, from_monday: dt.date, acting_user) -> int:
    """Copy the roster of the week starting ``from_monday`` to the week after, for every post under ``unit``: one
    ``INSERT … SELECT``; shifts that exist already (same post, person and start) are not copied twice, nor shifts
    of people no longer active. Returns how many were added."""
    from django.db import connection

    _authorize(acting_user, unit.path, MANAGE)
    lo = timezone.make_aware(dt.datetime.combine(from_monday, dt.time()))
    hi = lo + dt.timedelta(days=7)
    q = connection.ops.quote_name
    sh, hp = q(Shift._meta.db_table), q(Helper._meta.db_table)
    week = 7 * 86400
    if connection.vendor == "postgresql":
        plus = "s.{col} + INTERVAL '7 days'"
    else:
        plus = "strftime('%%Y-%%m-%%d %%H:%%M:%%S', s.{col}, '+7 days')"
    from bihuan.register.models import next_path

    adapt = connection.ops.adapt_datetimefield_value
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {sh} (post_id, path, helper_id, staff_id, starts_at, ends_at, created_at) "
            f"SELECT s.post_id, s.path, s.helper_id, s.staff_id, {plus.format(col='starts_at')}, "
            f"{plus.format(col='ends_at')}, %s FROM {sh} s LEFT JOIN {hp} h ON h.id = s.helper_id "
            "WHERE s.path >= %s AND s.path < %s AND s.starts_at >= %s AND s.starts_at < %s "
            "AND (s.helper_id IS NULL OR h.status = 'active') "
            f"AND NOT EXISTS (SELECT 1 FROM {sh} t WHERE t.post_id = s.post_id "
            "AND COALESCE(t.helper_id, 0) = COALESCE(s.helper_id, 0) AND COALESCE(t.staff_id, 0) = COALESCE(s.staff_id, 0) "
            f"AND t.starts_at = {plus.format(col='starts_at')})",
            [adapt(timezone.now()), unit.path, next_path(unit.path), adapt(lo), adapt(hi)])
        added = cur.rowcount
        audit.record(actor=acting_user, action="forces.roster.copy_week", target=unit, changes={
            "from": from_monday.isoformat(), "added": added, "seconds": week})
    return added


def _missed_loops(shift: Shift):
    return Loop.objects.filter(kind=MISSED_START, subject_id=shift.pk, state__in=OPEN_STATES)


def do_tap_duty(shift: Shift, *, on: bool, helper: Helper | None = None, acting_user=None) -> Shift:
    """Going on (上岗) or off (下岗) duty: one tap, time kept. From 30 minutes before the start; off after on.
    Going on late closes the missed-start loop."""
    now = timezone.now()
    with transaction.atomic():
        shift = Shift.objects.select_for_update(of=("self",)).select_related("post").get(pk=shift.pk)
        if helper is not None:
            if shift.helper_id != helper.pk:
                raise ForcesError("shift", "这不是您的班次")
        else:
            _authorize(acting_user, shift.path, RECORD)
        if on:
            if shift.on_at:
                return shift  # a double tap changes nothing
            if now < shift.starts_at - dt.timedelta(minutes=30):
                raise ForcesError("shift", "上岗时间未到（班前 30 分钟起可打卡）")
            if now >= shift.ends_at:
                raise ForcesError.conflict("shift", "该班次已结束")
            shift.on_at = now
            for loop in _missed_loops(shift):
                late = int((now - shift.starts_at).total_seconds() // 60)
                loop = engine.transition(loop, S.REPORTED, actor=acting_user, note=f"已到岗（迟到 {late} 分钟）")
                engine.transition(loop, S.CLOSED, actor=acting_user, note=f"已到岗（迟到 {late} 分钟）")
        else:
            if shift.off_at:
                return shift
            if not shift.on_at:
                raise ForcesError("shift", "尚未上岗")
            shift.off_at = now
        shift.save(update_fields=["on_at", "off_at"])
        audit.record(actor=acting_user, action="forces.shift.on" if on else "forces.shift.off", target=shift,
                     unit=shift.post.unit if acting_user is None else None,
                     changes={"helper": shift.helper_id, "at": now.isoformat()})
    return shift


def _swap_line(shift: Shift) -> str:
    return (f"「{shift.post.name}」{timezone.localtime(shift.starts_at):%m-%d %H:%M}–"
            f"{timezone.localtime(shift.ends_at):%H:%M}")


def do_request_swap(shift: Shift, *, to_helper: Helper, helper: Helper | None = None, acting_user=None) -> ShiftSwap:
    """The holder asks ``to_helper`` (active, of the same community) to take their shift (换班), through their
    link (``helper=``) or staff on their behalf (``acting_user`` who may manage the post). The other person is
    told at once (text, or inbox with a login)."""
    with transaction.atomic():
        shift = Shift.objects.select_for_update(of=("self",)).select_related("post", "helper").get(pk=shift.pk)
        if helper is not None:
            if shift.helper_id != helper.pk:
                raise ForcesError("shift", "这不是您的班次")
        else:
            _authorize(acting_user, shift.path, MANAGE)
            if shift.helper_id is None:
                raise ForcesError("shift", "只有志愿者的班次可以换班")
            helper = shift.helper
        if to_helper.pk == helper.pk or to_helper.status != HelperStatus.ACTIVE or \
                to_helper.path[:16] != helper.path[:16]:
            raise ForcesError.conflict("to_helper", "请选择本社区另一位在岗的志愿者")
        if shift.on_at:
            raise ForcesError.conflict("shift", "已上岗的班次不能换班")
        if shift.ends_at <= timezone.now():
            raise ForcesError.conflict("shift", "该班次已结束")
        if ShiftSwap.objects.filter(shift=shift, state__in=(SwapState.REQUESTED, SwapState.ACCEPTED)).exists():
            raise ForcesError.conflict("shift", "该班次已有换班申请在办理中")
        swap = ShiftSwap.objects.create(shift=shift, path=shift.path, from_helper=helper, to_helper=to_helper)
        _text_helper(to_helper, key=f"forces.swap:{swap.pk}:asked",
                     body=f"{helper.name} 请您替班：{_swap_line(shift)}。请打开您的值守页面接受或拒绝。")
        audit.record(actor=acting_user, action="forces.swap.request", target=swap,
                     unit=shift.post.unit if acting_user is None else None,
                     changes={"shift": shift.pk, "from": helper.pk, "to": to_helper.pk})
    return swap


def do_answer_swap(swap: ShiftSwap, *, helper: Helper, accept: bool) -> ShiftSwap:
    """The other person accepts (the post's unit is told at once, to approve) or declines (the holder is told)."""
    from bihuan.notify.outbox import notify_units

    with transaction.atomic():
        swap = ShiftSwap.objects.select_for_update(of=("self",)).select_related("shift__post", "from_helper", "to_helper").get(
            pk=swap.pk)
        if swap.to_helper_id != helper.pk or swap.state != SwapState.REQUESTED:
            raise ForcesError("swap", "该换班请求不需要您处理")
        swap.state = SwapState.ACCEPTED if accept else SwapState.DECLINED
        swap.save(update_fields=["state"])
        line = _swap_line(swap.shift)
        if accept:
            notify_units([swap.shift.post.unit_id], key=f"forces.swap:{swap.pk}:accepted",
                         subject=f"换班待审批：{swap.from_helper.name} → {swap.to_helper.name}",
                         body=f"{swap.from_helper.name} 的班次 {line} 由 {swap.to_helper.name} 替班，对方已同意，请审批。",
                         event="forces.swap")
        else:
            _text_helper(swap.from_helper, key=f"forces.swap:{swap.pk}:declined",
                         body=f"{swap.to_helper.name} 未接受替班：{line}。请按原班次上岗或另找他人。")
        audit.record(actor=None, action="forces.swap.answer", target=swap, unit=swap.shift.post.unit,
                     changes={"state": swap.state})
    return swap


def do_approve_swap(swap: ShiftSwap, *, approve: bool, acting_user) -> ShiftSwap:
    """The post's unit approves an accepted swap: the shift passes to the other helper (if it is no conflict).
    Both people are told."""
    with transaction.atomic():
        swap = ShiftSwap.objects.select_for_update(of=("self",)).select_related("shift__post", "from_helper", "to_helper").get(
            pk=swap.pk)
        _authorize(acting_user, swap.path, MANAGE)
        if swap.state != SwapState.ACCEPTED:
            raise ForcesError.conflict("swap", f"该换班请求{swap.get_state_display()}")
        shift = swap.shift
        if approve:
            if shift.on_at or shift.helper_id != swap.from_helper_id:
                raise ForcesError.conflict("swap", "班次已变化，不能换班")
            why = person_conflicts(helper_id=swap.to_helper_id, staff_id=None, starts_at=shift.starts_at,
                                   ends_at=shift.ends_at, exclude_id=shift.pk)
            if why:
                raise ForcesError.conflict("swap", f"{swap.to_helper.name}：{why}")
            Shift.objects.filter(pk=shift.pk, on_at__isnull=True).update(helper=swap.to_helper, reminded_at=None)
        swap.state = SwapState.APPROVED if approve else SwapState.DECLINED
        swap.decided_by = acting_user
        swap.save(update_fields=["state", "decided_by"])
        line = _swap_line(shift)
        verdict = "已批准" if approve else "未批准"
        for person in (swap.from_helper, swap.to_helper):
            _text_helper(person, key=f"forces.swap:{swap.pk}:decided:{person.pk}",
                         body=f"换班{verdict}：{line}，{swap.from_helper.name} → {swap.to_helper.name}。"
                              + ("请由替班人上岗。" if approve else "请按原班次上岗。"))
        audit.record(actor=acting_user, action="forces.swap.decide", target=swap, changes={"state": swap.state})
    return swap


# --- tasks (on the loop engine) ------------------------------------------------------------------------------

def do_create_task(unit: Unit, *, kind: str, title: str, due_at: dt.datetime, helper: Helper | None = None,
                   team: Team | None = None, detail: str = "", households: list[int] = (), places: list[int] = (),
                   acting_user) -> Task:
    """A task for a helper or a team, owned by ``unit`` (which closes it out); its loop opens at once and the
    unit's people are told; the helper (or the team's leader) gets it by text message too."""
    kind = _choice(kind, TaskKind, "kind")
    title = (title or "").strip()
    if not title:
        raise ForcesError("title", "请填写任务内容")
    if helper is None and team is None:
        raise ForcesError("helper", "请指派给一名志愿者或一支服务队")
    if due_at <= timezone.now():
        raise ForcesError("due_at", "截止时间应晚于现在")
    with transaction.atomic():
        _authorize(acting_user, unit.path, MANAGE)
        from bihuan.register.models import Household, subtree_q

        households = sorted(set(households))
        if households and Household.objects.filter(subtree_q(unit.path), pk__in=households).count() != len(households):
            raise ForcesError.conflict("households", "有住户不在本单位范围内")
        places = sorted(set(places))
        if places and Place.objects.filter(subtree_q(unit.path), pk__in=places).count() != len(places):
            raise ForcesError.conflict("places", "有点位不在本单位范围内")
        task = Task.objects.create(unit=unit, path=unit.path, kind=kind, title=title[:200], detail=detail, helper=helper,
                                   team=team, households=households, places=places, due_at=due_at,
                                   created_by=acting_user)
        who = helper.name if helper else team.name
        engine.open_one(kind=TASK, subject_id=task.pk, title=f"{task.get_kind_display()}：{title[:150]}（{who}）",
                        owner_unit=unit, originator_unit=unit, originator_user=acting_user, due_at=due_at,
                        owner_user=helper.user if helper and helper.user_id else None)
        _text_helper(helper or team.leader, key=f"forces.task:{task.pk}",
                     body=f"新任务：{title[:60]}，请于 {timezone.localtime(due_at):%m-%d %H:%M} 前完成。")
        audit.record(actor=acting_user, action="forces.task.create", target=task, changes={
            "kind": kind, "helper": getattr(helper, "pk", None), "team": getattr(team, "pk", None),
            "due_at": due_at.isoformat(), "households": len(households), "places": len(places)})
    return task


def _text_helper(helper: Helper | None, *, key: str, body: str) -> None:
    """A text message to a helper's phone (their inbox too when they have a login), through the outbox."""
    from bihuan.notify.outbox import enqueue, notify_user

    if helper is None:
        return
    if helper.user_id:
        notify_user(helper.user, key=key, subject=body[:60], body=body)
    elif helper.phone_sealed:
        from bihuan.notify import conf

        if conf.load().sms is not None:
            enqueue("sms", key=f"{key}:sms", subject=body[:60], body=body, address=helper.reveal_phone())


def task_loop(task: Task) -> Loop | None:
    return Loop.objects.filter(kind=TASK, subject_id=task.pk).order_by("-id").first()


def _task_actor_check(task: Task, helper: Helper | None, acting_user, perm: str) -> None:
    if helper is not None:
        if task.helper_id != helper.pk and not (task.team_id and TeamMember.objects.filter(
                team_id=task.team_id, helper=helper).exists()):
            raise ForcesError("task", "这不是您的任务")
    else:
        _authorize(acting_user, task.path, perm)


def do_acknowledge_task(task: Task, *, helper: Helper | None = None, acting_user=None) -> Task:
    with transaction.atomic():
        _task_actor_check(task, helper, acting_user, RECORD)
        loop = task_loop(task)
        if loop is not None and loop.state == S.ISSUED:
            engine.transition(loop, S.ACKNOWLEDGED, actor=acting_user, note=helper.name if helper else "")
    return task


def do_report_task(task: Task, *, report: str, photo=None, helper: Helper | None = None, acting_user=None) -> Task:
    """The completion report (with a note and an optional photo); the owning unit then closes it out."""
    if not (report or "").strip():
        raise ForcesError("report", "请填写完成情况")
    ext = photos.checked_extension(photo) if photo is not None else ""
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)
        _task_actor_check(task, helper, acting_user, RECORD)
        loop = task_loop(task)
        if loop is None or not loop.is_open:
            raise ForcesError("task", "该任务已结束")
        task.report, task.reported_at = report.strip(), timezone.now()
        if photo is not None:
            task.photo.save(f"{task.pk}{ext}", photo, save=False)
        task.save()
        engine.transition(loop, S.REPORTED, actor=acting_user, note=report.strip()[:500],
                          data={"by": helper.name if helper else getattr(acting_user, "username", "")})
        audit.record(actor=acting_user, action="forces.task.report", target=task,
                     changes={"helper": getattr(helper, "pk", None), "photo": bool(photo)})
    return task


def do_close_task(task: Task, *, acting_user, note: str = "") -> Task:
    with transaction.atomic():
        _authorize(acting_user, task.path, MANAGE)
        loop = task_loop(task)
        if loop is None or loop.state != S.REPORTED:
            raise ForcesError.conflict("task", "任务尚未报告完成")
        engine.transition(loop, S.CLOSED, actor=acting_user, note=note or "销号")
        audit.record(actor=acting_user, action="forces.task.close", target=task)
    return task


# --- disinfection (消杀) -------------------------------------------------------------------------------------

def do_create_place(unit: Unit, *, name: str, kind: str, every_hours: int = 24, acting_user) -> Place:
    name = (name or "").strip()
    if not name:
        raise ForcesError("name", "请填写点位名称")
    kind = _choice(kind, PlaceKind, "kind")
    if not 1 <= every_hours <= 24 * 14:
        raise ForcesError("every_hours", "消杀频次应为每 1 小时到每 14 天")
    with transaction.atomic():
        _authorize(acting_user, unit.path, MANAGE)
        place = Place.objects.create(unit=unit, path=unit.path, name=name[:100], kind=kind, every_hours=every_hours)
        audit.record(actor=acting_user, action="forces.place.create", target=place,
                     changes={"unit": unit.pk, "every_hours": every_hours})
    return place


def do_update_place(place: Place, *, name: str, kind: str, every_hours: int, active: bool = True,
                    acting_user) -> Place:
    """Rename a place, change its kind or required frequency, or retire it (its log is kept)."""
    name = (name or "").strip()
    if not name:
        raise ForcesError("name", "请填写点位名称")
    kind = _choice(kind, PlaceKind, "kind")
    if not 1 <= every_hours <= 24 * 14:
        raise ForcesError("every_hours", "消杀频次应为每 1 小时到每 14 天")
    with transaction.atomic():
        place = Place.objects.select_for_update().get(pk=place.pk)
        _authorize(acting_user, place.path, MANAGE)
        fields_ = ("name", "kind", "every_hours", "active")
        before = {f: getattr(place, f) for f in fields_}
        place.name, place.kind, place.every_hours, place.active = name[:100], kind, every_hours, active
        place.save(update_fields=list(fields_))
        audit.record(actor=acting_user, action="forces.place.update", target=place,
                     changes={f: [before[f], getattr(place, f)] for f in fields_ if before[f] != getattr(place, f)})
    return place


def do_log_disinfection(place: Place, *, agent: str, concentration: str, area_m2: int = 0, photo=None,
                        note: str = "", at: dt.datetime | None = None, helper: Helper | None = None,
                        done_by: str = "", acting_user=None) -> DisinfectionLog:
    """One disinfection job, by a helper through their link or recorded by staff; the place is then done until
    its next due time."""
    agent, concentration = (agent or "").strip(), (concentration or "").strip()
    if not agent:
        raise ForcesError("agent", "请填写消毒剂名称")
    if not concentration:
        raise ForcesError("concentration", "请填写浓度（如 500mg/L）")
    if area_m2 < 0 or area_m2 > 10_000_000:
        raise ForcesError("area_m2", "面积不正确")
    now = timezone.now()
    at = at or now
    if at > now + dt.timedelta(minutes=5):
        raise ForcesError("at", "时间不能晚于现在")
    ext = photos.checked_extension(photo) if photo is not None else ""
    with transaction.atomic():
        if helper is not None:
            if helper.status != HelperStatus.ACTIVE:
                raise ForcesError("helper", "您当前不在岗")
            if not place.path.startswith(helper.path[:16]):  # their community's places
                raise ForcesError("place", "该点位不在您服务的社区")
            done_by = helper.name
        else:
            _authorize(acting_user, place.path, RECORD)
            done_by = (done_by or "").strip() or getattr(getattr(acting_user, "staff", None), "name", "")
        log = DisinfectionLog(place=place, path=place.path, helper=helper, done_by=done_by[:50], at=at,
                              recorded_by=acting_user if getattr(acting_user, "is_authenticated", False) else None,
                              agent=agent[:60], concentration=concentration[:30], area_m2=area_m2, note=note[:200])
        if photo is not None:
            log.photo.save(f"{place.pk}-{int(at.timestamp())}{ext}", photo, save=False)
        log.save()
        Place.objects.filter(pk=place.pk).filter(Q(last_done_at__isnull=True) | Q(last_done_at__lt=at)).update(
            last_done_at=at)
        audit.record(actor=acting_user, action="forces.disinfection.log", target=log, unit=place.unit,
                     changes={"place": place.pk, "helper": getattr(helper, "pk", None), "photo": bool(photo)})
    return log


# --- publicity (宣传) ----------------------------------------------------------------------------------------

def do_publish_notice(unit: Unit, *, title: str, body: str, acting_user) -> Notice:
    title, body = (title or "").strip(), (body or "").strip()
    if not title or not body:
        raise ForcesError("title", "请填写标题和正文")
    with transaction.atomic():
        _authorize(acting_user, unit.path, MANAGE)
        notice = Notice.objects.create(unit=unit, path=unit.path, title=title[:120], body=body[:20000],
                                       published_at=timezone.now(), created_by=acting_user)
        audit.record(actor=acting_user, action="forces.notice.publish", target=notice, changes={"unit": unit.pk})
    return notice


def count_notice_view(notice: Notice, unit_id: int, building: str) -> None:
    """One reading from a building's QR code: a counter goes up; nothing about the reader is kept."""
    with transaction.atomic():
        row, _ = NoticeView.objects.get_or_create(notice=notice, unit_id=unit_id, building=building[:20])
        NoticeView.objects.filter(pk=row.pk).update(count=F("count") + 1)


def do_upload_group_code(unit: Unit, image, *, acting_user) -> GroupCode:
    """The QR image of a compound's or grid's WeCom / WeChat group."""
    ext = photos.checked_extension(image, "image")
    with transaction.atomic():
        _authorize(acting_user, unit.path, MANAGE)
        code = GroupCode.objects.filter(unit=unit).first() or GroupCode(unit=unit, path=unit.path)
        code.image.save(f"{unit.pk}{ext}", image, save=False)
        code.save()
        audit.record(actor=acting_user, action="forces.group_code.upload", target=code, changes={"unit": unit.pk})
    return code


def scope_unit(acting_user) -> Unit:
    return scope_of(acting_user).unit
