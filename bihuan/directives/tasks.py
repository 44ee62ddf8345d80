from bihuan.core.worker import claim, task

from .fanout import run_fanout
from .models import Directive, FanoutState


@task("directives.fanout")
def fanout_pending(owner: str) -> int:
    """Write the household rows of directives too large to fan out inside the issuing request."""
    handled = 0
    todo = Directive.objects.exclude(fanout_state=FanoutState.DONE).order_by("pk")
    for directive in claim(todo, owner=owner, limit=1, lease_seconds=300):
        run_fanout(directive)
        handled += 1
    return handled
