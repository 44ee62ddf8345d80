"""Control-and-care pages, by family: ``cases`` (a member's cases, the list, opening a case, the case page and
what is done on it), ``care`` (check-ins, test results, service requests, care visits, alerts — HTMX rows),
``today`` (a community's day and the dashboard with its export), ``person`` (the person's own page through their
signed link), ``types`` (the control types and their checklists, versioned, for the command office).

Views parse, authorize through ``bihuan.register.access`` (directly, or through ``actions.access_case`` /
``checkins.care_access``, which use it), read through ``selectors`` and call the action functions; nothing here
writes. An action's refusal is a ``core.errors.Refused``: its ``message`` is shown, its ``field`` placed.
"""

from .care import (
    assign_service,
    care_visit,
    confirm_service,
    record_checkin,
    request_service,
    resolve_alert,
    service_done,
    test_result,
)
from .cases import (
    case_detail,
    case_list,
    change_period,
    mark_measure,
    mine,
    move_up,
    new_case,
    notice,
    notice_pdf,
    open_from_verification,
    release_case,
    set_team,
)
from .person import person
from .today import dashboard_page, export, today
from .types import type_edit, type_list, type_retire

__all__ = [
    "assign_service", "care_visit", "case_detail", "case_list", "change_period", "confirm_service",
    "dashboard_page", "export", "mark_measure", "mine", "move_up", "new_case", "notice", "notice_pdf",
    "open_from_verification", "person", "record_checkin", "release_case", "request_service", "resolve_alert",
    "service_done", "set_team", "test_result", "today", "type_edit", "type_list", "type_retire",
]
