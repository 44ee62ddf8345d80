"""Control's part of a pushed person's page (``pushes.selectors.register_person_panel``): the case a "new
control" outcome led to, or whether the user may open it from there."""

from __future__ import annotations

from bihuan.core.roles import Perm
from bihuan.pushes.models import Measure, Outcome
from bihuan.pushes.selectors import register_person_panel

from .models import OPEN_CASE_STATES, ControlCase


@register_person_panel
def control_case_panel(scope, person, ver) -> dict:
    wants = ver is not None and ver.outcome == Outcome.NEW_CONTROL and ver.measure not in ("", Measure.NONE)
    case = (ControlCase.objects.filter(pushed_person=person, state__in=OPEN_CASE_STATES).only("id", "type_id")
            .first() if wants else None)
    return {"control_case": case, "can_open_control": wants and case is None and scope.can(Perm.MANAGE_CONTROL)}
