"""The one way in for people: sign-in throttled and locked per account and per client address, demo passwords
changed at first sign-in outside demo mode, sessions that end after inactivity, and "log out everywhere".

Throttling (database-backed, ``LoginThrottle``; no extra server): within ``BIHUAN_LOGIN_WINDOW_MINUTES`` an
account that fails ``BIHUAN_LOGIN_MAX_FAILURES`` times, or an address that fails
``BIHUAN_LOGIN_ADDRESS_MAX_FAILURES`` times, is locked for ``BIHUAN_LOGIN_LOCK_MINUTES`` (the cool-off): every
attempt, the right password included, is refused with the minutes to wait. When an account locks, the people of
its unit and of the unit above are told (``notify_units``, event ``account.locked``); an administrator who manages
the account's staff may unlock it at once (``do_unlock_account``, audited). Unknown usernames are counted like
real ones, so the answers say nothing about which accounts exist.

Sessions (``SessionGuardMiddleware``): a session ends after ``BIHUAN_SESSION_IDLE_MINUTES`` without a request
(``BIHUAN_SESSION_IDLE_MINUTES_HIGH`` for staff of levels 1–2, who can reach the whole district), and every session
of a person that began before their ``SessionFence`` (``log out everywhere``) is over. The guard touches the
session at most once a minute, so pages run no extra query in between.
"""

from __future__ import annotations

import datetime as dt
import math
import time

from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from bihuan.core import audit, http
from bihuan.core.models import LoginThrottle, SessionFence

DEMO_PASSWORD = "bihuan2022"  # the password `bihuan generate` gives every demo account (published in the README)


client_address = http.client_address  # one definition (core.http), shared with the public pages' rate limits


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    return [(f"user:{username.strip().lower()[:150]}", settings.LOGIN_MAX_FAILURES),
            (f"ip:{address}", settings.LOGIN_ADDRESS_MAX_FAILURES)]


def locked_seconds(username: str, address: str) -> int:
    """Seconds until neither the account nor the address is locked (0: sign-in may be tried)."""
    now = timezone.now()
    until = (LoginThrottle.objects.filter(key__in=[k for k, _n in _keys(username, address)], locked_until__gt=now)
             .order_by("-locked_until").values_list("locked_until", flat=True).first())
    return math.ceil((until - now).total_seconds()) if until else 0


def record_failure(username: str, address: str) -> int:
    """Count a failed sign-in for the account and the address; returns the seconds locked (0 if not locked now).
    An account that locks here alerts its unit."""
    now = timezone.now()
    window = dt.timedelta(minutes=settings.LOGIN_WINDOW_MINUTES)
    lock = dt.timedelta(minutes=settings.LOGIN_LOCK_MINUTES)
    locked = 0
    with transaction.atomic():
        for key, limit in _keys(username, address):
            row, _created = LoginThrottle.objects.select_for_update().get_or_create(
                key=key, defaults={"window_start": now})
            if row.window_start < now - window:
                row.failures, row.window_start = 0, now
            row.failures += 1
            if row.failures >= limit and not (row.locked_until and row.locked_until > now):
                row.locked_until = now + lock
                locked = max(locked, int(lock.total_seconds()))
                if key.startswith("user:"):
                    _alert_locked(username, row.failures, row.locked_until)
            row.save()
    return locked


def record_success(username: str) -> None:
    LoginThrottle.objects.filter(key=f"user:{username.strip().lower()[:150]}").delete()


def _alert_locked(username: str, failures: int, until) -> None:
    from django.contrib.auth import get_user_model

    from bihuan.notify.outbox import notify_units
    from bihuan.register.models import Staff

    user = get_user_model().objects.filter(username__iexact=username.strip()).first()
    staff = Staff.objects.filter(user=user).select_related("unit").first() if user else None
    if staff is None:
        return
    stamp = timezone.localtime(until)
    audit.record(actor=None, action="account.locked", target_type="auth.user", target_id=user.pk,
                 changes={"failures": failures, "until": stamp.isoformat()})
    units = [u for u in (staff.unit_id, staff.unit.parent_id) if u]
    notify_units(units, key=f"account.locked:{user.pk}:{int(until.timestamp())}",
                 subject=f"账号已锁定：{staff.name}（{user.username}）",
                 body=(f"{staff.name}（{user.username}）连续 {failures} 次登录失败，账号锁定至 {stamp:%H:%M}。"
                       f"如非本人操作，请核实；本单位管理员可在人员页面立即解锁。"),
                 event="account.locked")


