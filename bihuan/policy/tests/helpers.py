"""Helpers the tests of this app share (imported, never copied)."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

from bihuan.policy.models import Protocol


def load_default_protocols() -> dict[str, Protocol]:
    """The protocols the data migration ships (a transactional test elsewhere may have flushed them)."""
    migration = importlib.import_module("bihuan.pushes.migrations.0002_default_protocols")
    migration.add_protocols(SimpleNamespace(get_model=lambda app, name: Protocol), None)  # the model moved to policy
    return {p.name: p for p in Protocol.objects.all()}
