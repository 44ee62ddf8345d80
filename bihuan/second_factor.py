"""The second factor in the web pages: ``SecondFactorMiddleware`` sends a signed-in user who has an authenticator
app to ``/login/verify/`` until a code is given, and — where ``settings.TOTP_ENFORCE`` is on — a user whose role
requires it (core.totp.REQUIRED_PERMS) to ``/me/2fa/`` until enrolled. Wrong codes count towards the account's
sign-in lockout (bihuan.login). Demo mode does not enforce enrolment (BIHUAN_TOTP_ENFORCE, default: on outside
demo mode).

``do_reset_second_factor`` is the one way to remove someone's second factor (a lost phone): the staff page of a unit
administrator and the ``reset_2fa`` command both call it."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from bihuan.core import totp
from bihuan.core.errors import Refused
from bihuan.core.http import client_address, safe_next

from . import login as core_login

OPEN_PREFIXES = ("/login/", "/logout/", "/static/", "/i18n/", "/me/2fa/", "/password/")


def _role(user) -> str | None:
    staff = getattr(user, "staff", None)
    return getattr(staff, "role", None)


def _verified(request) -> bool:
    return request.session.get(totp.SESSION_KEY) == request.user.pk


def _passed(request) -> None:
    request.session[totp.SESSION_KEY] = request.user.pk


def at_sign_in(sender, request, user, **kwargs) -> None:
    """At every sign-in (``user_logged_in``, connected in core.apps): an account with nothing to ask passes at once,
    so that pages cost no query for it; an enrolled one (or one that must enrol) is asked by the middleware."""
    if request is None or not hasattr(request, "session"):
        return
    if not totp.enrolled(user) and not (settings.TOTP_ENFORCE and totp.required_for_role(_role(user))):
        request.session[totp.SESSION_KEY] = user.pk


class SecondFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or _verified(request) or request.path.startswith(OPEN_PREFIXES):
            return self.get_response(request)
        if totp.enrolled(user):
            target = reverse("login_verify")
        elif settings.TOTP_ENFORCE and totp.required_for_role(_role(user)):
            target = reverse("my_2fa")
        else:
            _passed(request)  # nothing to ask of this account (enrolling later asks a code then)
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": "second factor required: sign in again in the browser"}, status=403)
        return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")


def verify(request):
    """After the password: the authenticator's six digits, or a recovery code."""
    if not request.user.is_authenticated:
        return redirect("login")
    if _verified(request) or not totp.enrolled(request.user):
        return redirect(safe_next(request, "home"))
    error = ""
    username, address = request.user.get_username(), client_address(request)
    if request.method == "POST":
        wait = core_login.locked_seconds(username, address)
        if wait:
            error = core_login.minutes_text(wait)
        elif totp.do_verify(user=request.user, code=request.POST.get("code", "")):
            _passed(request)
            return redirect(safe_next(request, "home"))
        else:
            core_login.record_failure(username, address)
            error = _("验证码不正确或已使用")
    return render(request, "second_factor_verify.html", {"error": error, "next": safe_next(request, "home")},
                  status=400 if error else 200)


def enrol(request):
    """Turn the second factor on: scan the code (or type the key), give a first code, keep the recovery codes."""
    if not request.user.is_authenticated:
        return redirect("login")
    user = request.user
    context = {"enrolled": totp.enrolled(user), "required": totp.required_for_role(_role(user)),
               "next": safe_next(request, "home")}
    if request.method == "POST" and not context["enrolled"]:
        try:
            if request.POST.get("action") == "start":
                device = totp.do_start_enrolment(user=user)
            else:
                context["codes"] = totp.do_confirm_enrolment(user=user, code=request.POST.get("code", ""))
                context["enrolled"] = True
                _passed(request)
        except Refused as exc:
            context["error"] = exc.message
    device = totp.device_of(user)
    if device is not None and device.confirmed_at is None:
        import qrcode
        from qrcode.image.svg import SvgPathImage

        uri = totp.provisioning_uri(user, device)
        context["secret"] = totp.secret_of(device)
        context["qr"] = mark_safe(qrcode.make(uri, image_factory=SvgPathImage, border=1)  # noqa: S308
                                  .to_string(encoding="unicode"))
    return render(request, "second_factor_enrol.html", context, status=400 if context.get("error") else 200)


def do_reset_second_factor(*, user, reason: str, acting_user) -> None:
    """Remove ``user``'s authenticator and recovery codes: they enrol again at their next sign-in.

    ``acting_user`` is a unit administrator (``Perm.MANAGE_STAFF``) whose subtree holds ``user``'s staff record
    (404 otherwise, as for any record outside it), who is not ``user`` and whose role has at least the power of
    theirs — or None for the console (``bihuan reset_2fa``). A reason is required: a code of
    ``totp.RESET_REASONS`` or free text. The reset is audited (``totp.reset``, with the reason) and the person is
    told at once through the outbox (inbox; SMS and email by their settings, urgent: a reset they did not ask for
    is a warning). Raises ``Refused`` (no reason, nothing to reset, oneself, a deactivated account)."""
    from bihuan.core.roles import Perm, may_grant
    from bihuan.notify.outbox import notify_user
    from bihuan.register.access import access_staff, require, scope_of
    from bihuan.register.models import Staff

    raw = (reason or "").strip()
    reason = totp.reset_reason(raw)
    with transaction.atomic():
        staff = Staff.objects.select_related("unit").filter(user=user).first()
        if acting_user is not None:
            require(acting_user, Perm.MANAGE_STAFF)
            if staff is None:
                raise Http404("no such person in your part of the district")
            staff = access_staff(acting_user, staff.pk)
            if acting_user.pk == user.pk:
                raise Refused("", _("不能重置自己的两步验证：请用恢复码登录后在“两步验证”页重新启用"))
            if not may_grant(scope_of(acting_user).role, staff.role):
                raise Refused("", _("此人的角色权限高于您的角色"))
        if (staff is not None and not staff.is_active) or not user.is_active:
            raise Refused("", _("账号已停用"))
        if not totp.has_factor(user):
            raise Refused("", _("此人尚未启用两步验证，无需重置"))
        totp.do_reset(user=user, acting_user=acting_user, reason=reason)
        now = timezone.now()
        with translation.override(None):  # the message is stored once, in Chinese
            shown = str(totp.RESET_REASONS[raw]) if raw in totp.RESET_REASONS else reason
            actor = "系统管理员"
            if acting_user is not None:
                actor_staff = getattr(acting_user, "staff", None)
                actor = (f"{actor_staff.name}（{actor_staff.unit.name}）" if actor_staff is not None
                         else acting_user.get_username())
        notify_user(user, key=f"totp.reset:{user.pk}:{int(now.timestamp())}", subject="您的两步验证已被重置",
                    body=(f"{actor}于 {timezone.localtime(now):%m-%d %H:%M} 重置了您账号（{user.get_username()}）的"
                          f"两步验证，原因：{shown}。下次登录时请用新手机重新启用。如非本人申请，请立即联系本单位管理员并修改密码。"),
                    urgent=True)
