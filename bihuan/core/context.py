from django.core.exceptions import PermissionDenied


def staff(request):
    """Make the signed-in user's scope (unit, role, permissions) available to every template."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from bihuan.register.access import scope_of

    try:
        return {"scope": scope_of(user)}
    except PermissionDenied:
        return {}
