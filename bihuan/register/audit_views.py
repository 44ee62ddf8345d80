"""The audit-log viewer (审计日志): /audit/ lists the audit rows the user may read (``core.audit_log``), with
filters and pages; /audit/export.xlsx downloads the filtered rows — and that export is itself audited."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from bihuan.core import excel
from bihuan.core.errors import Refused
from bihuan.core.http import download
from bihuan.core.roles import Perm

from .access import staff_required
from .audit_log import AuditFilters, parse_filters, search
from .models import Unit, subtree_q

PAGE_SIZE = 50
EXPORT_MAX = 50_000  # rows in one export; narrow the filters for more
UNIT_CHOICES_MAX_LEVEL = 4  # the unit filter offers units down to villages and communities


def _filters(request) -> tuple[AuditFilters, str]:
    try:
        return parse_filters(request.GET), ""
    except Refused as exc:
        return AuditFilters(), str(exc)


def _unit_choices(scope):

    return (Unit.objects.filter(subtree_q(scope.root.path), level__lte=UNIT_CHOICES_MAX_LEVEL)
            .order_by("path").only("id", "name", "level"))


@staff_required(Perm.VIEW_AUDIT)
def audit_list(request, *, scope):
    filters, error = _filters(request)
    page = Paginator(search(request.user, filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "register/audit.html", {
        "page": page, "filters": filters, "error": error, "units": _unit_choices(scope),
        "query": query.urlencode(),
    }, status=400 if error else 200)


@staff_required(Perm.VIEW_AUDIT)
def audit_export(request, *, scope):
    filters, error = _filters(request)
    if error:
        return render(request, "register/audit.html", {"page": None, "filters": filters, "error": error,
                                                   "units": _unit_choices(scope), "query": ""}, status=400)
    wb = excel.workbook(write_only=True)
    ws = wb.create_sheet(_("审计日志"))
    ws.append([_("时间"), _("操作人"), _("账号"), _("单位"), _("操作"), _("对象类型"), _("对象编号"), _("变更内容")])
    rows = 0
    for entry in search(request.user, filters)[:EXPORT_MAX].iterator(chunk_size=2000):
        actor = entry.actor
        staff = getattr(actor, "staff", None) if actor is not None else None
        ws.append([
            timezone.localtime(entry.created_at).replace(tzinfo=None),
            staff.name if staff else "", actor.username if actor else "",
            entry.actor_unit.name if entry.actor_unit_id else "", entry.action, entry.target_type, entry.target_id,
            json.dumps(entry.changes, ensure_ascii=False) if entry.changes else ""])
        rows += 1
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return download(excel.to_bytes(wb), f"{_('审计日志')}-{stamp}.xlsx", acting_user=request.user,
                    audit_action="audit.export", changes={"filters": filters.as_dict(), "rows": rows})
