"""The situation board's push figures: pushed people past the verification deadline, transfers waiting."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from bihuan.core.today import Area, Figure, provider, table
from bihuan.loops.models import OPEN_STATES, Loop, overdue_sql

from .models import TRANSFER, VERIFICATION


@provider
def push_figures(area: Area) -> list[Figure]:
    loops = f"{table(Loop)} l"
    overdue, rows = area.count(loops, "l.path", f"l.kind = %s AND {overdue_sql('l.')} = 1",
                               [VERIFICATION, area.now, area.now])
    states = ", ".join(["%s"] * len(OPEN_STATES))
    waiting, wrows = area.count(loops, "l.path", f"l.kind = %s AND l.state IN ({states})",
                                [TRANSFER, *OPEN_STATES])
    return [
        Figure("pushes.overdue", _("超过核查时限的推送人员"), overdue, reverse("pushes:list") + f"?status=overdue&unit={area.unit_id}",
               rows, hint=_("逐一电话核查，无法触达的写明原因"), order=20),
        Figure("pushes.transfers", _("等待接收的转办"), waiting, reverse("pushes:transfers"), wrows,
               hint=_("接收或写明理由退回"), order=25),
    ]
