"""Reading the in-app inbox (writes are in actions.py)."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import InboxItem


def items_for(user) -> QuerySet[InboxItem]:
    """The user's own inbox, newest first. There is no other way to list inbox items."""
    return InboxItem.objects.filter(user=user).select_related("message").order_by("-id")


def unread_count(user) -> int:
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    return InboxItem.objects.filter(user=user, read_at__isnull=True).count()
