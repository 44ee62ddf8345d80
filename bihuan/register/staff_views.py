"""Staff pages: a unit's people (list, appoint, edit / move, deactivate, new first password, sign-in unlock, second
factor reset), the reveal of a person's phone (a ``tel:`` link, audited), 包保 posts and the 三无小区 flag, and one's
own password change.

Views parse, authorize through ``access`` and call ``staff_actions``; a refusal (``Refused``) is shown beside
the form, never as a 500.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core import audit, reveal, totp
from bihuan.core.errors import Refused
from bihuan.core.http import int_param, is_htmx, safe_next, said
from bihuan.core.roles import RESPONSIBLE_ROLES, Perm, Role

from .access import access_staff, access_unit, staff_required
from .models import MAX_LEVEL, Language, Staff, UnitLeader
from .ordering import household_order
from .selectors import staff_in, units_for_choice
from .staff_actions import (
    do_appoint_leader,
    do_change_own_password,
    do_create_staff,
    do_deactivate_staff,
    do_move_staff,
    do_remove_leader,
    do_reset_staff_password,
    do_set_no_property_management,
    do_update_staff,
    grantable_roles,
)
from .views import _breadcrumb

PAGE_SIZE = 50


def _role_choices(roles: list[str]) -> list[tuple[str, str]]:
    return [(r, Role(r).label) for r in roles]


@staff_required(Perm.VIEW_REGISTER)
def staff_list(request, unit_id: int, scope):
    """The people of a unit's subtree, paginated, phones masked; filter by role and by unit below."""
    unit = access_unit(request.user, unit_id)
    within = unit
    if request.GET.get("within"):
        within = access_unit(request.user, int_param(request.GET["within"]))
        if not within.path.startswith(unit.path):
            within = unit
    role = request.GET.get("role", "")
    role = role if role in Role.values else ""
    inactive = request.GET.get("inactive") == "1"
    qs = staff_in(request.user, within, role=role, include_inactive=inactive)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "unit": unit, "within": within, "breadcrumb": _breadcrumb(scope, unit), "page": page, "role": role,
        "inactive": inactive, "roles": _role_choices(Role.values),
        "units": units_for_choice(request.user, unit).filter(level__lt=MAX_LEVEL) if unit.level < MAX_LEVEL else [],
        "can_manage": scope.can(Perm.MANAGE_STAFF),
    }
    template = "register/_staff_rows.html" if is_htmx(request) else "register/staff_list.html"
    return render(request, template, context)


def _form_values(request) -> dict:
    post = request.POST
    return {
        "username": post.get("username", "").strip(), "name": post.get("name", "").strip(),
        "phone": post.get("phone", "").strip(), "email": post.get("email", "").strip(), "role": post.get("role", ""), "language": post.get("language", ""),
        "household_ids": [int_param(v) for v in post.getlist("households") if v.strip()],
    }


def _form_context(request, unit, scope, **extra) -> dict:
    households = list(unit.households.order_by(*household_order())
                      .only("id", "address")) if unit.level == MAX_LEVEL else []
    return {"unit": unit, "breadcrumb": _breadcrumb(scope, unit) + [unit],
            "roles": _role_choices(grantable_roles(request.user, unit)), "languages": Language.choices,
            "households": households, "responsible_roles": [str(r) for r in RESPONSIBLE_ROLES], **extra}


@staff_required(Perm.MANAGE_STAFF)
def staff_create(request, unit_id: int, scope):
    unit = access_unit(request.user, unit_id)
    values: dict = {"role": (grantable_roles(request.user, unit) or [""])[0], "household_ids": []}
    error = None
    if request.method == "POST":
        values = _form_values(request)
        try:
            staff, password = do_create_staff(unit=unit, acting_user=request.user, **values)
        except Refused as exc:
            error = exc
        else:
            return render(request, "register/staff_created.html", {
                "staff": staff, "password": password, "unit": unit,
                "breadcrumb": _breadcrumb(scope, unit) + [unit]})
    return render(request, "register/staff_form.html",
                  _form_context(request, unit, scope, values=values, error=error, creating=True),
                  status=400 if error else 200)


