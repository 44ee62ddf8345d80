"""Small request and response helpers every app's views share: parameters parsed strictly, HTMX detection,
and the one file-download response (which writes the export's audit row itself, so no view forgets it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse

from . import audit
from .errors import Refused

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF = "application/pdf"
CSV = "text/csv; charset=utf-8"
BIG = 2**62  # the largest id a query may carry (beyond a 64-bit column, a lookup would fail in the database)
# The window every date from outside must fall in: far enough for birth dates and plans, near enough that adding
# a year or a period to it never leaves the calendar (dt.date.max + 1 day is an OverflowError, a 500).
FIRST_DATE = dt.date(1900, 1, 1)
LAST_DATE = dt.date(2100, 12, 31)


def int_param(value, *, low: int = 1, high: int = BIG) -> int:
    """A whole number from a URL or form parameter, within [low, high]; anything else is a 404, not a 500."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise Http404("not a number") from None
    if not low <= number <= high:
        raise Http404("number out of range")
    return number


def whole(value, *, low: int = 0, high: int = BIG) -> int | None:
    """A whole number written in ASCII digits within [low, high], or None (``"²".isdigit()`` is true, yet
    ``int("²")`` fails: never test with ``isdigit`` alone)."""
    text = str(value if value is not None else "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if low <= number <= high else None


def safe_next(request, default: str) -> str:
    """Where a form goes back to: ``next`` (form, else query) if it is a path or URL of this very site (same host,
    an allowed scheme, https when the request was), else ``default`` (a URL or a URL name). The one check against
    open redirects: every ``next=`` goes through it."""
    from django.shortcuts import resolve_url
    from django.utils.http import url_has_allowed_host_and_scheme

    target = (request.POST.get("next") or request.GET.get("next") or "").strip()
    # a path from the root or a full URL; a bare word would be taken for a URL name by redirect()
    if target and target.startswith(("/", "http://", "https://")) and "\\" not in target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return resolve_url(default)


def client_address(request) -> str:
    """The client's address: behind a proxy (BIHUAN_BEHIND_PROXY) the last X-Forwarded-For entry, the one our
    own proxy added (earlier entries are the client's to forge)."""
    from django.conf import settings

    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded.strip():
            return forwarded.split(",")[-1].strip()[:100]
    return request.META.get("REMOTE_ADDR", "")[:100]


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def download(data: bytes, filename: str, *, content_type: str = XLSX, acting_user=None, audit_action: str = "",
             target=None, changes: dict | None = None, inline: bool = False) -> HttpResponse:
    """A file response; with ``audit_action`` it also writes the audit row of this export (who, what, when)."""
    if audit_action:
        audit.record(actor=acting_user, action=audit_action, target=target, changes=changes or {})
    response = HttpResponse(data, content_type=content_type)
    disposition = "inline" if inline else "attachment"
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "")
    response["Content-Disposition"] = f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return response


def date_param(value: str | None, default: dt.date | None = None, *, low: dt.date = FIRST_DATE,
               high: dt.date = LAST_DATE) -> dt.date | None:
    """An ISO date from a URL or form parameter (``2022-03-04``) within [low, high] (1900-2100 unless told);
    missing, unreadable or outside the window gives ``default``."""
    parsed = parse_date(value, low=low, high=high)
    return default if parsed is None else parsed


def parse_date(value, *, low: dt.date = FIRST_DATE, high: dt.date = LAST_DATE) -> dt.date | None:
    """The date ``value`` names (ISO ``2022-03-04``, or a longer ISO datetime whose first 10 characters are one),
    if it lies within [low, high]; else None. The one place outside text becomes a date."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        day = value
    else:
        text = str(value or "").strip()
        if not text or not text.isascii():
            return None
        try:
            day = dt.date.fromisoformat(text[:10])
        except ValueError:
            return None
    return day if low <= day <= high else None


def in_window(day: dt.date | None) -> dt.date | None:
    """``day`` if it is within the sane window, else None (for dates already parsed elsewhere)."""
    return day if day is not None and FIRST_DATE <= day <= LAST_DATE else None


def _moment_in_window(value: dt.datetime) -> dt.datetime:
    if not FIRST_DATE <= value.date() <= LAST_DATE:
        raise ValueError(f"must lie between {FIRST_DATE} and {LAST_DATE}")
    return value


def _api_types():
    from pydantic import AfterValidator, Field

    day = Annotated[dt.date, Field(ge=FIRST_DATE, le=LAST_DATE)]
    moment = Annotated[dt.datetime, AfterValidator(_moment_in_window)]
    whole = Annotated[int, Field(ge=-BIG, le=BIG)]
    return day, moment, whole


# The API's dates, moments and ids from outside: the same window and range as the pages (422 outside it).
ApiDay, ApiMoment, ApiInt = _api_types()


class StrictInputMiddleware:
    """Refuses (400) a request whose path, query string, form fields or JSON body carry a NUL character: no page
    means one, PostgreSQL cannot store one (a 500 there), and it hides text from whoever reads a log."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._has_nul(request):
            text = "请求含有无效字符 (the request contains a NUL character)"
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": text}, status=400)
            return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def process_view(request, view_func, view_args, view_kwargs):
        # A whole number in the path (``<int:…>``) beyond what a 64-bit column holds names nothing: 404 here, once,
        # instead of an OverflowError in whichever lookup meets it first.
        for value in list(view_args) + list(view_kwargs.values()):
            if isinstance(value, int) and not -BIG <= value <= BIG:
                raise Http404("number out of range")
        return None

    @staticmethod
    def _has_nul(request) -> bool:
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return True
        if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.GET.lists()):
            return True
        if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return False
        content_type = request.META.get("CONTENT_TYPE", "")
        if content_type.startswith("application/json"):
            body = request.body
            return b"\x00" in body or b"\\u0000" in body
        if content_type.startswith("multipart/form-data") and request.path.startswith("/api/"):
            return False  # the API reads its own body (JSON or an upload); its fields are checked where parsed
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            try:
                fields = request.POST
            except Exception:  # a malformed body: the view's own parsing answers it
                return False
            return any("\x00" in k or any("\x00" in v for v in vs) for k, vs in fields.lists())
        return False


def public_url(request, path: str) -> str:
    """An address for people outside (QR codes, links to copy, SMS): ``settings.PUBLIC_URL`` when it is set — the
    host the printing browser happens to use may be an internal one — else the request's own host."""
    from django.conf import settings

    base = (getattr(settings, "PUBLIC_URL", "") or "").rstrip("/")
    return base + path if base else request.build_absolute_uri(path)


def said(request, action: Callable[[], Any], done: str | Callable[[Any], str] = "") -> Any:
    """Run a form's action and say how it went on the next page: ``done`` (or ``done(result)``) when it worked, the
    reason when it was refused (``Refused``: nothing raised). Returns the action's result, None when refused."""
    try:
        result = action()
    except Refused as exc:
        messages.error(request, exc.message)
        return None
    if done:
        messages.success(request, done(result) if callable(done) else done)
    return result

