"""Importing pushed lists (大数据推送): file → batch → one result per row → pushed people, routed.

``create_batch`` stores the upload as a PushBatch (the same file for the same unit and source returns the
batch already there, so importing a file twice changes nothing) and processes it at once when it is small;
a large one (more than ``INLINE_MAX_ROWS`` rows) is left to the ``pushes.process`` worker task.

``process_batch`` is idempotent and resumable. It holds the batch by a lease (``core.worker.claim``), reads
the file (``core.tabular``), finds the header row in the first ``HEADER_SEARCH_ROWS`` rows (``headers``),
then works in chunks of ``CHUNK`` rows (``SQLITE_CHUNK`` on SQLite). Each chunk is one transaction: normalise (``normalize``), look up the
people it may join (``dedupe``), create and merge people, write a PushRow for every row, add to the batch's
counters and renew the lease. A row that already has its PushRow is skipped, so a rerun after a crash goes
on where the last committed chunk ended. Chunks of different batches never interleave (an advisory lock on
PostgreSQL; SQLite's IMMEDIATE transactions serialise writers), so two lists naming the same person at the
same moment still make one person. When every row is in, the new people are routed (``routing.route_people``)
in groups of ``ROUTE_CHUNK``: a grid hears of its new people once per list, not once per chunk (a run that
stopped before routing routes them when it is resumed).

At the end the counters are recounted from the PushRows (rows_total = imported + merged + rejected, exactly),
the file is dropped from the database (it holds clear personal data) and one audit row ``push.import`` is
written with the counts. A file that cannot be read, or has no header row, fails the batch with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections import Counter
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone
from django.utils.translation import gettext

from bihuan.core import audit, excel
from bihuan.core.bulk import (
    JsonText,
    any_of,
    collector_paused,
    insert_rows,
    reserve_ids,
    sqlite_cache,
)
from bihuan.core.errors import disk_full
from bihuan.core.roles import Perm
from bihuan.core.tabular import UnreadableFile, cell_text, chunks, estimate_rows, is_blank, read_sheets
from bihuan.core.worker import claim, worker_id
from bihuan.register.access import access_unit, require, scope_of
from bihuan.register.models import Resident, Unit, subtree_q

from . import dedupe
from .headers import FIELDS, IGNORE, detect_mapping, header_score, saved_mapping
from .models import BatchState, PushBatch, PushedPerson, PushRow, RowResult
from .normalize import Row, clean_text, masked_cell, normalize_row, remembering, scrub

logger = logging.getLogger(__name__)

INLINE_MAX_ROWS = 2000  # larger files go to the worker
CHUNK = 2000  # rows per transaction
# SQLite has one writer at a time: a chunk holds the write lock from its first statement to its commit, and every
# page that writes (a resident's tap, a grid worker's mark) waits for it. Smaller chunks there keep that wait
# near a tenth of a second while a list is imported during the day (measured: 2,000 rows ~0.5 s on a quiet machine).
SQLITE_CHUNK = 500
ANALYZE_AFTER = 6_000  # new people after which PostgreSQL's statistics of the table are refreshed
IMPORT_CACHE_MIB = 64  # SQLite's page cache while a list is written (core.bulk.sqlite_cache)
ROUTE_CHUNK = 25_000  # new people routed (and their owners told) together: one notice per grid for most lists
RESULT_FIELDS = ("batch_id", "row_number", "result", "reason", "field", "person_id", "masked")
LEASE_SECONDS = 300
HEADER_SEARCH_ROWS = 10
_ROW_DEPENDENT = frozenset({"id_number", "phone"})  # columns whose mask depends on the row as read
_MASKED_MEMO_MAX = 200_000
_MASK_MEMO_TRIAL = 2_000  # distinct texts after which a column that seldom repeats is no longer remembered
_json_str = json.encoder.encode_basestring  # a str as json.dumps(…, ensure_ascii=False) writes it
_ADVISORY_LOCK = 0x62_69_68_75  # "bihu": serialises the chunks of all batches on PostgreSQL

NO_HEADER = ("找不到表头行：前 10 行中没有同时含“姓名”或“身份证号”和其他已知列的行，请检查文件或保存列对应关系 "
             "(no header row found in the first 10 rows)")
EMPTY_FILE = "文件是空的 (the file is empty)"


class LostLease(Exception):
    """Another worker holds the batch now (ours ran out): stop without writing."""


# --- reading ------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Table:
    """The header row and the data rows of the sheet that holds the list."""

    sheet: str
    header_row: int
    headers: list[str]  # as in the file, one per column ("" for a column without a header)
    fields: list[str | None]  # the field of each column (None: not read)
    mapping: dict[str, str]  # header -> field, "" for the unmapped ones
    unmapped: list[str]
    rows: list[tuple[int, tuple]]  # (row number Excel shows, values); blank rows skipped
    _masked_memo: dict = dataclasses.field(default_factory=dict, repr=False)  # (column, type, value) -> mask

    def cells(self, values: tuple) -> dict[str, Any]:
        return {f: values[i] for i, f in enumerate(self.fields) if f and i < len(values)}

    def masked(self, values: tuple, row: Row) -> JsonText:
        """The row as read, masked (``masked_cell``), as the JSON text of PushRow.masked: ``{"header": "value",
        …}`` in column order, blank cells left out — the text ``json.dumps(…, ensure_ascii=False)`` gives.

        Per column, chosen once: ID numbers and phones are masked from the row as normalised; a text cell of
        any other column is its trimmed text with runs of seven or more digits masked (``scrub``), each
        distinct text once while the column repeats itself (origins, addresses, date spellings); whole numbers
        below a million (a 序号 column) are their digits; any other cell goes through ``masked_cell``."""
        plan = self._mask_plan()
        if plan is None:
            return JsonText(json.dumps(self._masked_slowly(values, row), ensure_ascii=False))
        parts: list[str] = []
        columns = len(plan)
        for i, value in enumerate(values):
            cls = value.__class__
            if value is None:
                continue
            if cls is str:
                text = value.strip()
                if not text:
                    continue
            while i >= columns:  # a row longer than the header row
                columns += 1
                plan.append(_MaskColumn(_json_str(f"第{columns}列"), None))
            column = plan[i]
            if column.dependent:
                parts.append(f"{column.key}: {_json_str(masked_cell(column.field, value, row))}")
            elif cls is str and column.plain and text[0] != "'":
                parts.append(column.text(text))
            elif cls is int and column.plain and -1_000_000 < value < 1_000_000:
                parts.append(f"{column.key}: {_json_str(str(value))}")
            else:
                memo_key = (i, cls, value)
                pair = self._masked_memo.get(memo_key)
                if pair is None:
                    pair = f"{column.key}: {_json_str(masked_cell(column.field, value, row))}"
                    if len(self._masked_memo) < _MASKED_MEMO_MAX:
                        self._masked_memo[memo_key] = pair
                parts.append(pair)
        return JsonText("{" + ", ".join(parts) + "}")

    def _mask_plan(self) -> list[_MaskColumn] | None:
        """How ``masked`` treats each column (None when two columns could share a key: ``_masked_slowly``)."""
        if not hasattr(self, "_column_plan"):
            keys = self._keys()
            self._column_plan = None if keys is None else [
                _MaskColumn(_json_str(k), self.fields[i] if i < len(self.fields) else None) for i, k in enumerate(keys)]
        return self._column_plan

    def _keys(self) -> list[str] | None:
        """The key of each column in ``masked`` when no two columns can share one (else None: numbered per row)."""
        if not hasattr(self, "_column_keys"):
            keys = [h if h else f"第{i + 1}列" for i, h in enumerate(self.headers)]
            clash = len(set(keys)) != len(keys) or any(k.startswith("第") and k.endswith("列") for k in self.headers)
            self._column_keys = None if clash else keys
        return self._column_keys

    def _masked_slowly(self, values: tuple, row: Row) -> dict[str, str]:
        out: dict[str, str] = {}
        for i, value in enumerate(values):
            if is_blank(value):
                continue
            header = self.headers[i] if i < len(self.headers) and self.headers[i] else f"第{i + 1}列"
            key, n = header, 2
            while key in out:
                key, n = f"{header} ({n})", n + 1
            out[key] = masked_cell(self.fields[i] if i < len(self.fields) else None, value, row)
        return out


class _MaskColumn:
    """One column of ``Table.masked``: its key as JSON, its field, and what its text cells were masked to."""

    __slots__ = ("key", "field", "dependent", "plain", "seen", "hits", "misses")

    def __init__(self, key: str, field: str | None) -> None:
        self.key, self.field = key, field
        self.dependent = field in _ROW_DEPENDENT  # masked from the row as normalised
        self.plain = field not in _ROW_DEPENDENT and field not in ("arrival_date", "birth_date")  # scrubbed text
        self.seen: dict[str, str] | None = {}  # trimmed text -> '"key": "masked"' while the column repeats
        self.hits = self.misses = 0

    def text(self, text: str) -> str:
        """'"key": "masked"' for a trimmed text cell (not starting with an apostrophe) of a plain column: what
        ``masked_cell`` gives for it (``scrub`` of the text)."""
        seen = self.seen
        if seen is not None:
            pair = seen.get(text)
            if pair is not None:
                self.hits += 1
                return pair
        pair = f"{self.key}: {_json_str(scrub(text))}"
        if seen is not None:
            self.misses += 1
            if self.misses >= _MASK_MEMO_TRIAL and self.hits * 4 < self.misses:
                self.seen = None  # a column that seldom repeats (names): remembering costs more than it saves
            elif len(seen) < _MASKED_MEMO_MAX:
                seen[text] = pair
        return pair


def _blank(values: tuple) -> bool:
    return all(is_blank(v) for v in values)


def read_table(data: bytes, file_name: str, saved: dict[str, str] | None = None) -> Table:
    """The first sheet with a header row, read whole (blank rows skipped). Raises UnreadableFile."""
    if not data:
        raise UnreadableFile(EMPTY_FILE)
    for sheet, rows in read_sheets(data, file_name):
        head: list[tuple[int, tuple]] = []
        best: tuple | None = None  # (score, row number, values, mapping, unmapped)
        for number, values in rows:
            head.append((number, values))
            if _blank(values):
                continue
            mapping, unmapped = detect_mapping(values, saved)
            score = header_score(mapping)
            if score and (best is None or score > best[0]):
                best = (score, number, values, mapping, unmapped)
            if sum(1 for _n, v in head if not _blank(v)) >= HEADER_SEARCH_ROWS:
                break
        if best is None:
            continue
        _score, header_row, header_values, mapping, unmapped = best
        headers = [cell_text(v) for v in header_values]
        fields: list[str | None] = []
        for text in headers:
            field = mapping.get(text)
            fields.append(field if field and field not in fields else None)  # a repeated header: its first column
        data_rows = [(n, tuple(v)) for n, v in head if n > header_row and not _blank(v)]
        data_rows += [(n, tuple(v)) for n, v in rows if not _blank(v)]
        return Table(sheet, header_row, headers, fields, {h: IGNORE for h in unmapped} | mapping, unmapped,
                     data_rows)
    raise UnreadableFile(NO_HEADER)


@dataclasses.dataclass
class Preview:
    """What the upload page shows before importing: the header row and how its columns are read."""

    sheet: str
    header_row: int
    mapping: dict[str, str]  # header -> field ("" = ignored)
    unmapped: list[str]
    rows: int
    missing: list[str]  # fields no column gives (phone may be missing; name must not)


def preview_file(file_bytes: bytes, file_name: str, *, unit: Unit | None = None, source: str = "",
                 mapping: dict[str, str] | None = None) -> Preview:
    """Read the file without importing it (for the mapping screen). Raises UnreadableFile."""
    saved = mapping if mapping is not None else saved_mapping(unit, source)
    table = read_table(file_bytes, file_name, saved)
    given = set(table.mapping.values())
    return Preview(table.sheet, table.header_row, table.mapping, table.unmapped, len(table.rows),
                   [f for f in FIELDS if f not in given])


# --- creating a batch ---------------------------------------------------------------------------------------

def create_batch(file_bytes: bytes, file_name: str, *, source: str, unit: Unit, acting_user,
                 mapping: dict[str, str] | None = None) -> PushBatch:
    """Store an uploaded list for ``unit`` and process it now if it is small (see the module doc).

    ``mapping`` (header -> field, ``""`` = ignore) overrides the mapping saved for (unit, source), which
    overrides recognition. The same file (SHA-256) for the same unit and source returns the batch already there
    (a failed one is tried again). ``acting_user=None`` is the system. Raises PermissionDenied without
    ``Perm.IMPORT_PUSH``, Http404 for a unit outside the user's part of the district, ValueError for an empty
    file or source.
    """
    source = clean_text(source, PushBatch._meta.get_field("source").max_length)
    if not source:
        raise ValueError("source: required (推送来源必填)")
    if not file_bytes:
        raise ValueError("file: empty (文件是空的)")
    if acting_user is not None:
        require(acting_user, Perm.IMPORT_PUSH)
        unit = access_unit(acting_user, unit.pk)
    file_name = (file_name or "upload").replace("\\", "/").rsplit("/", 1)[-1][:255]
    sha = hashlib.sha256(file_bytes).hexdigest()
    if mapping is None:
        mapping = saved_mapping(unit, source)
    try:
        with transaction.atomic():
            batch = (PushBatch.objects.select_for_update()
                     .filter(unit=unit, source=source, file_sha256=sha).first())
            if batch is not None and batch.state != BatchState.FAILED:
                logger.info("push batch %s: the same file again, nothing to do", batch.pk)
                return batch
            if batch is not None:  # failed before: try again, perhaps with a new mapping
                PushBatch.objects.filter(pk=batch.pk).update(
                    file_data=file_bytes, file_name=file_name, column_mapping=mapping, state=BatchState.PENDING,
                    error="", uploaded_by=acting_user, uploaded_at=timezone.now(), locked_by="", locked_until=None)
                batch.refresh_from_db()
            else:
                batch = PushBatch.objects.create(
                    source=source, file_name=file_name, file_sha256=sha, file_data=file_bytes, unit=unit,
                    uploaded_by=acting_user, column_mapping=mapping)
    except IntegrityError:  # the same file uploaded at the same moment: the other upload's batch
        return PushBatch.objects.get(unit=unit, source=source, file_sha256=sha)
    logger.info("push batch %s created: unit %s, %d bytes", batch.pk, unit.pk, len(file_bytes))
    if estimate_rows(file_bytes, file_name, limit=INLINE_MAX_ROWS) <= INLINE_MAX_ROWS:
        batch = process_batch(batch)
    return batch


# --- processing ---------------------------------------------------------------------------------------------

def _route(person_ids: list[int], acting_user) -> None:
    if not person_ids:
        return
    try:
        from bihuan.pushes.routing import route_people
    except ModuleNotFoundError as exc:
        if exc.name != "bihuan.pushes.routing":
            raise
        logger.warning("pushes.routing is not there yet: %d people left unrouted", len(person_ids))
        return
    try:
        route_people(person_ids, acting_user=acting_user)
    except Exception:  # noqa: BLE001 - the people are imported; unrouted ones wait in the manual queue
        logger.exception("routing %d pushed people failed", len(person_ids))


def _decide_routes(people: list, memo: dict) -> Counter:
    """Route new people before they are written (``routing.decide_routes``); if routing fails they are written
    unrouted and routed by ``route_people`` at the end (or wait in the manual queue)."""
    if not people:
        return Counter()
    try:
        from bihuan.pushes.routing import decide_routes
    except ImportError:
        return Counter()
    try:
        return decide_routes(people, memo=memo, residents_matched=True)  # _Run._match_residents did
    except Exception:  # noqa: BLE001 - the people are imported all the same
        logger.exception("routing %d pushed people failed", len(people))
        for person in people:
            person.routed_at, person.unit_id, person.path, person.route_method, person.route_reason = (
                None, None, "", "", "")
        return Counter()


class _Routed:
    """What ``open_verifications`` reads of a routed person."""

    __slots__ = ("pk", "first_pushed_at", "first_batch_id", "route_method")

    def __init__(self, pk, first_pushed_at, first_batch_id, route_method):
        self.pk, self.first_pushed_at, self.first_batch_id, self.route_method = (
            pk, first_pushed_at, first_batch_id, route_method)


def _open_loops(batch: PushBatch, owner: str) -> None:
    """When every row is in: route the batch's new people that are not routed yet (``route_people``), and open
    the verification loops of those routed while they were written, in groups of ``ROUTE_CHUNK`` (each group's
    units told once). Both steps find their people in the database, so a resumed run finishes what a stopped
    one left."""
    mine = PushedPerson.objects.filter(first_batch=batch).order_by("pk")
    for ids in chunks(list(mine.filter(routed_at__isnull=True).values_list("pk", flat=True)), ROUTE_CHUNK):
        _renew(batch, owner)
        _route(ids, batch.uploaded_by)
    pending = [_Routed(*values) for values in mine.filter(routed_at__isnull=False, verification__isnull=True)
               .values_list("pk", "first_pushed_at", "first_batch_id", "route_method")]
    if not pending:
        return
    try:
        from bihuan.pushes.routing import open_verifications, record_routes
    except ImportError:
        return
    for group in chunks(pending, ROUTE_CHUNK):
        _renew(batch, owner)
        with transaction.atomic():
            open_verifications(group, acting_user=batch.uploaded_by)
            record_routes(group, Counter(p.route_method for p in group), acting_user=batch.uploaded_by)


def _renew(batch: PushBatch, owner: str, **fields) -> None:
    updated = PushBatch.objects.filter(pk=batch.pk, locked_by=owner).update(
        locked_until=timezone.now() + dt.timedelta(seconds=LEASE_SECONDS), **fields)
    if updated != 1:
        raise LostLease(f"push batch {batch.pk}: lease lost")


def _analyze_if_grown(grown: int) -> bool:
    """Bring PostgreSQL's statistics of the pushed people up to date once a list has added ``ANALYZE_AFTER`` of
    them and at least as many as the statistics knew of, or the table has none (what ``ANALYZE`` after a bulk load
    is for): the planner
    would otherwise still see the table as it was before the list and scan it whole for the lookups of the next
    chunks. Returns whether it did."""
    if connection.vendor != "postgresql" or grown < ANALYZE_AFTER:
        return False
    table = PushedPerson._meta.db_table
    with connection.cursor() as cursor:
        # The row count is kept apart from the statistics of the columns: an ANALYZE in a transaction that was
        # rolled back leaves the first and takes the second away. Without them every lookup of a chunk by hash
        # is planned as a scan of the whole table.
        cursor.execute("SELECT GREATEST(c.reltuples, 0), EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = "
                       "n.nspname AND s.tablename = c.relname AND s.attname = 'id_hash') FROM pg_class c "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = CAST(%s AS regclass)", [table])
        known, has_statistics = cursor.fetchone()
        if grown < known and has_statistics:
            return False
        q = connection.ops.quote_name
        cursor.execute(f"ANALYZE {q(table)} ({', '.join(q(c) for c in _ANALYZED)})")
    return True


# What the import's own statements look pushed people up by (the candidates of a chunk, a list's people and
# their loops): ANALYZE of these alone takes a third less time than of every column, which autovacuum's own
# ANALYZE keeps up to date.
_ANALYZED = ("id", "id_hash", "phone_hash", "name", "birth_date", "last_pushed_at", "first_batch_id", "routed_at",
             "unit_id")


def _serialise_chunks() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK])


class _Run:
    """One run of process_batch over the rows not yet done."""

    def __init__(self, batch: PushBatch, owner: str, window_days: int):
        self.batch = batch
        self.owner = owner
        self.pushed_at = batch.uploaded_at
        self.today = timezone.localdate(self.pushed_at)
        self.since = dedupe.window_start(self.pushed_at, window_days)
        self.routes: Counter = Counter()
        self.memo: dict = {}  # routing's memory of this list's addresses
        # person id -> the first row of this batch that named them (for "与第 N 行同一人")
        self.batch_rows: dict[int, int] = {}
        for person_id, number in (PushRow.objects.filter(batch=batch, person__isnull=False).order_by()
                                  .values_list("person_id", "row_number")):
            self.batch_rows[person_id] = min(number, self.batch_rows.get(person_id, number))

    def _outside(self, person: PushedPerson) -> bool:
        """Whether an earlier record belongs to another unit: neither under the uploading unit nor first pushed
        by a list of its part of the district (an unrouted one waits in the dispatch queue of levels 1–2)."""
        unit = self.batch.unit
        if person.path.startswith(unit.path) if person.path else unit.level <= 2:
            return False
        if getattr(self, "_own_batches", None) is None:  # one query per import, when first needed
            self._own_batches = set(PushBatch.objects.filter(subtree_q(unit.path, "unit__path"))
                                    .values_list("id", flat=True))
        return person.first_batch_id not in self._own_batches

    def chunk(self, table: Table, rows: list[tuple[int, tuple]]) -> list[int]:
        """Process and commit one chunk; returns the ids of the people it created.

        Set-based: the people the chunk may join are read in a few indexed queries, the new people are written
        with ids reserved in one statement and their values sealed together, then people and result rows go in
        as one COPY each on PostgreSQL (one prepared INSERT run for every row on SQLite), and the merged people
        are updated in one statement per 500."""
        prepared = _prepare(table, rows, self.today)
        batch_id = self.batch.pk
        with transaction.atomic():
            _renew(self.batch, self.owner)
            _serialise_chunks()
            index = dedupe.Index()
            index.load((r for r, _m in prepared), since=self.since, light=True)
            created: list[dedupe.NewPerson] = []
            changed: dict[int, PushedPerson] = {}
            results: list[list] = []  # PushRow columns (RESULT_FIELDS); the person object until ids are known
            counts = {RowResult.IMPORTED: 0, RowResult.MERGED: 0, RowResult.REJECTED: 0}
            first_row: dict[int, int] = {}  # id(person) -> first row in this batch, for people made here
            for row, masked in prepared:
                if row.rejected is not None:
                    field, reason = row.rejected
                    results.append([batch_id, row.number, RowResult.REJECTED, reason[:300], field, None, masked])
                    counts[RowResult.REJECTED] += 1
                    continue
                source = row.source or self.batch.source
                match = index.find(row)
                if match is None:
                    person = dedupe.new_person(row, batch=self.batch, source=source, pushed_at=self.pushed_at)
                    created.append(person)
                    first_row[id(person)] = row.number
                    outcome, reason = RowResult.IMPORTED, "；".join(row.notes)
                else:
                    person = match.person
                    seen = self.batch_rows.get(person.pk) if person.pk else first_row.get(id(person))
                    outcome = RowResult.MERGED
                    outside = bool(person.pk) and self._outside(person)
                    reason = dedupe.merge_reason(match, batch_row=seen, pushed_before=person.last_pushed_at,
                                                 outside=outside)
                    dedupe.merge_into(person, row, source=source, pushed_at=self.pushed_at)
                    if seen is None:  # the first row of this batch to name them: one more push
                        person.times_pushed += 1
                        self.batch_rows[person.pk] = row.number
                    if person.pk:
                        changed[person.pk] = person
                index.add(person)
                counts[outcome] += 1
                results.append([batch_id, row.number, outcome, reason[:300], "", person, masked])
            self._match_residents([*created, *changed.values()])
            for person, pk in zip(created, reserve_ids(PushedPerson, len(created)), strict=True):
                person.id = pk
            self.routes.update(_decide_routes(created, self.memo))  # written with the people; loops opened at the end
            dedupe.write_new(created)
            if changed:
                dedupe.write_back(list(changed.values()))
            for result in results:
                if result[5] is not None:
                    result[5] = result[5].pk
            insert_rows(PushRow, RESULT_FIELDS, results)
            for person in created:
                self.batch_rows[person.pk] = first_row[id(person)]
            _renew(self.batch, self.owner, rows_done=F("rows_done") + len(results),
                   imported=F("imported") + counts[RowResult.IMPORTED], merged=F("merged") + counts[RowResult.MERGED],
                   rejected=F("rejected") + counts[RowResult.REJECTED])
        return [p.pk for p in created]

    @staticmethod
    def _match_residents(people: list) -> None:
        """A pushed person with a registered ID number is that resident (routing sends them to their grid)."""
        wanted = {p.id_hash for p in people if p.id_hash and p.resident_id is None}
        found: dict[str, int] = {}
        if wanted:
            match, params = any_of("id_hash", sorted(wanted))  # one parameter for the chunk's hashes
            with connection.cursor() as cur:
                cur.execute(f"SELECT id_hash, id FROM {connection.ops.quote_name(Resident._meta.db_table)} "
                            f"WHERE {match} ORDER BY id DESC", params)
                for id_hash, pk in cur.fetchall():
                    found[id_hash] = pk  # the lowest pk wins
        for person in people:
            if person.resident_id is None and person.id_hash in found:
                person.resident_id = found[person.id_hash]


def _claim(batch: PushBatch, owner: str) -> PushBatch | None:
    todo = PushBatch.objects.filter(pk=batch.pk, state__in=[BatchState.PENDING, BatchState.RUNNING])
    held = claim(todo, owner=owner, lease_seconds=LEASE_SECONDS, limit=1)
    return held[0] if held else None


def _close(batch: PushBatch, owner: str, *, state: str, error: str = "") -> PushBatch:
    """Finish the batch: exact counts from its rows, the file dropped, one audit row."""
    with transaction.atomic():
        counts = dict(PushRow.objects.filter(batch=batch).order_by().values("result")
                      .annotate(n=Count("pk")).values_list("result", "n"))
        done = sum(counts.values())
        fields = {"imported": counts.get(RowResult.IMPORTED, 0), "merged": counts.get(RowResult.MERGED, 0),
                  "rejected": counts.get(RowResult.REJECTED, 0), "rows_done": done}
        total = PushBatch.objects.filter(pk=batch.pk).values_list("rows_total", flat=True).get()
        if state == BatchState.DONE and done != total:
            raise RuntimeError(f"push batch {batch.pk}: {done} results for {total} rows")
        updated = PushBatch.objects.filter(pk=batch.pk, locked_by=owner).update(
            state=state, error=error[:2000], file_data=b"", locked_by="", locked_until=None, **fields)
        if updated != 1:
            raise LostLease(f"push batch {batch.pk}: lease lost before closing")
        batch.refresh_from_db()
        audit.record(actor=batch.uploaded_by, action="push.import", target=batch,
                     changes={"file": batch.file_name[:200], "source": batch.source, "unit": batch.unit_id,
                              "state": state, "rows": batch.rows_total, "imported": batch.imported,
                              "merged": batch.merged, "rejected": batch.rejected, "error": error[:200]})
    logger.info("push batch %s %s: %d rows = %d imported + %d merged + %d rejected", batch.pk, state,
                batch.rows_total, batch.imported, batch.merged, batch.rejected)
    return batch


def _prepare(table: Table, rows: list[tuple[int, tuple]], today: dt.date) -> list[tuple[Row, JsonText]]:
    """The rows of a chunk normalised (with their lookup hashes) and masked: what needs no database."""
    out = []
    for number, values in rows:
        row = normalize_row(number, table.cells(values), today=today)
        if row.rejected is None:
            if row.id_number:
                row.id_hash  # noqa: B018 - computed here, read by the de-duplication
            if row.phone:
                row.phone_hash  # noqa: B018
        out.append((row, table.masked(values, row)))
    return out


class _Unreadable(Exception):
    """The file cannot be read (the batch fails with the reason)."""


def _process(batch: PushBatch, owner: str, window_days: int) -> None:
    """Read the file, write every row not yet done, route the new people and open their loops (the Python
    cycle collector paused by the caller: the rows of a list and what is remembered of them live throughout)."""
    _renew(batch, owner, state=BatchState.RUNNING)
    try:
        table = read_table(bytes(batch.file_data or b""), batch.file_name, batch.column_mapping)
    except UnreadableFile as exc:
        raise _Unreadable(str(exc)) from None
    _renew(batch, owner, rows_total=len(table.rows), column_mapping=table.mapping)
    run = _Run(batch, owner, window_days)
    done = set(PushRow.objects.filter(batch=batch).values_list("row_number", flat=True))
    todo = [r for r in table.rows if r[0] not in done]
    table.rows = []
    grown = 0
    with remembering(), sqlite_cache(IMPORT_CACHE_MIB):
        for rows in chunks(todo, CHUNK if connection.vendor == "postgresql" else min(CHUNK, SQLITE_CHUNK)):
            grown += len(run.chunk(table, rows))
            if _analyze_if_grown(grown):
                grown = 0
        del todo
        _open_loops(batch, owner)


def process_batch(batch: PushBatch, *, owner: str | None = None,
                  window_days: int = dedupe.DEFAULT_WINDOW_DAYS) -> PushBatch:
    """Process the rows of ``batch`` not yet done (see the module doc); returns the batch as it is now.

    Without ``owner`` the batch is claimed here (and left alone if someone else holds it); the worker passes the
    owner it claimed the batch with.
    """
    if owner is None:
        owner = f"{worker_id()}:inline"
        held = _claim(batch, owner)
        if held is None:
            batch.refresh_from_db()
            return batch
        batch = held
    elif batch.locked_by != owner:
        batch.refresh_from_db()
        if batch.locked_by != owner:
            return batch
    try:
        with collector_paused():
            _process(batch, owner, window_days)
        return _close(batch, owner, state=BatchState.DONE)
    except _Unreadable as exc:
        logger.info("push batch %s: unreadable (%s)", batch.pk, str(exc)[:80])
        return _close(batch, owner, state=BatchState.FAILED, error=str(exc))
    except LostLease:
        logger.warning("push batch %s: lease lost, another worker goes on with it", batch.pk)
        batch.refresh_from_db()
        return batch
    except Exception as exc:  # the driver's own error class where COPY runs on the raw connection
        if not disk_full(exc):
            raise
        # The chunk being written was rolled back whole; the chunks before it are committed and stay. Failing the
        # batch says so to the uploader; uploading the same file again resumes after the last committed row.
        logger.error("push batch %s: disk full, import stopped (%s)", batch.pk, str(exc).strip()[:200])
        return _close(batch, owner, state=BatchState.FAILED, error=gettext(
            "磁盘空间已满，导入已停止。已处理的行都已保存；请管理员腾出空间后重新上传同一文件，导入将从中断处继续。"))


# --- the report ---------------------------------------------------------------------------------------------

REPORT_HEAD = ["行号", "结果", "原因", "相关列"]


def batch_report_xlsx(batch: PushBatch, *, acting_user=None) -> bytes:
    """An Excel report: the totals, and every row's result and reason with the row as read (masked).

    With ``acting_user`` the batch's unit must be in their part of the district and the download is audited
    (``push.report``): the report names people.
    """
    if acting_user is not None:
        require(acting_user, Perm.IMPORT_PUSH)
        access_unit(acting_user, batch.unit_id)
    labels = dict(RowResult.choices)
    field_headers = {f: h for h, f in batch.column_mapping.items() if f}
    ordered = [field_headers[f] for f in FIELDS if f in field_headers]
    ordered += sorted(h for h, f in batch.column_mapping.items() if not f)
    book = excel.workbook(write_only=True)

    totals = book.create_sheet("汇总")
    for label, value in (("文件", batch.file_name), ("推送来源", batch.source), ("导入单位", batch.unit.name),
                         ("上传时间", timezone.localtime(batch.uploaded_at).strftime("%Y-%m-%d %H:%M")),
                         ("状态", batch.get_state_display()), ("总行数", batch.rows_total),
                         (str(labels[RowResult.IMPORTED]), batch.imported), (str(labels[RowResult.MERGED]), batch.merged),
                         (str(labels[RowResult.REJECTED]), batch.rejected),
                         ("核对", "总行数 = 已导入 + 已合并 + 已拒绝" if batch.rows_total == batch.imported + batch.merged
                          + batch.rejected else "不平衡")):
        totals.append([label, value])
    if batch.error:
        totals.append(["错误", batch.error])

    rows = book.create_sheet("逐行结果")
    rows.append(REPORT_HEAD + ordered)
    fields = {f: h for h, f in batch.column_mapping.items() if f}
    for number, result, reason, field, masked in (PushRow.objects.filter(batch=batch).order_by("row_number")
                                                  .values_list("row_number", "result", "reason", "field", "masked")
                                                  .iterator(chunk_size=2000)):
        extra = [k for k in masked if k not in batch.column_mapping]
        rows.append([number, str(labels.get(result, result)), reason, fields.get(field, FIELDS.get(field, field)),
                     *(masked.get(h, "") for h in ordered), *(f"{k}: {masked[k]}" for k in extra)])
    from .selectors import id_to_fix_rows

    fix = id_to_fix_rows(batch, within=batch.unit.path)
    if fix:
        sheet = book.create_sheet("身份证号待修正")
        sheet.append(["行号", "姓名", "手机号（脱敏）", "问题"])
        for r in fix:
            sheet.append([r["row_number"], r["name"], r["phone"], r["problem"]])
    data = excel.to_bytes(book)
    if acting_user is not None:
        audit.record(actor=acting_user, action="push.report", target=batch,
                     changes={"rows": batch.rows_total, "unit": scope_of(acting_user).unit.pk})
    return data