@staff_required(Perm.MANAGE_STAFF)
def staff_edit(request, staff_id: int, scope):
    staff = access_staff(request.user, staff_id)
    unit = staff.unit
    values = {"username": staff.user.get_username(), "name": staff.name, "phone": "", "email": staff.user.email,
              "role": staff.role,
              "language": staff.language, "household_ids": list(staff.households.values_list("pk", flat=True)),
              "unit_id": unit.pk}
    error = None
    if request.method == "POST":
        values = _form_values(request)
        values.pop("username")
        target = request.POST.get("unit_id")
        try:
            if target and int_param(target) != unit.pk:
                new_unit = access_unit(request.user, int_param(target))
                staff = do_move_staff(staff=staff, unit=new_unit, role=values["role"] or None,
                                      acting_user=request.user)
                messages.success(request, _("已调整到 %(unit)s") % {"unit": new_unit.name})
            else:
                changes = {k: values[k] for k in ("name", "email", "role", "language", "household_ids")}
                if values["phone"]:
                    changes["phone"] = values["phone"]
                elif request.POST.get("clear_phone"):
                    changes["phone"] = ""
                do_update_staff(staff=staff, changes=changes, acting_user=request.user)
                messages.success(request, _("已保存"))
        except Refused as exc:
            error = exc
            values["username"] = staff.user.get_username()
        else:
            return redirect("register:staff", unit_id=staff.unit_id)
    root = scope.root
    return render(request, "register/staff_form.html", _form_context(
        request, unit, scope, staff=staff, values=values, error=error, creating=False,
        second_factor=totp.enrolled(staff.user), has_factor=totp.has_factor(staff.user),
        reset_reasons=list(totp.RESET_REASONS.items()),
        move_units=units_for_choice(request.user, root).filter(level__gte=max(unit.level - 1, 1),
                                                                level__lte=min(unit.level + 1, MAX_LEVEL))
        .order_by("path")[:500]),
        status=400 if error else 200)


@require_POST
@staff_required(Perm.MANAGE_STAFF)
def staff_deactivate(request, staff_id: int, scope):
    staff = access_staff(request.user, staff_id)
    try:
        do_deactivate_staff(staff=staff, reason=request.POST.get("reason", ""), acting_user=request.user)
    except Refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(name)s 的账号已停用，其未办结事项已交回单位") % {"name": staff.name})
    return redirect("register:staff", unit_id=staff.unit_id)


@require_POST
@staff_required(Perm.MANAGE_STAFF)
def staff_reset_password(request, staff_id: int, scope):
    staff = access_staff(request.user, staff_id)
    try:
        password = do_reset_staff_password(staff=staff, acting_user=request.user)
    except Refused as exc:
        messages.error(request, str(exc))
        return redirect("register:staff", unit_id=staff.unit_id)
    return render(request, "register/staff_created.html", {
        "staff": staff, "password": password, "unit": staff.unit, "reset": True,
        "breadcrumb": _breadcrumb(scope, staff.unit) + [staff.unit]})


@require_POST
@staff_required(Perm.MANAGE_STAFF)
def staff_unlock(request, staff_id: int, scope):
    """Lift a sign-in lock at once (bihuan.login; audited)."""
    from bihuan.login import do_unlock_account

    staff = access_staff(request.user, staff_id)
    do_unlock_account(user=staff.user, acting_user=request.user)
    messages.success(request, _("%(name)s 的账号已解锁") % {"name": staff.name})
    return redirect("register:staff", unit_id=staff.unit_id)


