"""The one error type that actions raise when they refuse their input.

``Refused(field, message)`` names the field (a form field, a workbook column, ``""`` for the whole request)
and says why, in words shown to the user as they are. Pages render it beside the field; the API answers
every refusal with status 400 and the same JSON shape, ``{"detail": "<field>: <message>", "field": …}``
(see ``bihuan/api.py``). Each app may subclass it (``RoutingError(Refused)``) to be caught narrowly.
"""

from __future__ import annotations

import re


class Refused(ValueError):
    """An action refused its input. ``Refused("unit", "choose a township")`` or ``Refused("unit: choose …")``."""

    def __init__(self, field: str, message: str | None = None):
        if message is None:  # the one-string form "field: message" (or a message about no field at all)
            head, sep, tail = field.partition(":")
            field, message = (head.strip(), tail.strip()) if sep and head and " " not in head.strip() else ("", field)
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)

    @property
    def base_field(self) -> str:
        """The field's name without an index or sub-key (``feedback_form[2].key`` → ``feedback_form``)."""
        return re.split(r"[\[.]", self.field, maxsplit=1)[0]
