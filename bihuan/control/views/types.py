"""The control types and their measures checklists, for the district's command office (``Perm.EDIT_POLICY``):
the list with every version and how many open cases use it, a new type or a new version, retiring a type."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core.http import int_param
from bihuan.core.roles import Perm
from bihuan.register.access import staff_required

from .. import types
from ..models import ControlType

FIELDS = ("code", "name_zh", "name_en", "rank", "checkins_per_day", "at_home", "measures", "note")


@staff_required(Perm.EDIT_POLICY)
def type_list(request, scope):
    versions = list(ControlType.objects.select_related("created_by__staff").order_by("code", "-version"))
    in_use = types.open_cases_by_version()
    by_code: dict[str, list] = defaultdict(list)
    for v in versions:
        v.open_cases = in_use.get(v.pk, 0)
        by_code[v.code].append(v)
    rows = [{"code": code, "current": next((v for v in vs if v.is_current), None), "latest": vs[0], "versions": vs}
            for code, vs in by_code.items()]
    rows.sort(key=lambda r: (r["current"] is None, -r["latest"].rank, r["code"]))
    return render(request, "control/types.html", {"rows": rows, "unit": scope.root})


@staff_required(Perm.EDIT_POLICY)
def type_edit(request, scope, code: str = ""):
    """A new version of type ``code`` (prefilled from the current one), or a new type (no code)."""
    base = None
    if code:
        base = (ControlType.objects.filter(code=code).order_by("-is_current", "-version").first())
        if base is None:
            raise Http404("no such control type")
    error, field = "", ""
    if request.method == "POST":
        values = {f: (request.POST.get(f) or "").strip() for f in FIELDS}
        values["code"] = code or values["code"]
        try:
            new = types.do_new_type_version(
                values["code"], name_zh=values["name_zh"], name_en=values["name_en"],
                rank=int_param(values["rank"] or "0", low=0, high=99),
                checkins_per_day=int_param(values["checkins_per_day"] or "0", low=0, high=9),
                at_home=request.POST.get("at_home") == "1", measures=values["measures"], note=values["note"],
                acting_user=request.user)
        except types.ControlTypeError as exc:
            error, field = exc.message, exc.field
        else:
            messages.success(request, _("已发布%(name)s 第 %(v)s 版") % {"name": new.name_zh, "v": new.version})
            return redirect("control:types")
        values["at_home"] = request.POST.get("at_home") == "1"
    elif base is not None:
        values = {"code": base.code, "name_zh": base.name_zh, "name_en": base.name_en, "rank": base.rank,
                  "checkins_per_day": base.checkins_per_day, "at_home": base.at_home,
                  "measures": types.measures_text(base.measures), "note": ""}
    else:
        values = {"code": "", "name_zh": "", "name_en": "", "rank": 1, "checkins_per_day": 2, "at_home": True,
                  "measures": "", "note": ""}
    return render(request, "control/type_edit.html", {
        "base": base, "values": values, "error": error, "field": field, "unit": scope.root,
        "in_use": types.open_cases_by_version().get(base.pk, 0) if base else 0,
    }, status=400 if error else 200)


@require_POST
@staff_required(Perm.EDIT_POLICY)
def type_retire(request, code: str, scope):
    if not ControlType.objects.filter(code=code).exists():
        raise Http404("no such control type")
    try:
        retired = types.do_retire_type(code, acting_user=request.user)
    except types.ControlTypeError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("已停用%(name)s（在管人员按原版本继续）") % {"name": retired.name_zh})
    return redirect("control:types")
