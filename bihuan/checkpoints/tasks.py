"""The ``checkpoints.push`` worker task: registered people who need verification enter the push pipeline
seconds after their registration (``actions.push_pending``)."""

from __future__ import annotations

from bihuan.core.worker import task

from .actions import push_pending


@task("checkpoints.push")
def push_registered(owner: str) -> int:
    return push_pending(owner=owner)
