"""``python -m bench audit-chain``: sealing the audit log's hash chain (``bihuan.core.audit.seal``).

Writes N audit rows the way the app does (tiny: 20,000; demo: 100,000; yaodu: 300,000 — plain INSERTs, unsealed),
then times ``audit.seal_all()``: read the unsealed rows in id order, hash each onto the previous one, write ``seq`` and
``hash``. ``seconds`` is that time. Baseline: the physical limit of the same database work without the hashing — the
same SELECT of the same columns and an executemany UPDATE of the same two columns with precomputed values, through a
plain cursor. The verification (``audit.verify``, a read and a hash per row) is printed beside it. The rows are
removed at the end (the benchmark needs no district).
"""

from __future__ import annotations

import time

from bench.common import database, report

ROWS = {"tiny": 20_000, "demo": 100_000, "yaodu": 300_000}


def run(scale: str) -> dict:
    from django.db import connection, transaction
    from django.utils import timezone

    from bihuan.core import audit
    from bihuan.core.models import AuditEntry

    n = ROWS[scale]
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    audit.seal_all()  # whatever the database held before is chained first, untimed
    start_id = (AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0)
    now = timezone.now()
    AuditEntry.objects.bulk_create(
        [AuditEntry(created_at=now, action="bench.write", target_type="register.resident", target_id=str(i),
                    changes={"fields": ["id_number", "phone"], "reason": "verify: 核实身份", "n": i})
         for i in range(n)], batch_size=5000)
    print(f"database: {database()}; {n:,} unsealed audit rows written")

    t0 = time.perf_counter()
    sealed = audit.seal_all()
    seconds = time.perf_counter() - t0
    assert sealed == n, sealed

    # the baseline: the same read and the same two-column write, no hashing
    ids = list(AuditEntry.objects.filter(id__gt=start_id).order_by("id").values_list("id", flat=True))
    fake = "0" * 64
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for first in range(0, n, audit.SEAL_BATCH):
            chunk = ids[first:first + audit.SEAL_BATCH]
            list(AuditEntry.objects.filter(id__in=chunk).order_by("id").values(*audit._FIELDS))
            cursor.executemany(f"UPDATE {table} SET hash = %s WHERE id = %s", [(fake, i) for i in chunk])
    baseline = time.perf_counter() - t0
    with transaction.atomic():  # put the true hashes back for the verification
        AuditEntry.objects.filter(id__gt=start_id).update(seq=None, hash="")
        audit.seal_all()

    t0 = time.perf_counter()
    verdict = audit.verify()
    verify_seconds = time.perf_counter() - t0
    assert verdict.ok, verdict
    print(f"seal {seconds:.2f} s ({n / seconds:,.0f} rows/s); verify {verdict.checked:,} rows in {verify_seconds:.2f} s")
    AuditEntry.objects.filter(id__gt=start_id).delete()
    return report("audit-chain", scale, n, seconds, "SELECT + executemany UPDATE of seq/hash, no hashing",
                  baseline, verify_seconds=round(verify_seconds, 3))
