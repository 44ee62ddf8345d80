"""Audit rows. Every action function calls ``record`` inside its transaction; list and API pages that read personal
data in bulk call ``bulk_read`` (one row per request).

The rows form a hash chain so that an edit or a deletion cannot go unnoticed: ``seal`` gives each row not yet
sealed, in the order of its id, the next ``seq`` and ``hash = sha256(previous hash | canonical content)``.
Writers pay nothing for it (a plain INSERT, whatever path wrote the row: ``record``, ``insert_sql``, bulk_create);
the worker seals every tick, serialised by a PostgreSQL advisory lock (SQLite's IMMEDIATE transactions
serialise it there), so two sealers never fork the chain. ``verify`` walks the chain and names the first broken
link. On PostgreSQL the app's role may only INSERT rows and set ``seq``/``hash`` once (docs/security.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from .models import AuditEntry

CHAIN_LOCK = 0x6269_6175  # pg_advisory_xact_lock key of the sealer ("biau")
SEAL_BATCH = 5000


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


def bulk_read(*, actor, what: str, filters: dict, count: int, target_type: str = "") -> AuditEntry:
    """One row for one request that read personal data in bulk (a list page, an API page, an export): who, which
    list, with which filters, how many records it returned. One INSERT."""
    return record(actor=actor, action="read.bulk", target_type=target_type or what.rsplit(".", 1)[-1],
                  target_id=what, changes={"list": what, "filters": {k: v for k, v in filters.items() if v not in
                                                                    ("", None)}, "count": count})


def insert_sql() -> str:
    """The audit row of an anonymous actor (a resident's link) as ``INSERT … SELECT`` SQL, for a hot path that
    writes it in the same statement or transaction as its change; append ``FROM <rows>`` to write one per
    row. Parameters: %(now)s (adapted for the database), %(action)s, %(target_type)s, %(target_id)s."""
    q = connection.ops.quote_name
    return (f"INSERT INTO {q(AuditEntry._meta.db_table)} (created_at, actor_id, actor_unit_id, action, target_type, "
            "target_id, changes, hash) SELECT %(now)s, NULL, NULL, %(action)s, %(target_type)s, %(target_id)s, '{}', ''")


# ---------------------------------------------------------------------------------------------- the chain

_FIELDS = ("id", "created_at", "actor_id", "actor_unit_id", "action", "target_type", "target_id", "changes")


def content(row: dict) -> str:
    """The canonical text of a row's content (what its hash covers): the same on SQLite and PostgreSQL."""
    created = row["created_at"]
    return json.dumps([row["id"], created.isoformat(timespec="microseconds") if created else None, row["actor_id"],
                       row["actor_unit_id"], row["action"], row["target_type"], row["target_id"], row["changes"]],
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def link(previous: str, row: dict) -> str:
    return hashlib.sha256(f"{previous}|{content(row)}".encode()).hexdigest()


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])


def seal(limit: int = SEAL_BATCH) -> int:
    """Chain up to ``limit`` unsealed rows (oldest id first). Returns how many were sealed. Idempotent; any number
    of workers may call it at once (they queue on the lock)."""
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    with transaction.atomic():
        _lock()
        head = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").values("seq", "hash").first()
        seq, previous = (head["seq"], head["hash"]) if head else (0, "")
        rows = list(AuditEntry.objects.filter(seq__isnull=True).order_by("id").values(*_FIELDS)[:limit])
        if not rows:
            return 0
        updates = []
        for row in rows:
            seq += 1
            previous = link(previous, row)
            updates.append((seq, previous, row["id"]))
        with connection.cursor() as cursor:
            # The row is sealed once: a sealed row is never rewritten (seq IS NULL in the WHERE).
            cursor.executemany(f"UPDATE {table} SET seq = %s, hash = %s WHERE id = %s AND seq IS NULL", updates)
    return len(rows)


def seal_all() -> int:
    total = 0
    while n := seal():
        total += n
    return total


@dataclass
class Verdict:
    checked: int
    unsealed: int
    broken_seq: int | None = None  # the first link that does not hold
    broken_id: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify(batch: int = 5000) -> Verdict:
    """Walk the chain in ``seq`` order; the first row whose seq is not the next one (a row deleted), or whose hash
    is not sha256(previous hash | its content) (a row edited), is the broken link."""
    previous, expected, checked, after = "", 1, 0, 0
    while True:
        rows = list(AuditEntry.objects.filter(seq__gt=after).order_by("seq").values(*_FIELDS, "seq", "hash")[:batch])
        if not rows:
            break
        for row in rows:
            if row["seq"] != expected:
                return Verdict(checked, _unsealed(), expected, row["id"],
                               f"link {expected} is missing (a row was deleted before row {row['id']})")
            if link(previous, row) != row["hash"]:
                return Verdict(checked, _unsealed(), row["seq"], row["id"],
                               f"row {row['id']} (link {row['seq']}) does not match its hash: it was changed")
            previous, expected, checked, after = row["hash"], expected + 1, checked + 1, row["seq"]
    return Verdict(checked, _unsealed())


def _unsealed() -> int:
    return AuditEntry.objects.filter(seq__isnull=True).count()


def register_task() -> None:
    from .worker import task

    @task("audit.seal")
    def _seal(worker_id: str) -> int:
        return seal()
