"""The situation board's directive figures: units past their deadline to sign for or report on a directive."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from bihuan.core.today import Area, Figure, provider, table
from bihuan.loops.models import Loop, overdue_sql

from .models import RECEIPT


@provider
def directive_figures(area: Area) -> list[Figure]:
    total, rows = area.count(f"{table(Loop)} l", "l.path", f"l.kind = %s AND {overdue_sql('l.')} = 1",
                             [RECEIPT, area.now, area.now])
    return [Figure("directives.overdue_units", _("指令超时未签收或未反馈的单位"), total,
                   reverse("directives:list"), rows, hint=_("点开指令，催办名单上的单位"), order=10)]
