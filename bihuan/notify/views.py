"""The in-app inbox: /inbox/ lists the signed-in user's messages; POST /inbox/read/ marks one or all read.

Every signed-in account has an inbox (no unit scope is involved: a user only ever sees their own items)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from .actions import do_mark_inbox_read
from .inbox import items_for, unread_count

PAGE_SIZE = 30


@login_required
def inbox(request):
    page = Paginator(items_for(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "notify/inbox.html", {"page": page, "unread": unread_count(request.user)})


@login_required
@require_POST
def mark_read(request):
    item = request.POST.get("item", "")
    if item:
        if not item.isdigit():
            return HttpResponseBadRequest("item must be a number")
        do_mark_inbox_read(acting_user=request.user, item_id=int(item))
    elif request.POST.get("all"):
        do_mark_inbox_read(acting_user=request.user)
    else:
        return HttpResponseBadRequest("say which item, or all")
    page = request.POST.get("page", "")
    return redirect(reverse("notify:inbox") + (f"?page={page}" if page.isdigit() else ""))
