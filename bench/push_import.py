"""``python -m bench push-import``: a pushed list as an Excel workbook through the real import, against reading it.

The list (``ROWS`` rows at yaodu scale: 50,000) is an .xlsx with the usual headers (序号, 姓名, 身份证号, 手机号,
性别, 来源地, 途经地, 抵达时间, 现住址, 所属乡镇（街道）) and what real lists hold: a fifth of the people are
registered residents (their real ID numbers: routed to their grid), the others carry addresses from the
register (routed by address), about 4 % are duplicates of an earlier row of the same file (phone written
another way), about 1 % have ID numbers Excel mangled (``1.10101199E+17`` as a number: imported as "ID to fix", to be
verified by phone), some have no
ID number but a phone, arrival dates come in several spellings, and a tenth are **re-pushed**: people an
earlier list (imported before the timing starts) already brought, who merge into the record already there.

Timed: ``create_batch`` (store the upload) and ``process_batch`` (what the worker runs: read, normalise, seal,
de-duplicate, write the people and one result per row, route each new person and open their verification loop
through the loop engine). Baseline: openpyxl alone reading the same file in read-only mode (every cell
value). The JSON line carries ``peak_mb``, the peak resident memory of the process (from after the district was
built, when this run had to build it).

Everything runs in one transaction rolled back at the end, so the database is left as it was (the import's
per-chunk commits become savepoints). On PostgreSQL a rolled-back run leaves its rows behind as dead tuples, and
their index entries, until a vacuum: where autovacuum is off (as on the machines here) every run would look its
keys up among all the runs before it. The tables the import writes are vacuumed before the timing and after the
rollback, so each run starts from a table as autovacuum keeps it.
"""

from __future__ import annotations

import io
import random
import resource
import time

from bench.common import database, ensure_scale, report

