"""The ``pushes.process`` worker task: process pushed lists too large to process inside the upload."""

from __future__ import annotations

from bihuan.core.worker import claim, task

from .importing import LEASE_SECONDS, process_batch
from .models import BatchState, PushBatch


@task("pushes.process")
def process_pending(owner: str) -> int:
    """Claim one pending (or abandoned) batch at a time and process it; a crash resumes where it stopped."""
    handled = 0
    todo = PushBatch.objects.filter(state__in=[BatchState.PENDING, BatchState.RUNNING]).order_by("pk")
    for batch in claim(todo, owner=owner, limit=1, lease_seconds=LEASE_SECONDS):
        process_batch(batch, owner=owner)
        handled += 1
    return handled
