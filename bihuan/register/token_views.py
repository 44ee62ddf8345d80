"""The user's own API tokens (/me/tokens/): what each may do (read or write, which part of the district), when it
expires, when it was last used; create one (its key shown once) or revoke one."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core.actions import TokenError, do_create_api_token, do_revoke_api_token
from bihuan.core.http import int_param, whole
from bihuan.core.models import ApiToken
from bihuan.core.roles import Perm

from .access import staff_required
from .models import Unit, subtree_q

MAX_UNIT_LEVEL = 4  # tokens are narrowed to a community or village at the finest (lists stay short)


def _units(scope):
    return list(Unit.objects.filter(subtree_q(scope.root.path), level__lte=max(MAX_UNIT_LEVEL, scope.root.level))
                .order_by("path").only("id", "name", "level")[:2000])


@staff_required(Perm.VIEW_REGISTER)
def tokens(request, scope):
    key = None
    error = None
    if request.method == "POST":
        unit_id = whole(request.POST.get("unit"), low=1) if request.POST.get("unit") else None
        if unit_id is not None and not Unit.objects.filter(subtree_q(scope.root.path), pk=unit_id).exists():
            raise Http404("no such unit in your part of the district")
        days = whole(request.POST.get("days"), low=1, high=settings.API_TOKEN_MAX_DAYS) or settings.API_TOKEN_DAYS
        try:
            token, key = do_create_api_token(user=request.user, name=request.POST.get("name", ""),
                                             acting_user=request.user, write=request.POST.get("write") == "1",
                                             subtree_unit_id=unit_id, days=days)
        except TokenError as exc:
            error = exc
    rows = list(ApiToken.objects.filter(user=request.user).order_by("-created_at"))
    names = dict(Unit.objects.filter(pk__in={t.subtree_unit_id for t in rows if t.subtree_unit_id})
                 .values_list("id", "name"))
    for t in rows:
        t.unit_name = names.get(t.subtree_unit_id, "")
    return render(request, "register/tokens.html", {
        "tokens": rows, "key": key, "error": error, "units": _units(scope),
        "days": settings.API_TOKEN_DAYS, "max_days": settings.API_TOKEN_MAX_DAYS,
    }, status=400 if error else 200)


@require_POST
@staff_required(Perm.VIEW_REGISTER)
def revoke_token(request, token_id: int, scope):
    token = ApiToken.objects.filter(user=request.user, pk=int_param(token_id)).first()
    if token is None:
        raise Http404("no such token of yours")
    do_revoke_api_token(token=token, acting_user=request.user)
    messages.success(request, _("令牌已撤销"))
    return redirect("my_tokens")
