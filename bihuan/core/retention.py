"""Retention of personal data. Each app registers how to purge what it keeps past the cutoff; the
`bihuan purge_personal` command runs them all. Purges keep rows (and so every count) where counts are
derived from them, and only empty the personal fields; every purger is set-based and idempotent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

PURGERS: dict[str, Callable[[dt.date], int]] = {}


def purger(name: str):
    """Register ``fn(before) -> rows purged`` under ``name`` (shown in the command's output)."""

    def register(fn):
        PURGERS[name] = fn
        return fn

    return register


def purge_all(before: dt.date) -> dict[str, int]:
    return {name: fn(before) for name, fn in PURGERS.items()}
