"""Small request and response helpers every app's views share: parameters parsed strictly, HTMX detection,
and the one file-download response (which writes the export's audit row itself, so no view forgets it)."""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
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


# The window as the OpenAPI schema states it: a date of those years (format `date` rules out 2023-02-30), a moment
# (RFC 3339, with its offset) whose date part is one. The whole moment is spelt out: a pattern on its date alone
# would leave a generator drawing from all years and throwing nearly all away.
DAY_PATTERN = r"^(19[0-9]{2}|20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
MOMENT_PATTERN = (r"^(19[0-9]{2}|20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
                  r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")


def _day_from_text(value):
    """An API date: ``YYYY-MM-DD`` within the window, nothing else (pydantic alone would read ``0`` as 1970-01-01
    and ``2022-03-04T00:00`` as a date)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value  # a default
    if not isinstance(value, str) or not re.fullmatch(DAY_PATTERN, value):
        raise ValueError(f"a date YYYY-MM-DD from {FIRST_DATE} to {LAST_DATE}")
    return dt.date.fromisoformat(value)


def _moment_from_text(value):
    """An API moment: an RFC 3339 date-time with its offset, dated within the window (not a number of seconds)."""
    if isinstance(value, dt.datetime):
        return value  # a default
    if not isinstance(value, str) or not re.fullmatch(MOMENT_PATTERN, value):
        raise ValueError(f"a date-time such as 2022-03-04T08:00:00+08:00, dated from {FIRST_DATE} to {LAST_DATE}")
    return value


TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


def _time_from_text(value):
    """An API time of day: local ``HH:MM`` or ``HH:MM:SS``, no offset (it is the district's clock)."""
    if isinstance(value, dt.time):
        return value  # a default
    if not isinstance(value, str) or not re.fullmatch(TIME_PATTERN, value):
        raise ValueError("a local time such as 22:00")
    return dt.time.fromisoformat(value)


def _with_offset(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a date-time with its UTC offset (Z or +08:00)")
    return value


def _json_type(annotation, value, where: str) -> None:
    """``value`` is of the JSON type ``annotation`` says: a boolean for ``bool`` (not 0 or "yes"), a number without a
    fraction for ``int`` (not "5" or true), a string for a time; lists item by item. Pydantic's own checks follow."""
    if value is None:
        return
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    if options:
        kinds = [a for a in options if a is not type(None)]
        if len(kinds) == 1:
            _json_type(kinds[0], value, where)
        return
    if annotation is bool and not isinstance(value, bool):
        raise ValueError(f"{where}: true or false")
    if annotation is int and (isinstance(value, bool) or not (
            isinstance(value, int) or isinstance(value, float) and value.is_integer())):
        raise ValueError(f"{where}: a whole number")
    if annotation is dt.time and not isinstance(value, str):
        raise ValueError(f"{where}: a time such as 08:00")
    if typing.get_origin(annotation) is list and isinstance(value, list):
        (item,) = typing.get_args(annotation) or (typing.Any,)
        for i, v in enumerate(value):
            _json_type(item, v, f"{where}[{i}]")


def _api_types():
    from ninja import Schema
    from ninja.schema import DjangoGetter
    from pydantic import (
        AfterValidator,
        BaseModel,
        BeforeValidator,
        ConfigDict,
        Field,
        WithJsonSchema,
        model_validator,
    )

    day = Annotated[dt.date, BeforeValidator(_day_from_text),
                    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN})]
    moment = Annotated[dt.datetime, BeforeValidator(_moment_from_text), AfterValidator(_with_offset),
                       WithJsonSchema({"type": "string", "format": "date-time", "pattern": MOMENT_PATTERN})]
    whole = Annotated[int, Field(ge=-BIG, le=BIG)]
    clock = Annotated[dt.time, BeforeValidator(_time_from_text),
                      WithJsonSchema({"type": "string", "pattern": TIME_PATTERN})]

    def json_object(cls, data):
        if isinstance(data, DjangoGetter):  # ninja's second pass over the same body
            data = data._obj
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        for name, field in cls.model_fields.items():
            if name in data:
                _json_type(field.annotation, data[name], name)
        return data

    class ApiIn(Schema):
        """The base of every JSON body the API reads: an object (ninja's Schema alone reads the attributes of any
        value, so ``[]`` or ``true`` would pass for an empty body), of the declared fields only (a misspelt field
        is a 422, not a silent no-op; the schema says ``additionalProperties: false``), each of its JSON type."""

        model_config = ConfigDict(extra="forbid")
        _json_object = model_validator(mode="before")(classmethod(json_object))

    class ApiInPlain(BaseModel):
        """``ApiIn`` as a plain pydantic model, for a hot path (no ninja root validator)."""

        model_config = ConfigDict(extra="forbid")
        _json_object = model_validator(mode="before")(classmethod(json_object))

    return day, moment, whole, clock, ApiIn, ApiInPlain


# A phone as the API states it: a mainland mobile (+86 or 0086 before it allowed) or a landline with its area code
# (a dash after it allowed), or "" for none. The register's parser reads more (any separators): the schema names the
# plain forms.
PHONE_PATTERN = (r"^$|^\s*((\+86|0086)[ -]?)?1[3-9][0-9]{9}\s*$|^\s*0[0-9]{2,3}-?[0-9]{7,8}\s*$")


def ApiText(max_length: int):  # noqa: N802 (a type, named as one)
    """A required text of the API: at most ``max_length`` characters, not blank (what the actions check after
    stripping), stated in the schema as ``minLength``, ``maxLength`` and the pattern ``\\S``."""
    from pydantic import Field

    return Annotated[str, Field(min_length=1, max_length=max_length, pattern=r"\S")]


# The API's dates, moments, ids and bodies from outside: the same window and range as the pages (422 outside it),
# exactly what the schema says (a request the schema allows is read; one it does not is a 422).
ApiDay, ApiMoment, ApiInt, ApiTime, ApiIn, ApiInPlain = _api_types()


class StrictInputMiddleware:
    """Refuses (400) a request whose path, query string, form fields or JSON body carry a NUL character: no page
    means one, PostgreSQL cannot store one (a 500 there), and it hides text from whoever reads a log."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._has_nul(request):
            text = "请求含有无效字符 (the request contains a NUL character)"
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": text, "field": None}, status=400)  # the API's 400 shape
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

