"""Per-request rules for signed-in staff: a first password must be changed before anything else, and a person's
own language (``Staff.language``) wins over the browser's.

It reuses the request's scope (``access.scope_of``, cached on the user), so a page that reads the scope anyway
runs no extra query. The JSON API is left alone: its callers are scripts with tokens, and tokens are created by
people who have signed in (and so changed their first password) or by the operator's command.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation

from .access import scope_of

# Paths a person with a first password may still open.
OPEN_PREFIXES = ("/static/", "/api/", "/i18n/", "/logout/", "/login/")


class StaffMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        staff = None
        if user is not None and user.is_authenticated and not request.path.startswith(OPEN_PREFIXES[:2]):
            try:
                scope_of(user)
            except PermissionDenied:
                pass
            else:
                staff = user._state.fields_cache.get("staff")  # set by scope_of, no query
        if staff is not None:
            if staff.language:
                translation.activate(staff.language)
                request.LANGUAGE_CODE = staff.language
            change = reverse("register:change_password")
            if staff.must_change_password and request.path != change and not request.path.startswith(OPEN_PREFIXES):
                return redirect(f"{change}?next={request.get_full_path()}")
        return self.get_response(request)
