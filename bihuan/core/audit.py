"""Audit rows. Every action function calls ``record`` inside its transaction."""

from __future__ import annotations

from typing import Any

from django.db import connection

from .models import AuditEntry


def record(*, actor, action: str, target=None, target_type: str = "", target_id: Any = "",
           changes: dict | None = None, unit=None) -> AuditEntry:
    """Write one audit row. ``unit`` defaults to the actor's own unit."""
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
    actor_unit_id = getattr(unit, "pk", None)
    if actor_unit_id is None and actor is not None and getattr(actor, "is_authenticated", False):
        staff = getattr(actor, "staff", None) if hasattr(actor, "staff") else None
        actor_unit_id = getattr(staff, "unit_id", None)
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_unit_id=actor_unit_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        changes=changes or {},
    )


def insert_sql() -> str:
    """The audit row of an anonymous actor (a resident's link) as ``INSERT … SELECT`` SQL, for a hot path that
    writes it in the same statement or transaction as its change; append ``FROM <rows>`` to write one per
    row. Parameters: %(now)s (adapted for the database), %(action)s, %(target_type)s, %(target_id)s."""
    q = connection.ops.quote_name
    return (f"INSERT INTO {q(AuditEntry._meta.db_table)} (created_at, actor_id, actor_unit_id, action, target_type, "
            "target_id, changes) SELECT %(now)s, NULL, NULL, %(action)s, %(target_type)s, %(target_id)s, '{}'")
