"""De-duplication of pushed people: within a file, across sources and against earlier days.

A row joins an existing PushedPerson pushed within the window (``DEFAULT_WINDOW_DAYS``, measured from the
person's last push to this push) instead of creating new work. Matching, in this order:

1. the ID number's lookup hash;
2. the phone's lookup hash **and the same name** (family members share phones), when at most one of the two
   has an ID number (two different ID numbers are two people);
3. the same name and birth date, under the same condition.

When several people match, the most recently pushed wins. A merge fills what the person lacks (ID number,
phone, birth date, sex, origin, via, arrival date, addresses), appends the source and moves
``last_pushed_at`` forward; ``times_pushed`` counts the pushes (files) that named the person, so a duplicate
row inside one file does not count twice.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from bihuan.core import crypto
from bihuan.core.bulk import any_of, array_param, insert_rows, update_rows
from bihuan.core.personal import mask_id_number, mask_phone

from .models import PushedPerson
from .normalize import Row, seal_id_number

DEFAULT_WINDOW_DAYS = 14
BY_ID, BY_PHONE, BY_NAME_BIRTH = "身份证号", "手机号", "姓名和出生日期"
SOURCES_MAX = PushedPerson._meta.get_field("sources").max_length
# Row field -> PushedPerson attribute, filled when the person lacks it.
FILLED = (("birth_date", "birth_date"), ("sex", "sex"), ("origin", "origin"), ("via", "via"),
          ("arrival_date", "arrival_date"), ("address", "address_text"), ("township", "township_text"),
          ("community", "community_text"))
UPDATED_FIELDS = ["id_sealed", "id_hash", "id_masked", "id_tail", "phone_sealed", "phone_hash", "phone_masked",
                  "phone_tail", "sources", "last_pushed_at", "times_pushed", "resident", "id_problem",
                  *(attr for _f, attr in FILLED)]


@dataclass
class Match:
    person: PushedPerson
    how: str  # BY_ID, BY_PHONE or BY_NAME_BIRTH


def window_start(pushed_at: dt.datetime, window_days: int = DEFAULT_WINDOW_DAYS) -> dt.datetime:
    return pushed_at - dt.timedelta(days=window_days)


class Index:
    """The people a chunk of rows may join: loaded from the database, plus those the chunk creates."""

    def __init__(self) -> None:
        self.by_id: dict[str, PushedPerson] = {}
        self.by_phone: dict[str, list[PushedPerson]] = defaultdict(list)
        self.by_name_birth: dict[tuple[str, dt.date], list[PushedPerson]] = defaultdict(list)

    def add(self, person: PushedPerson) -> None:
        """Index ``person`` under its current keys (call again after a merge gave it new ones)."""
        current = self.by_id.get(person.id_hash) if person.id_hash else None
        if person.id_hash and (current is None or _recency(person) > _recency(current)):
            self.by_id[person.id_hash] = person
        if person.phone_hash and person not in self.by_phone[person.phone_hash]:
            self.by_phone[person.phone_hash].append(person)
        if person.birth_date and person not in self.by_name_birth[(person.name, person.birth_date)]:
            self.by_name_birth[(person.name, person.birth_date)].append(person)

    def load(self, rows: Iterable[Row], *, since: dt.datetime, light: bool = False) -> None:
        """Load the people pushed since ``since`` whom any of ``rows`` could match (a few indexed queries).
        ``light``: as ``KnownPerson`` objects (the columns a merge reads and writes, no model instances) for an
        import, which only merges into them and writes them back with ``update_rows``.

        Only people a row could match are read: by ID number, everyone with a row's ID hash; by phone and by name
        and birth date, only for rows whose ID number found nobody (``find`` takes an ID match first), and for a
        row with an ID number only people without one (two different ID numbers are two people). A merge never
        takes an ID number away, so no one left out could match later in the chunk either."""
        rows = [r for r in rows if r.rejected is None]
        table = connection.ops.quote_name(PushedPerson._meta.db_table)
        after = connection.ops.adapt_datetimefield_value(since)
        found: dict[int, PushedPerson | KnownPerson] = {}
        read = KnownPerson.read if light else _models
        select = ", ".join(f"p.{c}" for c in KnownPerson.COLUMNS) if light else "p.*"
        ids = {r.id_hash for r in rows if r.id_number}
        if ids:
            match, params = any_of("p.id_hash", sorted(ids))
            found.update((p.pk, p) for p in read(
                f"SELECT {select} FROM {table} p WHERE p.last_pushed_at >= %s AND {match}", [after, *params]))
        known_ids = {p.id_hash for p in found.values() if p.id_hash}
        rows = [r for r in rows if not (r.id_number and r.id_hash in known_ids)]
        # phone hash -> whether a row without an ID number has it (then anyone with it may match, else only
        # people without an ID number)
        phones: dict[str, bool] = {}
        for r in rows:
            if r.phone:
                phones[r.phone_hash] = phones.get(r.phone_hash, False) or not r.id_number
        for anyone in (True, False):
            values = sorted(h for h, a in phones.items() if a is anyone)
            if values:
                match, params = any_of("p.phone_hash", values)
                idless = "" if anyone else " AND p.id_hash = ''"
                found.update((p.pk, p) for p in read(
                    f"SELECT {select} FROM {table} p WHERE p.last_pushed_at >= %s AND {match}{idless}",
                    [after, *params]))
        # (name, birth date) pairs: those of rows without an ID number joined to the (name, birth_date) index
        # (common names are pushed many times: reading everyone with one of the names would read most of the
        # window); those of rows with one among the people without one (few), which the planner may read first
        wanted: dict[tuple[str, dt.date], bool] = {}
        for r in rows:
            if r.birth_date:
                key = (r.name, r.birth_date)
                wanted[key] = wanted.get(key, False) or not r.id_number
        for anyone in (True, False):
            pairs = sorted(k for k, a in wanted.items() if a is anyone)
            if not pairs:
                continue
            if connection.vendor == "postgresql":
                pairs_sql = "SELECT * FROM unnest(CAST(%s AS text[]), CAST(%s AS date[])) AS w(name, birth_date)"
                params = [array_param([n for n, _b in pairs]), array_param([b for _n, b in pairs])]
            else:
                pairs_sql = ("SELECT json_extract(value, '$[0]') AS name, json_extract(value, '$[1]') AS birth_date "
                             "FROM json_each(%s)")
                params = [json.dumps([[n, b.isoformat()] for n, b in pairs])]
            if anyone:
                sql = (f"SELECT {select} FROM ({pairs_sql}) w JOIN {table} p ON p.name = w.name "
                       "AND p.birth_date = w.birth_date WHERE p.last_pushed_at >= %s")
                found.update((p.pk, p) for p in read(sql, [*params, after]))
            else:
                sql = (f"SELECT {select} FROM {table} p WHERE p.id_hash = '' AND p.last_pushed_at >= %s "
                       f"AND (p.name, p.birth_date) IN (SELECT w.name, w.birth_date FROM ({pairs_sql}) w)")
                found.update((p.pk, p) for p in read(sql, [after, *params]))
        for person in sorted(found.values(), key=lambda p: p.pk):
            self.add(person)

    def find(self, row: Row) -> Match | None:
        if row.id_number:
            person = self.by_id.get(row.id_hash)
            if person is not None:
                return Match(person, BY_ID)

        if row.phone:
            candidates = self.by_phone.get(row.phone_hash)
            person = _latest_compatible(candidates, row) if candidates else None
            if person is not None:
                return Match(person, BY_PHONE)
        if row.birth_date:
            candidates = self.by_name_birth.get((row.name, row.birth_date))
            person = _latest_compatible(candidates, row) if candidates else None
            if person is not None:
                return Match(person, BY_NAME_BIRTH)
        return None


def _latest_compatible(people: list, row: Row):
    """The most recently pushed of ``people`` that may be the person of ``row``: the same name, and not two
    different ID numbers (the first of equals)."""
    best, best_recency = None, None
    name, has_id = row.name, bool(row.id_number)
    for p in people:
        if p.name != name or (has_id and p.id_hash):
            continue
        recency = _recency(p)
        if best is None or recency > best_recency:
            best, best_recency = p, recency
    return best


def _models(sql: str, params: list) -> Iterable[PushedPerson]:
    return PushedPerson.objects.raw(sql, params)


class KnownPerson:
    """A PushedPerson already in the database as an import reads it: the columns a merge reads and writes
    (``UPDATED_FIELDS``), its id and name, and where it belongs (``path``, ``first_batch_id``: whether a merge
    may name it to the uploader), read with a plain cursor (tens of thousands per list: model instances
    and their converters cost more than the query). ``set_id_number`` / ``set_phone`` seal at once, as the model's
    do; ``write_back`` writes what a merge changed (``changed``: compared with the values as read)."""

    COLUMNS = ("id", "name", "path", "first_batch_id", *(PushedPerson._meta.get_field(f).column for f in UPDATED_FIELDS))
    UPDATED_AT = 4  # where the columns of UPDATED_FIELDS start in COLUMNS
    __slots__ = (*COLUMNS, "as_read")

    def changed(self) -> tuple[str, ...]:
        """The fields of ``UPDATED_FIELDS`` whose values differ from those read."""
        return tuple(field for field, column, was in zip(UPDATED_FIELDS, self.COLUMNS[self.UPDATED_AT:], self.as_read,
                                                         strict=True) if getattr(self, column) != was)

    @property
    def pk(self) -> int:
        return self.id

    set_id_number = PushedPerson.set_id_number
    set_phone = PushedPerson.set_phone

    @classmethod
    def read(cls, sql: str, params: list) -> list[KnownPerson]:
        columns = cls.COLUMNS
        dates = [i for i, c in enumerate(columns) if c in ("birth_date", "arrival_date")]
        when = columns.index("last_pushed_at")
        sqlite = connection.vendor == "sqlite"
        out = []
        with connection.cursor() as cur:
            cur.execute(sql, params)
            for values in cur.fetchall():
                person = cls.__new__(cls)
                if sqlite:  # SQLite gives instants without their zone (UTC), perhaps dates as text
                    values = list(values)
                    for i in dates:
                        if values[i].__class__ is str:
                            values[i] = dt.date.fromisoformat(values[i])
                    values[when] = _utc(values[when])
                for name, value in zip(columns, values, strict=True):
                    setattr(person, name, value)
                person.as_read = tuple(values[cls.UPDATED_AT:])
                out.append(person)
        return out


WRITE_BACK_GROUP = 100  # people sharing the same changed fields written with those fields alone from this many


def write_back(people: list) -> None:
    """Write merged people back: a ``KnownPerson`` only the fields its merges changed, grouped by those fields
    (most merges change the sources, the last push and the count; leaving the rest out spares the indexes of
    unchanged columns), small groups together with the fields any of them changed; anyone else every one of
    ``UPDATED_FIELDS``."""
    groups: dict[tuple[str, ...], list] = defaultdict(list)
    for person in people:
        fields = person.changed() if isinstance(person, KnownPerson) else tuple(UPDATED_FIELDS)
        if fields:
            groups[fields].append(person)
    rest: list = []
    rest_fields: set[str] = set()
    for fields, group in groups.items():
        if len(group) >= WRITE_BACK_GROUP:
            update_rows(PushedPerson, group, list(fields))
        else:
            rest += group
            rest_fields.update(fields)
    if rest:
        update_rows(PushedPerson, rest, [f for f in UPDATED_FIELDS if f in rest_fields])


def _utc(value) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _recency(person: PushedPerson) -> tuple:
    """Most recently pushed first; among equals the older record (people created now have no pk yet: last)."""
    return (person.last_pushed_at, -(person.pk or 2**62))


def add_source(sources: str, source: str) -> str:
    parts = [s for s in sources.split("|") if s]
    if source and source not in parts:
        parts.append(source)
    joined = "|".join(parts)
    while len(joined) > SOURCES_MAX and len(parts) > 1:  # keep the first and the latest sources
        parts.pop(1)
        joined = "|".join(parts)
    return joined[:SOURCES_MAX]


def merge_into(person: PushedPerson, row: Row, *, source: str, pushed_at: dt.datetime) -> None:
    """Fill what ``person`` lacks from ``row``, append the source, move the last push forward."""
    if row.id_number and not person.id_hash:
        seal_id_number(person, row.id_number)
        person.id_problem = ""
    elif row.id_problem and not person.id_hash and not person.id_problem:
        person.id_problem = row.id_problem
    if row.phone and not person.phone_hash:
        person.set_phone(row.phone)
    for key, attr in FILLED:
        value = getattr(row, key)
        if value and not getattr(person, attr):
            setattr(person, attr, value)
    person.sources = add_source(person.sources, source)
    if person.last_pushed_at is None or pushed_at > person.last_pushed_at:
        person.last_pushed_at = pushed_at


_COLUMNS = [f for f in PushedPerson._meta.concrete_fields]
_DEFAULTS = {f.attname: f.get_default() for f in _COLUMNS}
PERSON_FIELDS = tuple(f.attname for f in _COLUMNS)  # every column of a PushedPerson row, "id" first
_NEW_DEFAULTS = {**_DEFAULTS, "id_number": "", "phone": ""}


class NewPerson:
    """A person an import creates, before it is written: the attributes of a PushedPerson row (``PERSON_FIELDS``)
    without a model instance (tens of thousands are made per list). ID number and phone are kept in clear until
    ``seal`` seals them all at once just before the row is written; their hashes, masks and tails are set at
    once, as de-duplication needs them. (Attributes in the instance's dict rather than slots: made from the
    defaults in one copy, not 40 assignments a person.)"""

    def __init__(self, **values) -> None:
        state = self.__dict__
        state.update(_NEW_DEFAULTS)
        state.update(values)

    @property
    def pk(self) -> int | None:
        return self.id

    def set_id_number(self, id_number: str, id_hash: str | None = None) -> None:
        self.id_number = id_number
        self.id_hash = id_hash if id_hash is not None else crypto.lookup_hash("id", id_number)
        self.id_masked = mask_id_number(id_number)
        self.id_tail = id_number[-4:] if id_number else ""

    def set_phone(self, phone: str, phone_hash: str | None = None) -> None:
        self.phone = phone
        self.phone_hash = phone_hash if phone_hash is not None else crypto.lookup_hash("phone", phone)
        self.phone_masked = mask_phone(phone)
        self.phone_tail = phone[-4:] if phone else ""

    @staticmethod
    def seal(people: list[NewPerson]) -> None:
        """Seal the ID numbers and phones of ``people`` (one key lookup for all)."""
        for person, sealed in zip(people, crypto.seal_many([p.id_number for p in people]), strict=True):
            person.id_sealed = sealed
        for person, sealed in zip(people, crypto.seal_many([p.phone for p in people]), strict=True):
            person.phone_sealed = sealed


def write_new(people: list[NewPerson]) -> None:
    """Write new people whose ids are reserved (``core.bulk.reserve_ids``): sealed together, one statement."""
    NewPerson.seal(people)
    values_of = operator.attrgetter(*PERSON_FIELDS)
    insert_rows(PushedPerson, PERSON_FIELDS, [values_of(p) for p in people])


def new_person(row: Row, *, batch, source: str, pushed_at: dt.datetime) -> NewPerson:
    person = NewPerson(
        name=row.name, birth_date=row.birth_date, sex=row.sex, origin=row.origin, via=row.via,
        arrival_date=row.arrival_date, address_text=row.address, township_text=row.township,
        community_text=row.community, sources=add_source("", source), first_batch_id=batch.pk,
        id_problem=row.id_problem,
        first_pushed_at=pushed_at, last_pushed_at=pushed_at, times_pushed=1)
    if row.id_number:
        person.set_id_number(row.id_number, row.id_hash)
    if row.phone:
        person.set_phone(row.phone, row.phone_hash)
    return person


MERGED_ELSEWHERE = "与已推送的记录合并"  # a record outside the uploader's part: neither when, nor how, nor whose


def merge_reason(match: Match, *, batch_row: int | None, pushed_before: dt.datetime | None,
                 outside: bool = False) -> str:
    """``与第 5 行同一人（身份证号）`` inside the file, ``与 2022-03-02 推送的记录合并（手机号）`` otherwise; for a record
    outside the uploading unit's part of the district (``outside``) only ``与已推送的记录合并``: the row says that it
    joined a person already known, never when, by which field or under which unit (no existence oracle)."""
    if batch_row is not None:
        return f"与第 {batch_row} 行同一人（{match.how}）"
    if outside:
        return MERGED_ELSEWHERE
    day = timezone.localdate(pushed_before) if pushed_before else None
    return f"与 {day:%Y-%m-%d} 推送的记录合并（{match.how}）" if day else f"与已推送的记录合并（{match.how}）"
