"""What a page of "today" lists: a grid worker's tasks and households, a unit's own open loops, each role's first
steps, and the wall display's charts. Reads only, except ``mark_reached`` which calls the directive action."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, OuterRef, Q, Subquery
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from bihuan.control.models import ALERT_KINDS, OPEN_CASE_STATES, SERVICE, CheckIn, ControlCase
from bihuan.core.roles import Perm, Role
from bihuan.directives.actions import do_mark_households
from bihuan.directives.models import RECEIPT, Directive, DirectiveStatus, Reach, ReachStatus
from bihuan.directives.selectors import directive_for
from bihuan.loops.models import OPEN_STATES, Loop, overdue_q
from bihuan.pushes.models import TRANSFER, VERIFICATION, PushedPerson, Verification
from bihuan.register.access import scoped
from bihuan.register.models import Household, Unit, subtree_q
from bihuan.register.ordering import natural
from bihuan.register.search import search_households

HOUSEHOLD_LIMIT = 400
OWN_LIMIT = 30




# --- the grid worker ----------------------------------------------------------------------------------------

@dataclass
class Group:
    label: str  # the address prefix, once per group
    rows: list = field(default_factory=list)  # HouseholdRow

    @property
    def pending(self) -> int:
        return sum(1 for r in self.rows if r.status == ReachStatus.PENDING)


@dataclass(slots=True)
class HouseholdRow:
    """One household on the grid worker's page, its values ready to print (a grid has up to 150 of them: numbers
    made text once here, not localised one by one by the template)."""
    id: str
    url: str
    room: str
    head: str
    members: str
    status: str | None


def _group_label(h: Household, parent_name: str) -> str:
    if h.building:
        label = _("%(building)s号楼") % {"building": h.building}
        if h.entrance:
            label += _("%(entrance)s单元") % {"entrance": h.entrance}
        return f"{parent_name} {label}"
    return parent_name


def _room(h: Household) -> str:
    if h.room:
        return _("%(room)s室") % {"room": h.room}
    return _("%(number)s号") % {"number": h.house_number} if h.house_number else h.address


def household_groups(households: list[Household], statuses: dict[int, str], names: dict[int, str]) -> list[Group]:
    groups: dict[str, Group] = {}
    link = reverse("register:household", args=[0])[: -len("0/")]  # /households/<id>/
    for h in households:
        label = _group_label(h, names.get(h.unit_id, ""))
        groups.setdefault(label, Group(label)).rows.append(HouseholdRow(
            id=str(h.pk), url=f"{link}{h.pk}/", room=_room(h), head=h.head_name or "",
            members=str(h.member_count), status=statuses.get(h.pk)))
    out = sorted(groups.values(), key=lambda g: natural(g.label))
    for g in out:
        g.rows.sort(key=lambda r: natural(r.room))
    return out


def grid_context(user, scope, q: str = "") -> dict:
    unit = scope.unit
    now = timezone.now()
    today = timezone.localdate()
    sub = subtree_q(unit.path)
    # 1. directives still open with households of mine to reach: counted per open directive through the reach
    # index (directive, path, status) — a range of my households in each, never a scan of every directive's rows
    pending = (scoped(user, Reach.objects.filter(sub, status=ReachStatus.PENDING, directive=OuterRef("pk")))
               .order_by().values("directive").annotate(n=Count("id")).values("n"))
    directives = list(Directive.objects.filter(status=DirectiveStatus.ISSUED)
                      .annotate(pending_here=Subquery(pending)).filter(pending_here__gt=0)
                      .order_by("-urgency", "issued_at"))
    current = directives[0] if directives else None
    # 2. pushed people to verify (open verification loops of my part)
    to_verify = list(
        scoped(user, Loop.objects.filter(sub, kind=VERIFICATION, state__in=OPEN_STATES))
        .annotate(late=Count("id", filter=overdue_q(now))).order_by("-late", "due_at")[:20])
    people = PushedPerson.objects.in_bulk([lp.subject_id for lp in to_verify])
    verify_rows = [(lp, people.get(lp.subject_id)) for lp in to_verify]
    # 3. people under control: check-ins due today
    cases = list(scoped(user, ControlCase.objects.filter(sub, state__in=OPEN_CASE_STATES, start_date__lte=today,
                                                         end_date__gte=today)).select_related("type").order_by("id"))
    done = defaultdict(set)
    for case_id, slot in CheckIn.objects.filter(case__in=cases, date=today).values_list("case_id", "slot"):
        done[case_id].add(slot)
    checkins_due = [c for c in cases if len(done[c.pk]) < c.type.checkins_per_day]
    # 4. service requests and alerts of my part
    services = list(scoped(user, Loop.objects.filter(sub, kind__in=[SERVICE, *ALERT_KINDS], state__in=OPEN_STATES))
                    .order_by("due_at")[:20])
    # 5. households, grouped by building and entrance, with the current directive's status
    qs = scoped(user, Household.objects.filter(sub))
    if q:
        qs = search_households(qs, q)
    households = list(qs.only("id", "unit_id", "building", "entrance", "room", "house_number", "address",
                              "head_name", "member_count")[:HOUSEHOLD_LIMIT])
    statuses = {}
    if current is not None:
        statuses = dict(Reach.objects.filter(directive=current, household_id__in=[h.pk for h in households])
                        .values_list("household_id", "status"))
    names = dict(Unit.objects.filter(pk__in={h.unit_id for h in households}).values_list("id", "parent__name"))
    grid_names = dict(Unit.objects.filter(pk__in={h.unit_id for h in households}).values_list("id", "name"))
    names = {k: v if scope.unit.level >= 6 else grid_names.get(k, v) for k, v in names.items()}
    return {
        "unit": unit, "q": q, "directives": directives, "current": current, "verify_rows": verify_rows,
        "checkins_due": checkins_due, "services": services,
        "groups": household_groups(households, statuses, names), "households_total": len(households),
        "can_mark": scope.can(Perm.MARK_REACH), "now": now,
        "tasks_total": sum(d.pending_here for d in directives) + len(verify_rows) + len(checkins_due) + len(services),
    }


def mark_reached(user, directive_id: int, household_id: int, method: str) -> int:
    directive = directive_for(user, directive_id)
    if not scoped(user, Reach.objects.filter(directive=directive, household_id=household_id)).exists():
        raise Http404("no such household in your part of the district")
    return do_mark_households(directive=directive, household_ids=[household_id], status=ReachStatus.REACHED,
                              method=method, acting_user=user)


# --- a unit's own loops, first steps --------------------------------------------------------------------

KIND_LINKS = {
    RECEIPT: lambda lp: reverse("directives:detail", args=[lp.subject_id]),
    VERIFICATION: lambda lp: reverse("pushes:person", args=[lp.subject_id]),
    TRANSFER: lambda lp: reverse("pushes:transfers"),
}


def own_loops(unit: Unit) -> list:
    """The open loops the unit itself must sign for or report on, most urgent first, each with its link."""
    now = timezone.now()
    loops = list(Loop.objects.filter(owner_unit=unit, state__in=OPEN_STATES)
                 .annotate(late=Count("id", filter=overdue_q(now))).order_by("-late", "due_at", "id")[:OWN_LIMIT])
    for lp in loops:
        link = KIND_LINKS.get(lp.kind)
        lp.link = link(lp) if link else reverse("control:today") if lp.kind.startswith("control.") else ""
    return loops


FIRST_STEPS = {
    Role.DISTRICT_COMMANDER: [_lazy("看红色数字：哪里落后，点开就是名单"), _lazy("表格按落后程度排序，先打电话给排在最前的负责人"),
                              _lazy("指挥中心大屏：点“大屏”全屏显示")],
    Role.COMMAND_OFFICE: [_lazy("下达指令：指令 → 下达新指令"), _lazy("上传今天的大数据推送名单：推送核查 → 上传"),
                          _lazy("超时单位点开后可以一键催办")],
    Role.TOWNSHIP_STAFF: [_lazy("先签收本单位的指令并下达"), _lazy("看哪个村（社区）落后，打电话督促"),
                          _lazy("日报不用填：推送核查 → 日报")],
    Role.COMMUNITY_STAFF: [_lazy("先签收指令，再看网格的落实进度"), _lazy("核查今天推送的人员：每人一张表，一次保存"),
                           _lazy("管控人员的打卡、核酸和服务请求在“管控”里")],
}


def first_steps(scope) -> list[str]:
    return FIRST_STEPS.get(scope.role, FIRST_STEPS[Role.COMMUNITY_STAFF])


# --- the wall display ---------------------------------------------------------------------------------------

def wall_charts(unit: Unit, board) -> dict:
    """Coverage by row unit for the directive under way, and the last 24 hours of reached households and verified
    people per hour."""
    now = timezone.now()
    since = now - dt.timedelta(hours=24)
    directive = (Directive.objects.filter(status=DirectiveStatus.ISSUED, fanout_total__gt=0)
                 .order_by("issued_at").first())  # the longest running: the one whose coverage matters
    labels, reached, total = [], [], []
    if directive is not None and board.rows:
        n = len(board.rows[0].unit.path)
        counts = defaultdict(lambda: [0, 0])
        rows = (Reach.objects.filter(subtree_q(unit.path), directive=directive)
                .values("path").annotate(t=Count("id"), r=Count("id", filter=Q(status=ReachStatus.REACHED))))
        for row in rows:
            c = counts[row["path"][:n]]
            c[0] += row["t"]
            c[1] += row["r"]
        for r in sorted(board.rows, key=lambda r: r.unit.path):
            t, done = counts.get(r.unit.path, (0, 0))
            labels.append(r.unit.name)
            total.append(t)
            reached.append(round(done * 100 / t) if t else 0)
    hours = [(since + dt.timedelta(hours=i)) for i in range(25)]
    hour_labels = [timezone.localtime(h).strftime("%H:00") for h in hours[1:]]

    def per_hour(times) -> list[int]:
        out = [0] * 24
        for t in times:
            i = int((t - since).total_seconds() // 3600)
            if 0 <= i < 24:
                out[i] += 1
        return out

    marked = Reach.objects.filter(subtree_q(unit.path), status=ReachStatus.REACHED, marked_at__gte=since)
    verified = Verification.objects.filter(subtree_q(unit.path, "person__path"), verified_at__gte=since)
    return {
        "directive": directive.title if directive else "",
        "coverage": {"labels": labels, "values": reached},
        "curve": {"labels": hour_labels, "reached": per_hour(marked.values_list("marked_at", flat=True)),
                  "verified": per_hour(verified.values_list("verified_at", flat=True))},
        "names": {"coverage": _("通知到户率（%）"), "reached": _("通知到户"), "verified": _("完成核查")},
    }
