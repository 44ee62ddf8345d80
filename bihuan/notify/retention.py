from bihuan.core.retention import purger

from .models import Message, State


@purger("delivered or dead notifications")
def purge_messages(before) -> int:
    """Message bodies and SMS numbers are personal data; delivered and dead ones go (inbox items with them)."""
    deleted, _ = Message.objects.filter(created_at__date__lt=before, state__in=[State.SENT, State.DEAD]).delete()
    return deleted
