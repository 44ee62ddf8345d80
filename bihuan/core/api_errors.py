"""The error shapes every ``/api/v1/`` route answers with (one place, so the schema says the same everywhere):
``{"detail": …}`` for 401 / 403 / 404, and ``{"detail": "<field>: <message>", "field": …}`` for a refusal
(400, rendered from ``core.errors.Refused`` by the handler in ``bihuan/api.py``)."""

from __future__ import annotations

from ninja import Schema


class ErrorOut(Schema):
    detail: str


class RefusedOut(ErrorOut):
    field: str | None


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut}  # every route: not signed in, not allowed, not found
WRITE_ERRORS = {400: RefusedOut, **ERRORS}  # routes that may refuse their input
