"""Checklist items that the data already answers, read from the database as of the visit's start, each with its
evidence (the figures) and a link to the records. The inspector confirms or overrides (with a reason).

A rule is ``fn(visit, at) -> (result, evidence, url)`` with result "pass" / "fail", or None when the data cannot
say (the item is then answered by eye). Control data is read from its models and the loop table only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from bihuan.core.roles import RESPONSIBLE_ROLES
from bihuan.loops.models import Loop, overdue_q
from bihuan.register.models import MAX_LEVEL, Household, Resident, ResidentStatus, Staff, Unit, subtree_q

from .models import Visit

Result = tuple[str, str, str] | None


def _url(name: str, *args, query: str = "") -> str:
    try:
        return reverse(name, args=args) + (f"?{query}" if query else "")
    except NoReverseMatch:
        return ""


def _verdict(ok: bool) -> str:
    return "pass" if ok else "fail"


def _measure(key: str) -> Callable[[Visit, dt.datetime], Result]:
    def rule(visit: Visit, at: dt.datetime) -> Result:
        from bihuan.control.models import MeasureItem

        if visit.case_id is None:
            return None
        item = MeasureItem.objects.filter(case_id=visit.case_id, key=key).values("label", "done_at").first()
        if item is None:
            return None
        done = item["done_at"] is not None and item["done_at"] <= at
        evidence = f"{item['label']}：{'已登记完成' if done else '未登记'}"
        return _verdict(done), evidence, _url("control:case", visit.case_id)

    return rule


def team_complete(visit: Visit, at: dt.datetime) -> Result:
    from bihuan.control.models import TeamMember, TeamSlot

    if visit.case_id is None:
        return None
    n = TeamMember.objects.filter(case_id=visit.case_id).count()
    return _verdict(n >= len(TeamSlot)), f"五包一登记 {n}/{len(TeamSlot)} 人", _url("control:case", visit.case_id)


def checkins_recorded(visit: Visit, at: dt.datetime) -> Result:
    """No check-in of the last 24 hours missing (as the worker records missed slots), and at least one made."""
    from bihuan.control.models import CheckIn, MissedCheckIn

    if visit.case_id is None:
        return None
    since = at - dt.timedelta(hours=24)
    made = CheckIn.objects.filter(case_id=visit.case_id, at__gt=since, at__lte=at).count()
    missed = MissedCheckIn.objects.filter(case_id=visit.case_id, due_at__gt=since, due_at__lte=at).unresolved_at(
        at).count()
    return _verdict(made > 0 and missed == 0), f"24 小时内打卡 {made} 次，漏报 {missed} 次", \
        _url("control:case", visit.case_id)


def pushes_verified(visit: Visit, at: dt.datetime) -> Result:
    """The verification loops of the unit's subtree opened in the 24 hours before: none overdue at the visit."""
    from bihuan.pushes.models import VERIFICATION

    unit = visit.responsible_unit
    loops = Loop.objects.filter(subtree_q(unit.path), kind=VERIFICATION, created_at__gt=at - dt.timedelta(hours=24),
                                created_at__lte=at)
    total, late = loops.count(), loops.filter(overdue_q(at)).count()
    return _verdict(late == 0), f"24 小时内推送 {total} 人，超时未核查 {late} 人", _url("pushes:list", query=f"unit={unit.pk}")


def directives_signed(visit: Visit, at: dt.datetime) -> Result:
    from bihuan.directives.models import RECEIPT

    unit = visit.responsible_unit
    loops = Loop.objects.filter(subtree_q(unit.path), kind=RECEIPT, created_at__gt=at - dt.timedelta(days=7),
                                created_at__lte=at)
    total, late = loops.count(), loops.filter(overdue_q(at)).count()
    return _verdict(late == 0), f"一周内指令签收 {total} 件，超时 {late} 件", _url("directives:list")


def no_blind_spots(visit: Visit, at: dt.datetime) -> Result:
    unit = visit.responsible_unit
    sub = subtree_q(unit.path)
    without_grid = Household.objects.filter(sub).exclude(unit__level=MAX_LEVEL).count()
    responsible = Staff.objects.filter(deactivated_at__isnull=True, role__in=list(RESPONSIBLE_ROLES)).values("unit_id")
    bare_grids = Unit.objects.filter(sub, level=MAX_LEVEL).exclude(id__in=responsible).count()
    return _verdict(without_grid == 0 and bare_grids == 0), \
        f"未入网格住户 {without_grid} 户，无责任人网格 {bare_grids} 个", _url("register:blind_spots", unit.pk)


def elderly_visited(visit: Visit, at: dt.datetime) -> Result:
    from bihuan.control.models import CareVisit

    unit = visit.responsible_unit
    elderly = Resident.objects.filter(subtree_q(unit.path), elderly_alone=True, status=ResidentStatus.PRESENT)
    total = elderly.count()
    if not total:
        return "pass", "辖区无独居老人", ""
    week_ago = (at - dt.timedelta(days=7)).date()
    seen = CareVisit.objects.filter(subtree_q(unit.path), resident__in=elderly, date__gt=week_ago,
                                    date__lte=at.date()).values("resident_id").distinct().count()
    return _verdict(seen >= total), f"独居老人 {total} 人，一周内走访 {seen} 人", \
        _url("register:residents", query=f"unit={unit.pk}&flag=elderly_alone")


def post_staffed(visit: Visit, at: dt.datetime) -> Result:
    """People on the duty roster of the visited post at the moment of the visit, against the people it requires
    (the roster is the forces app's; a post outside its staffed hours needs nobody)."""
    from bihuan.forces.models import Post, Shift

    if visit.post_id is None:
        return None
    post = Post.objects.filter(pk=visit.post_id).values("required", "start_hour", "end_hour").first()
    if post is None:
        return None
    hour = timezone.localtime(at).hour
    start, end = post["start_hour"], post["end_hour"]
    staffed_now = start <= hour < end if end > start else (hour >= start or hour < end)
    on = Shift.objects.filter(post_id=visit.post_id, starts_at__lte=at, ends_at__gt=at).count()
    url = _url("forces:roster", visit.post_id)
    if not staffed_now:
        return "pass", f"当前不在值守时段（{start}–{end} 时），排班 {on} 人", url
    return _verdict(on >= post["required"]), f"排班在岗 {on} 人，应在岗 {post['required']} 人", url


RULES: dict[str, Callable[[Visit, dt.datetime], Result]] = {
    "measure:card_posted": _measure("card_posted"),
    "measure:agreement_signed": _measure("agreement_signed"),
    "measure:sensor_installed": _measure("sensor_installed"),
    "team_complete": team_complete,
    "checkins_recorded": checkins_recorded,
    "pushes_verified": pushes_verified,
    "directives_signed": directives_signed,
    "no_blind_spots": no_blind_spots,
    "elderly_visited": elderly_visited,
    "post_staffed": post_staffed,
}


def answer(rule: str, visit: Visit, at: dt.datetime) -> Result:
    fn = RULES.get(rule)
    return fn(visit, at) if fn else None