def do_unlock_account(*, user, acting_user) -> None:
    """An administrator who manages ``user``'s staff record lifts the lock at once (audited)."""
    from bihuan.core.roles import Perm
    from bihuan.register.access import access_staff, require
    from bihuan.register.models import Staff

    require(acting_user, Perm.MANAGE_STAFF)
    access_staff(acting_user, Staff.objects.get(user=user).pk)
    with transaction.atomic():
        removed, _n = LoginThrottle.objects.filter(key=f"user:{user.username.lower()}").delete()
        audit.record(actor=acting_user, action="account.unlock", target_type="auth.user", target_id=user.pk,
                     changes={"was_locked": bool(removed)})


def minutes_text(seconds: int) -> str:
    return _("登录失败次数过多，已暂时锁定，请 %(minutes)d 分钟后再试，或请本单位管理员解锁。") % {
        "minutes": max(1, math.ceil(seconds / 60))}


class ThrottledLoginForm(AuthenticationForm):
    error_messages = {**AuthenticationForm.error_messages, "invalid_login": gettext_lazy("用户名或密码不正确。")}

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        wait = locked_seconds(username, address)
        if wait:
            raise ValidationError(minutes_text(wait), code="locked")
        try:
            cleaned = super().clean()
        except ValidationError:
            wait = record_failure(username, address)
            if wait:
                raise ValidationError(minutes_text(wait), code="locked") from None
            raise
        record_success(username)
        return cleaned


class ThrottledLoginView(LoginView):
    """The login page (``/login/``): throttled, and outside demo mode a demo password must be changed at once."""

    form_class = ThrottledLoginForm
    template_name = "login.html"

    def form_valid(self, form: forms.Form):
        user = form.get_user()
        if not settings.DEMO and user.check_password(DEMO_PASSWORD):
            from bihuan.register.models import Staff

            Staff.objects.filter(user=user).update(must_change_password=True)
        return super().form_valid(form)


def stamp_session(sender, request, user, **kwargs) -> None:
    """At every sign-in (``user_logged_in``, connected in core.apps): when the session began and was last seen."""
    if request is not None and hasattr(request, "session"):
        request.session["bihuan_login_at"] = request.session["bihuan_seen_at"] = time.time()


def do_logout_everywhere(*, user) -> int:
    """End every session of ``user`` at once (their rows deleted), and fence off any that a concurrent request
    was still writing (the session guard refuses sessions older than the fence)."""
    from django.contrib.sessions.models import Session

    ended = [s.session_key for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
             if s.get_decoded().get("_auth_user_id") == str(user.pk)]
    with transaction.atomic():
        Session.objects.filter(session_key__in=ended).delete()
        SessionFence.objects.update_or_create(user=user, defaults={"valid_after": timezone.now()})
        audit.record(actor=user, action="account.logout_everywhere", target_type="auth.user", target_id=user.pk,
                     changes={"sessions": len(ended)})
    return len(ended)


@require_POST
def logout_everywhere(request):
    """End every session of the signed-in person, this one included."""
    if request.user.is_authenticated:
        do_logout_everywhere(user=request.user)
        logout(request)
    return redirect(settings.LOGOUT_REDIRECT_URL)


def idle_limit(user) -> int:
    """Seconds of inactivity after which ``user``'s session ends (shorter for levels 1–2)."""
    from django.core.exceptions import PermissionDenied

    from bihuan.register.access import scope_of

    try:
        level = scope_of(user).unit.level
    except PermissionDenied:
        level = None
    minutes = settings.SESSION_IDLE_MINUTES_HIGH if level in (1, 2) else settings.SESSION_IDLE_MINUTES
    return minutes * 60


class SessionGuardMiddleware:
    """Idle timeout and the session fence, after AuthenticationMiddleware (see the module doc)."""

    TOUCH_EVERY = 60  # seconds

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = time.time()
            seen = request.session.get("bihuan_seen_at")
            if seen is None:
                request.session["bihuan_seen_at"] = now
                request.session.setdefault("bihuan_login_at", now)
            elif now - seen > self.TOUCH_EVERY:
                if now - seen > idle_limit(user) or self._fenced(user, request.session.get("bihuan_login_at", 0)):
                    logout(request)
                    if request.path.startswith("/api/"):
                        return self.get_response(request)
                    return redirect(f"{reverse('login')}?next={request.path}")
                request.session["bihuan_seen_at"] = now
        return self.get_response(request)

    @staticmethod
    def _fenced(user, login_at: float) -> bool:
        fence = SessionFence.objects.filter(user=user).values_list("valid_after", flat=True).first()
        return bool(fence and fence.timestamp() > login_at)
