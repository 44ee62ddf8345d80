"""``python -m bench push-import-sql``: a pushed CSV list of ROWS people through the real import, twice, against
the same writes as plain SQL (``push-import`` measures a 50,000-row workbook against reading it).

1. **new**: a GBK CSV of ROWS people (valid ID numbers, phones, addresses from the register), uploaded by the
   command office and processed as the worker does — read, normalise, seal ID numbers and phones,
   de-duplicate, write the people and one result per row, route each person, open their verification loops.
   Baseline: the same writes as plain SQL — one ``INSERT … SELECT`` copying the people just written and one
   copying their result rows.
2. **re-push**: the same list from another source: every row merges into the person already there.
   Baseline: one ``UPDATE`` of those people and one ``INSERT … SELECT`` of the result rows.

n = rows per phase; seconds and baseline_seconds are the two phases together. Everything runs in one
transaction that is rolled back at the end, so the database is left as it was (the import's per-chunk
commits become savepoints: a few disk flushes fewer than in the worker).
"""

from __future__ import annotations

import csv
import io
import random
import time

from bench.common import database, ensure_scale, report

ROWS = 20_000


class _RollBack(Exception):
    pass


def run(scale: str) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from bihuan.pushes.importing import create_batch, process_batch

    ensure_scale(scale)
    office = get_user_model().objects.get(username="office")
    data = _list_file()
    print(f"database: {database()}; {ROWS:,} rows, {len(data):,} bytes of GBK CSV")
    times: dict[str, float] = {}
    try:
        with transaction.atomic():
            for phase, source in (("new", "bench:省大数据中心"), ("re-push", "bench:市卫健委")):
                start = time.perf_counter()
                batch = create_batch(data, "推送名单.csv", source=source, unit=office.staff.unit, acting_user=office)
                batch = process_batch(batch)
                times[phase] = time.perf_counter() - start
                assert batch.state == "done" and batch.rows_total == ROWS, (batch.state, batch.error)
                expected = (ROWS, 0) if phase == "new" else (0, ROWS)
                assert (batch.imported, batch.merged) == expected, (batch.imported, batch.merged)
                times[f"{phase} baseline"] = _baseline(batch, phase)
                print(f"{phase}: {times[phase]:.2f} s ({ROWS / times[phase]:,.0f} rows/s); "
                      f"plain SQL of the same writes {times[f'{phase} baseline']:.2f} s")
            raise _RollBack
    except _RollBack:
        pass
    return report("push-import-sql", scale, ROWS, times["new"] + times["re-push"],
                  "the same writes as plain SQL: INSERT … SELECT copies of the people and result rows (new), an "
                  "UPDATE of the people and a copy of the result rows (re-push)",
                  times["new baseline"] + times["re-push baseline"])


def _list_file() -> bytes:
    """ROWS people with valid ID numbers (born 1950–2009, region 110101), phones and register addresses."""
    from bihuan.core.personal import id_checksum
    from bihuan.register.models import Household

    rng = random.Random(1)
    addresses = list(Household.objects.order_by("id").values_list("address", flat=True)[:ROWS])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "身份证号", "手机号", "来源地", "抵达时间", "现住址"])
    for i in range(ROWS):
        body = f"110101{1950 + i % 60}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
        writer.writerow([f"推送{i}", body + id_checksum(body), f"139{rng.randrange(10**8):08d}", "北京市朝阳区",
                         "2022-03-05", addresses[i % len(addresses)]])
    return out.getvalue().encode("gbk")


def _baseline(batch, phase: str) -> float:
    """The phase's writes as plain SQL, timed."""
    from django.db import connection

    from bihuan.pushes.models import PushedPerson, PushRow

    q = connection.ops.quote_name

    def columns(model, skip=()):
        return [f.column for f in model._meta.concrete_fields if not f.primary_key and f.column not in skip]

    people, rows = q(PushedPerson._meta.db_table), q(PushRow._meta.db_table)
    person_cols = ", ".join(q(c) for c in columns(PushedPerson))
    row_cols = columns(PushRow, skip={"row_number"})
    start = time.perf_counter()
    with connection.cursor() as cur:
        if phase == "new":
            cur.execute(f"INSERT INTO {people} ({person_cols}) SELECT {person_cols} FROM {people} "
                        "WHERE first_batch_id = %s", [batch.pk])
        else:
            cur.execute(f"UPDATE {people} SET times_pushed = times_pushed + 1, last_pushed_at = %s WHERE id IN "
                        f"(SELECT person_id FROM {rows} WHERE batch_id = %s)",
                        [connection.ops.adapt_datetimefield_value(batch.uploaded_at), batch.pk])
        # The result rows again, numbered after the real ones (row numbers are unique per batch).
        names = ", ".join(q(c) for c in row_cols)
        cur.execute(f"INSERT INTO {rows} ({names}, row_number) SELECT {names}, row_number + %s FROM {rows} "
                    "WHERE batch_id = %s", [ROWS + 10, batch.pk])
    return time.perf_counter() - start
