"""Small request and response helpers every app's views share: parameters parsed strictly, HTMX detection,
and the one file-download response (which writes the export's audit row itself, so no view forgets it)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from django.http import Http404, HttpResponse

from . import audit

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF = "application/pdf"
CSV = "text/csv; charset=utf-8"
BIG = 2**62  # the largest id a query may carry (beyond a 64-bit column, a lookup would fail in the database)


def int_param(value, *, low: int = 1, high: int = BIG) -> int:
    """A whole number from a URL or form parameter, within [low, high]; anything else is a 404, not a 500."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise Http404("not a number") from None
    if not low <= number <= high:
        raise Http404("number out of range")
    return number


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


def date_param(value: str | None, default: dt.date | None = None) -> dt.date | None:
    """An ISO date from a URL parameter (``2022-03-04``); missing or unreadable gives ``default``."""
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return default


def public_url(request, path: str) -> str:
    """An address for people outside (QR codes, links to copy, SMS): ``settings.PUBLIC_URL`` when it is set — the
    host the printing browser happens to use may be an internal one — else the request's own host."""
    from django.conf import settings

    base = (getattr(settings, "PUBLIC_URL", "") or "").rstrip("/")
    return base + path if base else request.build_absolute_uri(path)
