"""The situation board's inspection figures: findings of unannounced visits still waiting for rectification, by
severity, and rectifications past their deadline — each linking to the findings list behind it.

Counted on the loop table alone (a finding's severity is its rectification loop's kind; its path is the
responsible unit's), so a planned visit, which has no finding and no loop yet, cannot show on any board: the
board of the target unit and of every unit above it is the same before and after a plan is drawn.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from bihuan.core.today import Area, Figure, provider, table
from bihuan.loops.models import OPEN_STATES, Loop, overdue_sql

from .models import RECTIFY_KINDS, Severity

LABELS = {
    Severity.CRITICAL: (gettext_lazy("督查发现严重问题未整改"), gettext_lazy("4 小时内整改并拍照反馈")),
    Severity.MAJOR: (gettext_lazy("督查发现较重问题未整改"), gettext_lazy("24 小时内整改并拍照反馈")),
    Severity.MINOR: (gettext_lazy("督查发现一般问题未整改"), gettext_lazy("72 小时内整改并拍照反馈")),
}
ORDER = {Severity.CRITICAL: 40, Severity.MAJOR: 41, Severity.MINOR: 42}


def findings_url(area: Area, **query) -> str:
    params = "&".join(f"{k}={v}" for k, v in {"unit": area.unit_id, **query}.items())
    return f"{reverse('inspections:findings')}?{params}"


@provider
def inspection_figures(area: Area) -> list[Figure]:
    loops = f"{table(Loop)} l"
    states = ", ".join(["%s"] * len(OPEN_STATES))
    out = []
    for severity in (Severity.CRITICAL, Severity.MAJOR, Severity.MINOR):
        n, rows = area.count(loops, "l.path", f"l.kind = %s AND l.state IN ({states})",
                             [RECTIFY_KINDS[severity], *OPEN_STATES])
        label, hint = LABELS[severity]
        url = findings_url(area, state="open", severity=severity.value)
        out.append(Figure(f"inspections.open_{severity.value}", str(label), n, url, rows, hint=str(hint), bad=False,
                          order=ORDER[severity]))
    kinds = ", ".join(["%s"] * len(RECTIFY_KINDS))
    late, lrows = area.count(loops, "l.path", f"l.kind IN ({kinds}) AND {overdue_sql('l.')} = 1",
                             [*RECTIFY_KINDS.values(), area.now, area.now])
    out.append(Figure("inspections.rectify_overdue", _("督查整改超期未反馈"), late, findings_url(area, state="overdue"),
                      lrows, hint=_("督促责任单位整改，超期将通报"), order=39))
    return out
