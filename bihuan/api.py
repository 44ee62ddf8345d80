"""The versioned JSON API, /api/v1/, with its OpenAPI schema at /api/v1/openapi.json.

Each app contributes a ``router`` from its own ``api.py``; add new ones to ``ROUTERS`` below. Every
route requires authentication (``bihuan.core.api_auth.API_AUTH``: bearer token or session with CSRF). The error
answers (400, 401, 403, 404, 409, 413, 422) are documented on every operation at once, below
(``bihuan.core.api_errors``): a route declares only its success and what is its own.

The interactive docs page is off: without ``ninja`` in INSTALLED_APPS, ninja's Swagger page loads its
scripts from a public CDN, which a system holding personal data should not do. The schema itself (no
data, only shapes) is public at ``openapi.json``.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from bihuan.checkpoints.api import router as checkpoints_router
from bihuan.core.api_auth import API_AUTH
from bihuan.core.api_errors import document_errors
from bihuan.core.errors import Refused
from bihuan.directives.api import router as directives_router
from bihuan.forces.api import router as forces_router
from bihuan.inspections.api import router as inspections_router
from bihuan.notify.api import router as notify_router
from bihuan.pushes.api import router as pushes_router
from bihuan.register.api import router as register_router


class _Encoder(NinjaJSONEncoder):
    def default(self, o):
        # Before 1901 Asia/Shanghai is local mean time, +08:05:43: RFC 3339 (the schema's date-time) has no seconds
        # in an offset, so such a moment is written in UTC.
        if isinstance(o, dt.datetime) and o.utcoffset() is not None and o.utcoffset().seconds % 60:
            o = o.astimezone(dt.UTC)
        return super().default(o)


class _Renderer(JSONRenderer):
    encoder_class = _Encoder


api = NinjaAPI(
    title="Bihuan API",
    version="1",
    description="The register of the district, scoped to the caller's part of the tree. "
                "Authenticate with `Authorization: Bearer <key>` (see `bihuan create_token`).",
    urls_namespace="api-v1",
    docs_url=None,
    auth=API_AUTH,
    renderer=_Renderer(),
)

# (prefix, router): every app's routes, in the order they appear in the schema.
ROUTERS = [
    ("", register_router),
    ("/directives", directives_router),
    ("/pushes", pushes_router),
    ("/inspections", inspections_router),
    ("", notify_router),
    ("", checkpoints_router),
    ("", forces_router),
]
for _prefix, _router in ROUTERS:
    api.add_router(_prefix, _router)
OPERATIONS = document_errors(api)


def _schema_names() -> None:
    """Two models of one name would be one schema in openapi.json (the other route documented wrongly): refuse."""
    import typing

    from pydantic import BaseModel

    names: dict[str, type] = {}

    def walk(t) -> None:
        if isinstance(t, type) and issubclass(t, BaseModel):
            if names.setdefault(t.__name__, t) is not t:
                raise ImportError(f"two API schemas named {t.__name__}: {names[t.__name__]} and {t}")
            for field in t.model_fields.values():
                walk(field.annotation)
        for arg in typing.get_args(t):
            walk(arg)

    for _p, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                for wrapper in [*operation.models, *operation.response_models.values()]:
                    for field in getattr(wrapper, "model_fields", {}).values():  # ninja's own, not in the schema
                        walk(field.annotation)


_schema_names()


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc: AuthenticationError):
    response = api.create_response(request, {"detail": str(exc)}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="bihuan"'
    return response


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    # ninja's own (a body that is not JSON: 400) and core.api_auth's (a read-only token that writes: 403)
    body = {"detail": str(exc)}
    if exc.status_code == 400:
        body["field"] = None  # every 400 of the API has the shape of a refusal
    return api.create_response(request, body, status=exc.status_code)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc: PermissionDenied):
    return api.create_response(request, {"detail": str(exc) or "permission denied"}, status=403)


@api.exception_handler(Http404)
def _not_found(request, exc: Http404):
    # access_* give the same message for "does not exist" and "outside your part of the district".
    return api.create_response(request, {"detail": str(exc) or "not found"}, status=404)


@api.exception_handler(Refused)
def _refused(request, exc: Refused):
    # Every refusal of every app, one shape: {"detail": "<field>: <message>", "field": "<field>" | null}.
    return api.create_response(request, {"detail": str(exc), "field": exc.field or None},
                               status=getattr(exc, "status", 400))  # 429 for a throttled reveal