ROWS = {"tiny": 3_000, "demo": 20_000, "yaodu": 50_000}
EARLIER = {"tiny": 600, "demo": 4_000, "yaodu": 10_000}  # people of the earlier list
HEADERS = ["序号", "姓名", "身份证号", "手机号", "性别", "来源地", "途经地", "抵达时间", "现住址", "所属乡镇（街道）"]
ORIGINS = ["北京市朝阳区", "上海市浦东新区", "广东省深圳市南山区", "吉林省长春市", "天津市西青区", "陕西省西安市雁塔区"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文"


class _RollBack(Exception):
    pass


def run(scale: str) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from bihuan.pushes.importing import create_batch, process_batch
    from bihuan.pushes.models import PushedPerson

    ensure_scale(scale)
    _forget_peak()  # building the district, when this run had to, is not the import's memory
    rows, earlier_rows = ROWS[scale], EARLIER[scale]
    office = get_user_model().objects.get(username="office")
    earlier, data, expect = _workbooks(rows, earlier_rows)
    _vacuum()
    print(f"database: {database()}; {rows:,} rows, {len(data):,} bytes of xlsx "
          f"(and an earlier list of {earlier_rows:,} rows)")
    baseline = min(_read(data) for _ in range(2))
    print(f"openpyxl reading it (read-only): {baseline:.2f} s ({rows / baseline:,.0f} rows/s)")
    result: dict = {}
    try:
        with transaction.atomic():
            first = create_batch(earlier, "推送名单-前一批.xlsx", source="bench:省大数据中心", unit=office.staff.unit,
                                 acting_user=office)
            first = process_batch(first)
            assert first.state == "done", (first.state, first.error)
            before = PushedPerson.objects.count()
            start = time.perf_counter()
            batch = create_batch(data, "推送名单.xlsx", source="bench:市卫健委", unit=office.staff.unit,
                                 acting_user=office)
            batch = process_batch(batch)
            seconds = time.perf_counter() - start
            assert batch.state == "done" and batch.rows_total == rows, (batch.state, batch.error, batch.rows_total)
            made = PushedPerson.objects.count() - before
            routed = PushedPerson.objects.filter(first_batch=batch, routed_at__isnull=False).count()
            opened = _loops_opened(batch)
            print(f"import: {seconds:.2f} s ({rows / seconds:,.0f} rows/s): {batch.imported:,} imported, "
                  f"{batch.merged:,} merged, {batch.rejected:,} rejected; {routed:,} routed, {opened:,} "
                  f"verification loops opened")
            assert batch.imported == made == routed == opened, (batch.imported, made, routed, opened)
            to_fix = PushedPerson.objects.filter(first_batch=batch).exclude(id_problem="").count()
            assert to_fix + batch.rejected >= expect["mangled"], (to_fix, batch.rejected, expect)
            assert batch.merged >= expect["duplicates"] + expect["repushed"], (batch.merged, expect)
            result["seconds"] = seconds
            raise _RollBack
    except _RollBack:
        pass
    _vacuum()
    peak_mb = _peak_mb()
    print(f"peak memory of the process: {peak_mb:,.0f} MB")
    return report("push-import", scale, rows, result["seconds"],
                  "openpyxl reading the same workbook in read-only mode (every cell value)", baseline,
                  peak_mb=round(peak_mb, 1))


def _peak_mb() -> float:
    """The process's peak resident memory: Linux's ``VmHWM``, which ``_forget_peak`` resets. Not ``ru_maxrss``:
    that also counts the memory of the process that started this one as it was before ``exec`` (a test suite
    a gigabyte large made a 3,000-row run report 980 MB)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _forget_peak() -> None:
    """Start the process's peak resident memory (``VmHWM``) again from what it holds now (Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _vacuum() -> None:
    """PostgreSQL: VACUUM the tables the import writes (their dead tuples from rolled-back runs; see the module
    doc). Outside any transaction."""
    from django.db import connection

    from bihuan.core.models import AuditEntry
    from bihuan.loops.models import Loop, LoopEvent
    from bihuan.notify.models import InboxItem, Message
    from bihuan.pushes.models import PushBatch, PushedPerson, PushRow, Verification

    if connection.vendor != "postgresql":
        return
    tables = [m._meta.db_table for m in (PushBatch, PushRow, PushedPerson, Verification, Loop, LoopEvent, Message,
                                         InboxItem, AuditEntry)]
    with connection.cursor() as cursor:
        cursor.execute("VACUUM " + ", ".join(connection.ops.quote_name(t) for t in tables))


def _loops_opened(batch) -> int:
    from bihuan.loops.models import Loop
    from bihuan.pushes.models import VERIFICATION, PushedPerson

    people = PushedPerson.objects.filter(first_batch=batch).values("pk")
    return Loop.objects.filter(kind=VERIFICATION, subject_id__in=people).count()


def _read(data: bytes) -> float:
    from openpyxl import load_workbook

    start = time.perf_counter()
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    for ws in book.worksheets:
        ws.reset_dimensions()  # as the import reads (some writers store wrong dimensions)
        for _values in ws.iter_rows(values_only=True):
            pass
    book.close()
    return time.perf_counter() - start


def _workbooks(rows: int, earlier_rows: int) -> tuple[bytes, bytes, dict]:
    """(the earlier list, the list timed, what the timed list holds) — deterministic."""
    import datetime as dt

    from bihuan.core.personal import id_checksum
    from bihuan.register.models import Household, Resident, Unit

    rng = random.Random(1)
    addresses = list(Household.objects.order_by("id").values_list("address", flat=True)[:20_000])
    townships = dict(Unit.objects.filter(level=3).values_list("path", "name"))
    household_township = {}
    residents = list(Resident.objects.order_by("id").select_related("household")[: rows // 5])

    def township_of(path: str) -> str:
        return household_township.setdefault(path[:12], townships.get(path[:12], ""))

    def new_id(i: int) -> str:
        body = f"{rng.choice(['110101', '310115', '440305', '220102'])}{1950 + i % 60}{1 + i % 12:02d}" \
               f"{1 + i % 28:02d}{i % 1000:03d}"
        return body + id_checksum(body)

    def name() -> str:
        return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))

    def phone() -> str:
        return f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"

    def arrival(i: int):
        day = dt.date(2022, 3, 1) + dt.timedelta(days=i % 5)
        return rng.choice([day, f"{day:%Y年%-m月%-d日}", f"{day:%-m月%-d日}", f"{day:%Y/%m/%d}", f"{day:%Y-%m-%d} 08:30"])

    def person(i: int) -> list:
        if i % 5 == 0 and residents:
            r = residents[(i // 5) % len(residents)]
            return [r.name, r.reveal_id_number(), phone(), "", rng.choice(ORIGINS), "", arrival(i),
                    r.household.address, township_of(r.path)]
        return [name(), new_id(i), phone(), rng.choice("男女"), rng.choice(ORIGINS), rng.choice(["", "郑州", "石家庄"]),
                arrival(i), rng.choice(addresses), ""]

    earlier = [person(10**6 + i) for i in range(earlier_rows)]
    data: list[list] = []
    expect = {"duplicates": 0, "mangled": 0, "repushed": 0}
    for i in range(rows):
        roll = rng.random()
        if data and roll < 0.04:  # the same person again, the phone written with +86 and dashes
            again = list(rng.choice(data))
            if isinstance(again[2], str) and len(again[2]) == 11 and isinstance(again[1], str) and again[1]:
                again[2] = f"+86 {again[2][:3]}-{again[2][3:7]}-{again[2][7:]}"
                data.append(again)
                expect["duplicates"] += 1
                continue
        if roll < 0.05:  # Excel turned the ID number into a number and lost its tail
            row = person(i)
            row[1] = float(row[1][:-1]) * 10 if row[1][-1] == "X" else float(row[1])
            data.append(row)
            expect["mangled"] += 1
            continue
        if roll < 0.15 and earlier:  # pushed again: an earlier list brought them already
            data.append(list(earlier[(i * 7) % len(earlier)]))
            expect["repushed"] += 1
            continue
        row = person(i)
        if roll < 0.16:  # no ID number, a phone only
            row[1] = ""
        data.append(row)
    # Duplicates of re-pushed people count once as merges: the expectations are lower bounds.
    return _xlsx(earlier), _xlsx(data), expect


def _xlsx(rows: list[list]) -> bytes:
    """The workbook as Excel and WPS save it: text in the shared-strings table, dates as date cells, a title
    row above the header row. (openpyxl itself writes inline strings, which no spreadsheet program does.)"""
    import datetime as dt

    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                                     "strings_to_urls": False})
    sheet = book.add_worksheet("推送人员")
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, ["2022年3月5日大数据推送人员名单"])
    sheet.write_row(1, 0, HEADERS)
    for n, row in enumerate(rows, start=1):
        sheet.write_number(n + 1, 0, n)
        for col, value in enumerate(row, start=1):
            if isinstance(value, dt.date):
                sheet.write_datetime(n + 1, col, value, date_format)
            elif isinstance(value, float):
                sheet.write_number(n + 1, col, value)
            elif value:
                sheet.write_string(n + 1, col, value)
    book.close()
    return out.getvalue()
