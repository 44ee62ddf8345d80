"""The one error type that actions raise when they refuse their input.

``Refused(field, message)`` names the field (a form field, a workbook column, ``""`` for the whole request)
and says why, in words shown to the user as they are. Pages render it beside the field; the API answers
every refusal with status 400 and the same JSON shape, ``{"detail": "<field>: <message>", "field": …}``
(see ``bihuan/api.py``). Each app may subclass it (``RoutingError(Refused)``) to be caught narrowly.
"""

from __future__ import annotations

import errno
import re
import unicodedata

from django.utils.translation import gettext as _

CONFLICT = 409


class Refused(ValueError):
    """An action refused its input. ``Refused("unit", "choose a township")`` or ``Refused("unit: choose …")``.

    ``status`` is what the API answers: 400 for input no rule accepts; ``CONFLICT`` (409) for input that would be
    accepted but for the object's state now (a directive closed, a report-in already decided, a task not reported
    yet): the same request could succeed at another time. A subclass may set its own (``reveal.Throttled``: 429).
    """

    status = 400

    def __init__(self, field: str, message: str | None = None, *, status: int | None = None):
        if status is not None:
            self.status = status
        if message is None:  # the one-string form "field: message" (or a message about no field at all)
            head, sep, tail = field.partition(":")
            field, message = (head.strip(), tail.strip()) if sep and head and " " not in head.strip() else ("", field)
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)

    @classmethod
    def conflict(cls, field: str, message: str | None = None) -> Refused:
        """The refusal of a request that the object's state forbids now (the API answers 409)."""
        refused = cls(field) if message is None else cls(field, message)
        refused.status = CONFLICT
        return refused

    @property
    def base_field(self) -> str:
        """The field's name without an index or sub-key (``feedback_form[2].key`` → ``feedback_form``)."""
        return re.split(r"[\[.]", self.field, maxsplit=1)[0]


def whole_number(value, field: str, low: int, high: int, *, error: type[Refused] = Refused) -> int:
    """A whole number within [low, high] from a form, a workbook cell or JSON (full-width digits and an
    integral float such as Excel's ``3.0`` count; a bool does not), else ``error(field, …)``."""
    if isinstance(value, str) and value.strip():
        value = unicodedata.normalize("NFKC", value).strip()
        if re.fullmatch(r"[+-]?\d+", value):
            value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(field, _("应为整数"))
    if not low <= value <= high:
        raise error(field, _("应在 %(low)s 到 %(high)s 之间") % {"low": low, "high": high})
    return value


def disk_full(exc: BaseException | None) -> bool:
    """True if ``exc`` (or what caused it) says the disk is full: PostgreSQL's ``disk_full`` (SQLSTATE 53100,
    "could not extend file"), SQLite's "database or disk is full", or ENOSPC from the operating system."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "sqlstate", None) == "53100" or "database or disk is full" in str(exc):
            return True
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
