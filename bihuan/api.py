"""The versioned JSON API, /api/v1/, with its OpenAPI schema at /api/v1/openapi.json.

Each app contributes a ``router`` from its own ``api.py``; add new ones to ``ROUTERS`` below. Every
route requires authentication (``bihuan.core.api_auth.API_AUTH``: bearer token or session with CSRF).

The interactive docs page is off: without ``ninja`` in INSTALLED_APPS, ninja's Swagger page loads its
scripts from a public CDN, which a system holding personal data should not do. The schema itself (no
data, only shapes) is public at ``openapi.json``.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError

from bihuan.checkpoints.api import router as checkpoints_router
from bihuan.core.api_auth import API_AUTH
from bihuan.core.errors import Refused
from bihuan.directives.api import router as directives_router
from bihuan.forces.api import router as forces_router
from bihuan.inspections.api import router as inspections_router
from bihuan.notify.api import router as notify_router
from bihuan.pushes.api import router as pushes_router
from bihuan.register.api import router as register_router

api = NinjaAPI(
    title="Bihuan API",
    version="1",
    description="The register of the district, scoped to the caller's part of the tree. "
                "Authenticate with `Authorization: Bearer <key>` (see `bihuan create_token`).",
    urls_namespace="api-v1",
    docs_url=None,
    auth=API_AUTH,
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


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc: AuthenticationError):
    response = api.create_response(request, {"detail": str(exc)}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="bihuan"'
    return response


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
