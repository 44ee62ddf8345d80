"""The template context of every staff page: the signed-in user's scope."""

from django.core.exceptions import PermissionDenied

from bihuan.core.reveal import REASONS
from bihuan.core.roles import Perm

from .access import scope_of


def staff(request):
    """Make the signed-in user's scope (unit, role, permissions) available to every template."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    try:
        scope = scope_of(user)
    except PermissionDenied:
        return {}
    # the short list of reasons a reveal or a full export offers (core.reveal), for the forms that ask
    return {"scope": scope, "reveal_reasons": list(REASONS.items()) if scope.can(Perm.REVEAL_PERSONAL) else []}
