"""What the control-and-care pages share: the login wrapper for five-for-one members, the unit a page is about,
breadcrumbs, where a form goes back to, and an action's refusal as a message."""

from __future__ import annotations

import datetime as dt
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from django.utils.safestring import mark_safe

from bihuan.core import http
from bihuan.core.errors import Refused
from bihuan.core.http import int_param
from bihuan.register.access import access_unit, scope_of
from bihuan.register.models import Unit

from .. import checkins
from ..models import ControlCase, TestResult

TODAY_LEVEL = 4  # the today page lists people from the community / village down; above it, pick a unit
RESULT_BUTTONS = [TestResult.NEGATIVE, TestResult.POSITIVE, TestResult.PENDING, TestResult.MISSED]


def date_param(value: str | None, default: dt.date) -> dt.date:
    return http.date_param(value, default)


def next_url(request, default: str) -> str:
    """``next`` from the form if it points back into this site, else ``default``."""
    return http.safe_next(request, default)


def unit_of(request, scope) -> Unit:
    """The unit a page is about: ``?unit=`` inside the user's subtree (else 404), or the user's own."""
    raw = request.GET.get("unit") or request.POST.get("unit")
    return access_unit(request.user, int_param(raw)) if raw else scope.root


def breadcrumb(scope, unit: Unit) -> list[Unit]:
    return [u for u in unit.ancestors() if u.path.startswith(scope.root.path)]


def flash(request, error: str, done: str) -> None:
    """The outcome of a form posted without HTMX, for the page it goes back to."""
    (messages.error if error else messages.success)(request, error or done)


def refusal(exc: Refused) -> str:
    """An action's refusal as the sentence shown beside the form (``Refused.message``; the field is
    ``exc.field``)."""
    return exc.message


def signed_in(view):
    """Login and a staff binding (``scope_of``); the permission is the action's or ``care_access``'s to check,
    because a five-for-one member may care for a case outside their own part of the district."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, scope=scope_of(request.user), **kwargs)

    return wrapper


def care_case(request, case_id: int) -> ControlCase:
    """A case the user may care for (their subtree with CARE, or their five-for-one team), else 403 / 404."""
    return checkins.care_access(request.user, case_id)


def form_errors(form) -> str:
    """A form's errors as one message line."""
    return "; ".join(" ".join(v) for v in form.errors.values())


def back_to_case(case_id: int, anchor: str = "") -> str:
    return reverse("control:case", args=[case_id]) + (f"#{anchor}" if anchor else "")


def result_buttons() -> list[tuple[str, str]]:
    return [(r.value, str(r.label)) for r in RESULT_BUTTONS]


def qr_svg(url: str) -> str:
    import qrcode
    from qrcode.image.svg import SvgPathImage

    return mark_safe(qrcode.make(url, image_factory=SvgPathImage, border=1).to_string(encoding="unicode"))  # noqa: S308
