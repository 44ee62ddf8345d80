"""The error answers of ``/api/v1/``, in one place: their shapes, and which operations may give which
(``document_errors``, applied once to every operation in ``bihuan/api.py``), so the OpenAPI schema lists every
status an operation can answer with and what its body looks like. A route names only what is its own
(``429`` of a throttled reveal, ``503`` of an import that is not available); never these.

| status | shape | given by |
|---|---|---|
| 400 | ``RefusedOut`` | a rule of the action refused it (``core.errors.Refused``, rendered in ``bihuan/api.py``); a NUL
  character anywhere in the request (``core.http.StrictInputMiddleware``); a body that is not JSON |
| 401 | ``ErrorOut`` | no, or a bad, token or session (``core.api_auth``) |
| 403 | ``ErrorOut`` | the role lacks the permission; a read-only token that writes; CSRF of a session |
| 404 | ``ErrorOut`` | an id (path, query or body) that names nothing in the caller's part of the district |
| 409 | ``RefusedOut`` | the object's state forbids it now: closed, cancelled, already decided (``Refused(status=409)``) |
| 413 | ``RefusedOut`` | a body over the limit of its path (``core.uploads.UploadLimitMiddleware``) |
| 422 | ``ValidationErrorOut`` | the request does not match the operation's schema (ninja's validation) |
"""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import Field


class ErrorOut(Schema):
    detail: str


class RefusedOut(ErrorOut):
    field: str | None = Field(description="the field refused, as named in the request (`people[1].id_number`); "
                                          "null for the request as a whole")


class ValidationIssue(Schema):
    type: str = Field(description="pydantic's error type (`missing`, `int_parsing`, `less_than_equal`, …)")
    loc: list[str | int] = Field(description="where: `query`, `path` or `body`, then the field's path")
    msg: str


class ValidationErrorOut(Schema):
    detail: list[ValidationIssue]


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_responses(methods, has_input: bool) -> dict[int, type[Schema]]:
    """The error statuses an operation of ``methods`` may answer with, with their shapes; ``has_input``: the
    operation reads a path or query parameter or a body."""
    errors: dict[int, type[Schema]] = {400: RefusedOut, 401: ErrorOut, 403: ErrorOut}
    if has_input:
        errors.update({404: ErrorOut, 422: ValidationErrorOut})
    if WRITE_METHODS & set(methods):
        errors.update({409: RefusedOut, 413: RefusedOut})
    return dict(sorted(errors.items()))


def document_errors(api: Any) -> int:
    """Add the error responses to every operation of ``api`` that does not name them itself: the schema documents
    them, and a route may return them as ``(status, body)``. Returns the number of operations."""
    count = 0
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                has_input = bool(operation.models)
                for status, model in error_responses(operation.methods, has_input).items():
                    if status not in operation.response_models:
                        operation.response_models[status] = operation._create_response_model(model)
                count += 1
    return count
