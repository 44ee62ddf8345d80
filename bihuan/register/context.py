"""The template context of every staff page: the signed-in user's scope."""

from django.core.exceptions import PermissionDenied

from .access import scope_of


def staff(request):
    """Make the signed-in user's scope (unit, role, permissions) available to every template."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    try:
        return {"scope": scope_of(user)}
    except PermissionDenied:
        return {}
