from bihuan.core.worker import claim, task

from .fanout import distribute
from .models import Directive, FanoutState


@task("directives.fanout")
def fanout_pending(owner: str) -> int:
    """Tell the receiving units of directives too large to fan out inside the issuing request, then write their
    household rows."""
    handled = 0
    todo = Directive.objects.exclude(fanout_state=FanoutState.DONE).order_by("pk")
    for directive in claim(todo, owner=owner, limit=1, lease_seconds=300):
        distribute(directive)
        handled += 1
    return handled
