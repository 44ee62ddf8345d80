"""The situation board's checkpoint figures: abnormal arrivals whose alert is not handled yet, self-reported people
past their verification deadline, and households of a screening campaign not reached by its deadline."""

from __future__ import annotations

from django.db import connection
from django.urls import reverse
from django.utils.translation import gettext as _

from bihuan.core.today import Area, Figure, provider, table
from bihuan.directives.models import Directive, DirectiveStatus, Reach, ReachStatus
from bihuan.loops.models import OPEN_STATES, Loop, overdue_sql
from bihuan.pushes.models import VERIFICATION

from .models import ALERT, Campaign, SelfReport, SelfReportStatus


def _reach_due_sql() -> str:
    """SQL: the campaign directive ``d``'s time to reach every household has passed (parameter: now)."""
    if connection.vendor == "postgresql":
        return "d.issued_at + d.reach_hours * INTERVAL '1 hour' < %s"
    return "datetime(d.issued_at, '+' || d.reach_hours || ' hours') < datetime(%s)"


@provider
def checkpoint_figures(area: Area) -> list[Figure]:
    loops = f"{table(Loop)} l"
    states = ", ".join(["%s"] * len(OPEN_STATES))
    abnormal, arows = area.count(loops, "l.path", f"l.kind = %s AND l.state IN ({states})",
                                 [ALERT, *OPEN_STATES])
    reports, rrows = area.count(
        f"{table(SelfReport)} s JOIN {loops} ON l.subject_id = s.pushed_person_id", "l.path",
        f"l.kind = %s AND s.status <> %s AND {overdue_sql('l.')} = 1",
        [VERIFICATION, SelfReportStatus.CANCELLED, area.now, area.now])
    unreached, urows = area.count(
        f"{table(Reach)} r JOIN {table(Directive)} d ON d.id = r.directive_id JOIN {table(Campaign)} c "
        "ON c.directive_id = d.id", "r.path", f"d.status = %s AND r.status <> %s AND {_reach_due_sql()}",
        [DirectiveStatus.ISSUED, ReachStatus.REACHED, area.now])
    return [
        Figure("checkpoints.abnormal", _("卡口异常人员未处置"), abnormal, reverse("checkpoints:list"), arows,
               hint=_("红黄码或发热人员：立即处置并在待办中反馈"), order=15),
        Figure("checkpoints.self_reports_overdue", _("超过核查时限的报备人员"), reports,
               reverse("pushes:list") + f"?status=overdue&unit={area.unit_id}", rrows,
               hint=_("报备人员也要电话核实，逐一反馈"), order=22),
        Figure("checkpoints.screening_unreached", _("排查超时未入户的住户"), unreached,
               reverse("checkpoints:campaigns"), urows, hint=_("网格员上门，或把本户链接发给住户"), order=35),
    ]
