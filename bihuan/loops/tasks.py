from django.db.models import Q
from django.utils import timezone

from bihuan.core.worker import claim, task

from .engine import remind_round
from .models import OPEN_STATES, Loop


@task("loops.remind")
def remind_due(owner: str) -> int:
    """Claim loops whose reminder time has come and run one round over them."""
    now = timezone.now()
    due = Loop.objects.filter(Q(state__in=OPEN_STATES), next_reminder_at__lte=now).order_by("next_reminder_at")
    handled = 0
    while True:
        loops = claim(due, owner=owner, limit=500, lease_seconds=120)
        if not loops:
            return handled
        handled += remind_round(loops, now)
