"""The second factor in the web pages: ``SecondFactorMiddleware`` sends a signed-in user who has an authenticator
app to ``/login/verify/`` until a code is given, and — where ``settings.TOTP_ENFORCE`` is on — a user whose role
requires it (core.totp.REQUIRED_PERMS) to ``/me/2fa/`` until enrolled. Wrong codes count towards the account's
sign-in lockout (bihuan.login). Demo mode does not enforce enrolment (BIHUAN_TOTP_ENFORCE, default: on outside
demo mode)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
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