@require_POST
@staff_required(Perm.MANAGE_STAFF)
def staff_reset_2fa(request, staff_id: int, scope):
    """Remove a person's second factor (a lost phone): a reason (short list or free text) and a ticked confirmation;
    the same action as ``bihuan reset_2fa`` (``second_factor.do_reset_second_factor``: audited, the person told)."""
    from bihuan.second_factor import do_reset_second_factor

    staff = access_staff(request.user, staff_id)

    def reset():
        if request.POST.get("confirm") != "1":
            raise Refused("confirm", _("请勾选确认：此人下次登录时须重新启用两步验证"))
        reason = request.POST.get("reason_text", "").strip() or request.POST.get("reason", "")
        do_reset_second_factor(user=staff.user, reason=reason, acting_user=request.user)

    said(request, reset, _("%(name)s 的两步验证已重置并已通知本人，下次登录时须重新启用") % {"name": staff.name})
    return redirect("register:staff_edit", staff_id=staff.pk)


@require_POST
@staff_required(Perm.REVEAL_PERSONAL)
def staff_reveal(request, staff_id: int, scope):
    """A person's phone in full as a one-tap ``tel:`` link; the read is audited."""
    staff = access_staff(request.user, staff_id)
    try:
        reveal.check(request.user)  # staff phones count towards the same per-user reveal limit
    except reveal.Throttled as exc:
        return render(request, "register/_reveal_refused.html", {"message": exc.message})
    audit.record(actor=request.user, action="staff.reveal", target=staff,
                 changes={"fields": ["phone"], "reason": "call: " + str(reveal.REASONS["call"])})
    return render(request, "register/_staff_phone.html", {"staff": staff, "phone": staff.reveal_phone()})


@require_POST
@staff_required(Perm.MANAGE_STAFF)
def leader_appoint(request, unit_id: int, scope):
    """包保: a cadre answers for this unit. The cadre is named by login name (any account the user may see)."""
    unit = access_unit(request.user, unit_id)
    username = request.POST.get("username", "").strip()
    cadre = Staff.objects.filter(user__username=username).only("id").first()
    try:
        if cadre is None:
            raise Refused("username", _("没有这个登录名"))
        do_appoint_leader(unit=unit, staff=access_staff(request.user, cadre.pk),
                          duty=request.POST.get("duty", ""), acting_user=request.user)
    except Refused as exc:
        messages.error(request, str(exc))
    except Http404:  # a cadre outside the user's part of the district is as unknown as a missing one
        messages.error(request, _("没有这个登录名"))
    return redirect("register:unit", unit_id=unit.pk)


@require_POST
@staff_required(Perm.MANAGE_STAFF)
def leader_remove(request, leader_id: int, scope):
    leader = UnitLeader.objects.select_related("unit").filter(pk=leader_id).first()
    if leader is None:
        raise Http404("no such post")
    access_unit(request.user, leader.unit_id)
    do_remove_leader(leader=leader, acting_user=request.user)
    return redirect("register:unit", unit_id=leader.unit_id)


@require_POST
@staff_required(Perm.EDIT_REGISTER)
def unit_no_property(request, unit_id: int, scope):
    """Mark (or unmark) a compound as having no property management (三无小区)."""
    unit = access_unit(request.user, unit_id)
    try:
        do_set_no_property_management(unit=unit, value=request.POST.get("value") == "1", acting_user=request.user)
    except Refused as exc:
        messages.error(request, str(exc))
    return redirect("register:unit", unit_id=unit.pk)


@login_required
def change_password(request):
    """One's own password; the first password must be changed here before any other page opens."""
    error = None
    next_url = safe_next(request, "home")
    if request.method == "POST":
        new, again = request.POST.get("new_password", ""), request.POST.get("new_password2", "")
        try:
            if new != again:
                raise Refused("new_password2", _("两次输入的新密码不一致"))
            do_change_own_password(user=request.user, old_password=request.POST.get("old_password", ""),
                                   new_password=new)
        except Refused as exc:
            error = exc
        else:
            update_session_auth_hash(request, request.user)
            messages.success(request, _("密码已修改"))
            return redirect(next_url or "home")
    staff = Staff.objects.filter(user=request.user).only("must_change_password").first()
    forced = bool(staff and staff.must_change_password)
    return render(request, "register/change_password.html",
                  {"error": error, "next": next_url, "forced": forced}, status=400 if error else 200)
