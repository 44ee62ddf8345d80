"""Pages of the notify app.

- /inbox/ lists the signed-in user's messages; POST /inbox/read/ marks one or all read (every signed-in
  account has an inbox; a user only ever sees their own items).
- /notify/settings/ — 我的通知设置: the user's own channels and quiet hours.
- /notify/robots/ — a unit's WeCom / DingTalk group robots: add, edit, switch off, send a test message, and
  which events go to the group. Who may: ``bihuan.notify.access``.
"""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core.errors import Refused
from bihuan.core.http import int_param, is_htmx, whole
from bihuan.register.access import staff_required
from bihuan.register.models import subtree_q

from . import conf, events
from .access import MANAGE_ROBOTS, access_robot, access_robot_unit
from .actions import (
    do_create_robot,
    do_mark_inbox_read,
    do_send_robot_test,
    do_set_preferences,
    do_update_robot,
    last_tests,
    preferences_of,
)
from .forms import PreferenceForm, RobotForm
from .inbox import items_for, unread_count
from .models import Robot

PAGE_SIZE = 30
SUBTREE_ROBOTS = 200  # robots of the units below listed on one page


@login_required
def inbox(request):
    page = Paginator(items_for(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "notify/inbox.html", {"page": page, "unread": unread_count(request.user)})


@login_required
@require_POST
def mark_read(request):
    item = request.POST.get("item", "")
    if item:
        if whole(item, low=1) is None:
            return HttpResponseBadRequest("item must be a number")
        do_mark_inbox_read(acting_user=request.user, item_id=whole(item))
    elif request.POST.get("all"):
        do_mark_inbox_read(acting_user=request.user)
    else:
        return HttpResponseBadRequest("say which item, or all")
    page = request.POST.get("page", "")
    return redirect(reverse("notify:inbox") + (f"?page={page}" if whole(page) else ""))


# ---- my notifications -----------------------------------------------------------------------------------

@login_required
def preferences(request):
    preference = preferences_of(request.user)
    status = 200
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            try:
                do_set_preferences(acting_user=request.user, **form.cleaned_data)
            except Refused as exc:
                form.add_error(exc.field or None, exc.message)
            else:
                flash.success(request, _("通知设置已保存。"))
                return redirect("notify:preferences")
        status = 400
    else:
        form = PreferenceForm(initial={"email": preference.email, "sms": preference.sms,
                                       "quiet_start": preference.quiet_start, "quiet_end": preference.quiet_end})
    staff = getattr(request.user, "staff", None) if hasattr(request.user, "staff") else None
    config = conf.load()
    return render(request, "notify/preferences.html", {
        "form": form, "email_on": config.smtp is not None, "sms_on": config.sms is not None,
        "email_address": request.user.email, "phone_masked": getattr(staff, "phone_masked", ""),
    }, status=status)


# ---- group robots ---------------------------------------------------------------------------------------

def _robot_page(request, scope, unit, form, status=200, editing: Robot | None = None):
    robots = list(Robot.objects.filter(unit=unit).order_by("id"))
    below = list(Robot.objects.filter(subtree_q(unit.path, field="unit__path")).exclude(unit=unit)
                 .select_related("unit").order_by("unit__path", "id")[:SUBTREE_ROBOTS])
    tests = last_tests([r.pk for r in robots + below])
    for robot in robots + below:
        robot.last_test = tests.get(robot.pk)
        robot.event_labels = events.describe(robot.events)
    return render(request, "notify/robots.html", {
        "unit": unit, "robots": robots, "below": below, "form": form, "editing": editing,
        "parent_link": unit.parent_id if unit.pk != scope.unit.pk else None,
    }, status=status)


@staff_required(MANAGE_ROBOTS)
def robots(request, *, scope):
    unit_id = request.GET.get("unit") or request.POST.get("unit")
    unit = access_robot_unit(request.user, int_param(unit_id)) if unit_id else scope.unit
    if request.method == "POST":
        form = RobotForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if not data["webhook_url"]:
                    raise Refused("webhook_url", _("请填写 Webhook 地址"))
                do_create_robot(unit=unit, kind=data["kind"], name=data["name"], webhook_url=data["webhook_url"],
                                secret=data["secret"], events=data["events"], acting_user=request.user)
            except Refused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                flash.success(request, _("机器人已添加。"))
                return redirect(reverse("notify:robots") + f"?unit={unit.pk}")
        return _robot_page(request, scope, unit, form, status=400)
    return _robot_page(request, scope, unit, RobotForm())


def _edit_form(robot: Robot, *args, **kwargs) -> RobotForm:
    form = RobotForm(*args, **kwargs)
    # Prefixes set through the API that the page does not offer stay choosable (and kept).
    form.fields["events"].choices = events.CHOICES + [(p, p) for p in robot.events if p not in events.LABELS]
    form.fields["kind"].required = False
    return form


@staff_required(MANAGE_ROBOTS)
def robot_edit(request, robot_id: int, *, scope):
    robot = access_robot(request.user, robot_id)
    if request.method == "POST":
        form = _edit_form(robot, request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                do_update_robot(robot, acting_user=request.user, name=data["name"], webhook_url=data["webhook_url"],
                                secret="-" if data["clear_secret"] else data["secret"], events=data["events"])
            except Refused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                flash.success(request, _("机器人已更新。"))
                return redirect(reverse("notify:robots") + f"?unit={robot.unit_id}")
        return render(request, "notify/robot_edit.html", {"robot": robot, "form": form}, status=400)
    form = _edit_form(robot, initial={"kind": robot.kind, "name": robot.name, "events": robot.events})
    return render(request, "notify/robot_edit.html", {"robot": robot, "form": form})


@staff_required(MANAGE_ROBOTS)
@require_POST
def robot_active(request, robot_id: int, *, scope):
    robot = access_robot(request.user, robot_id)
    active = request.POST.get("active")
    if active not in {"0", "1"}:
        return HttpResponseBadRequest("active must be 0 or 1")
    do_update_robot(robot, acting_user=request.user, active=active == "1")
    flash.success(request, _("机器人已启用。") if active == "1" else _("机器人已停用。"))
    return redirect(reverse("notify:robots") + f"?unit={robot.unit_id}")


@staff_required(MANAGE_ROBOTS)
@require_POST
def robot_test(request, robot_id: int, *, scope):
    robot = access_robot(request.user, robot_id)
    try:
        robot.last_test = do_send_robot_test(robot, acting_user=request.user)
    except Refused as exc:
        if is_htmx(request):
            return HttpResponseBadRequest(exc.message)
        flash.error(request, exc.message)
        return redirect(reverse("notify:robots") + f"?unit={robot.unit_id}")
    if is_htmx(request):
        return render(request, "notify/_robot_test.html", {"robot": robot})
    flash.success(request, _("测试消息已排队，几秒内送达。"))
    return redirect(reverse("notify:robots") + f"?unit={robot.unit_id}")


@staff_required(MANAGE_ROBOTS)
def robot_test_state(request, robot_id: int, *, scope):
    """The state of the robot's latest test message (the page polls it while it is pending)."""
    robot = access_robot(request.user, robot_id)
    robot.last_test = last_tests([robot.pk]).get(robot.pk)
    return render(request, "notify/_robot_test.html", {"robot": robot})
