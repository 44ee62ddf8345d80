"""Routing of pushed people (分派) and the opening of their verification loops.

``route_people`` decides (with the rules of ``address.py``), for every newly imported person, which unit verifies them:

1. a registered resident (``person.resident``, or the ID hash found among active residents) → the resident's
   grid (their household's unit), reason ``户籍匹配：<household address>``;
2. else the address text (then the pushed township / community text) matched against unit names, aliases and
   abbreviations, tolerant of province / city / district prefixes: the deepest unit found wins, and the
   verification is owned by its community or village (level 4) unless the building or house number pins
   down exactly one grid;
3. else the command office's manual-dispatch queue (``do_dispatch`` hands them out).

Everything is set-based per call: one in-memory index of the unit tree, a handful of queries for the
residents and households, one ``update_rows`` of the people, the loops opened through the loop engine
(``engine.open_many``: one ``INSERT … SELECT`` per deadline, their first events, the owners told at once) and
one ``INSERT … SELECT`` of the verification rows, joined to their loops. Every decision is written to ``route_method`` /
``route_reason``; each call leaves one audit row.
"""


from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.bulk import any_of, update_rows
from bihuan.core.tabular import chunks
from bihuan.loops import engine
from bihuan.loops.models import Loop
from bihuan.policy.places import building_or_house
from bihuan.register.models import ACTIVE_STATUSES, MAX_LEVEL, Household, Resident, Unit

from .address import Decision, RoutingError, UnitIndex, grids_by_building
from .models import VERIFICATION, PushBatch, PushedPerson, RouteMethod, Verification

CHUNK = 500  # ids per IN (…) list: well under SQLite's parameter limit
OPEN_CHUNK = 25_000  # people per loop-opening statement (and so per notice to a unit), under the parameter limits
# of both databases (SQLite 32,766, PostgreSQL 65,535)
DEFAULT_DEADLINE = "24h"


# --- deadlines -------------------------------------------------------------------------------------------

def parse_deadline(spec: str | None) -> str | timedelta:
    """``"24h"`` (any number of hours) or ``"same_day"`` (end of the local day of the push)."""
    value = (spec or DEFAULT_DEADLINE).strip().lower().replace("-", "_")
    if value in {"same_day", "sameday", "当天", "当日"}:
        return "same_day"
    m = re.fullmatch(r"(\d{1,3})\s*h", value)
    if m and int(m.group(1)) > 0:
        return timedelta(hours=int(m.group(1)))
    raise RoutingError(f"deadline: {spec!r} is neither '<hours>h' nor 'same_day'")


def verification_due(pushed_at: datetime, spec: str | None = None) -> datetime:
    """The verification deadline for a person pushed at ``pushed_at`` (``settings.PUSH_VERIFY_DEADLINE``)."""
    rule = parse_deadline(spec or getattr(settings, "PUSH_VERIFY_DEADLINE", DEFAULT_DEADLINE))
    if rule == "same_day":
        local = timezone.localtime(pushed_at)
        return local.replace(hour=23, minute=59, second=59, microsecond=0)
    return pushed_at + rule


def fresh_due(now: datetime | None = None) -> datetime:
    """A new unit's deadline when a person reaches it later (accepted transfer, return): the same rule from now."""
    return verification_due(now or timezone.now())



# --- routing ---------------------------------------------------------------------------------------------

def _resident_matches(people: list[PushedPerson], *, by_id_hash: bool = True) -> dict[int, tuple[int, int, str, str]]:
    """person id -> (resident id, unit id, unit path, household address), for residents found: the resident a
    person names, else (``by_id_hash``) an active resident with the person's ID hash."""
    by_resident = {p.resident_id: p.pk for p in people if p.resident_id}
    by_hash = defaultdict(list)
    for p in people:
        if by_id_hash and not p.resident_id and p.id_hash:
            by_hash[p.id_hash].append(p.pk)
    out: dict[int, tuple[int, int, str, str]] = {}
    resident_t, household_t = _q(Resident._meta.db_table), _q(Household._meta.db_table)
    select = (f"SELECT r.id, r.id_hash, r.unit_id, r.path, h.address FROM {resident_t} r "
              f"JOIN {household_t} h ON h.id = r.household_id WHERE ")
    with connection.cursor() as cur:  # one parameter for all ids, one for all hashes
        if by_resident:
            match, params = any_of("r.id", list(by_resident), "bigint")
            cur.execute(select + match, params)
            for rid, _h, unit_id, path, address in cur.fetchall():
                out[by_resident[rid]] = (rid, unit_id, path, address)
        if by_hash:
            match, params = any_of("r.id_hash", list(by_hash))
            statuses, status_params = any_of("r.status", [str(s) for s in ACTIVE_STATUSES])
            cur.execute(f"{select}{match} AND {statuses} ORDER BY r.id", [*params, *status_params])
            for rid, h, unit_id, path, address in cur.fetchall():
                for pid in by_hash.pop(h, []):
                    out[pid] = (rid, unit_id, path, address)
    return out



def route_people(person_ids: list[int], *, acting_user, deadline: str | None = None) -> None:
    """Route newly imported people and open their verification loops (see the module docstring).

    Idempotent: people already routed are skipped, so a crashed import can call it again. ``deadline``
    overrides ``settings.PUSH_VERIFY_DEADLINE`` (``"24h"``, ``"same_day"``).
    """
    ids = sorted(set(person_ids))
    if not ids:
        return
    parse_deadline(deadline or getattr(settings, "PUSH_VERIFY_DEADLINE", DEFAULT_DEADLINE))  # fail early
    people: list[PushedPerson] = []
    for chunk in chunks(ids, CHUNK):
        people += list(PushedPerson.objects.filter(pk__in=chunk, routed_at__isnull=True).only(
            "id", "resident_id", "id_hash", "address_text", "township_text", "community_text", "first_batch_id",
            "first_pushed_at"))
    if not people:
        return
    counts = decide_routes(people)
    with transaction.atomic():
        _write_decisions(people)
        open_verifications(people, acting_user=acting_user, deadline=deadline)
        record_routes(people, counts, acting_user=acting_user)


def record_routes(people: list, counts: Counter, *, acting_user) -> None:
    """The one audit row of a routing call: how many people went which way."""
    batches = sorted({p.first_batch_id for p in people})
    audit.record(actor=acting_user, action="push.route", target_type="pushes.pushbatch",
                 target_id=",".join(str(b) for b in batches)[:64],
                 changes={"people": len(people), "by_method": dict(counts),
                          "first": people[0].pk, "last": people[-1].pk})


def decide_routes(people: list, *, now: datetime | None = None, memo: dict | None = None,
                  residents_matched: bool = False) -> Counter:
    """Decide where each of ``people`` is verified and set it on them (``resident_id``, ``unit_id``, ``path``,
    ``route_method``, ``route_reason``, ``routed_at``); returns how many went which way. Reads only: the caller
    writes the people (the import writes them routed in the same statement that creates them). ``people`` are
    PushedPerson rows or the import's new people (``dedupe.NewPerson``) with their ids. ``memo`` (a dict the
    caller keeps between calls, e.g. for the chunks of one list) remembers address decisions and building
    lookups: a list names the same addresses again and again. ``residents_matched``: the caller has just given
    every person whose ID hash is a resident's that resident (the import does), so the residents are not looked up
    by hash again."""
    memo = {} if memo is None else memo
    idx = memo.get("index")
    if idx is None:  # read once per list: the unit tree does not change while a list is imported
        idx = memo["index"] = UnitIndex.cached()
    batch_units = dict(PushBatch.objects.filter(pk__in={p.first_batch_id for p in people})
                       .values_list("id", "unit__path"))
    now = now or timezone.now()
    residents = _resident_matches(people, by_id_hash=not residents_matched)
    decisions: dict[int, Decision] = {}
    cache: dict[tuple[str, str, str], Decision] = memo.setdefault("addresses", {})
    for p in people:
        if p.pk in residents:
            continue
        key = (p.address_text, p.township_text, p.community_text)
        if key not in cache:
            cache[key] = idx.decide(*key)
        decisions[p.pk] = cache[key]
    wanted = {}
    for pid, d in decisions.items():
        if d.matched is not None and d.matched.level == MAX_LEVEL - 1:
            building, house = building_or_house(d.rest)
            if building or house:
                wanted[pid] = (d.matched, building, house)
    grids = _grids_remembered(idx, wanted, memo.setdefault("grids", {}))

    counts: Counter = Counter()
    for p in people:
        p.routed_at = now
        if p.pk in residents:
            rid, unit_id, path, address = residents[p.pk]
            p.resident_id, p.unit_id, p.path = rid, unit_id, path
            p.route_method, p.route_reason = RouteMethod.RESIDENT, f"户籍匹配：{address}"[:300]
        else:
            d = decisions[p.pk]
            unit = grids.get(p.pk) or d.unit
            if unit is None:
                office = idx.office_for(batch_units.get(p.first_batch_id, ""))
                if office is None:
                    raise RoutingError("unit: the register has no command office for the manual-dispatch queue")
                unit, reason = office, f"{d.reason}，待指挥部人工分派"
            elif p.pk in grids:
                building, house = wanted[p.pk][1:]
                where = f"{building}号楼" if building else f"{house}号"
                reason = f"{d.reason} {where} → {unit.name}"
            else:
                reason = f"{d.reason} → {unit.name}"
            p.unit_id, p.path = unit.id, unit.path
            p.route_method, p.route_reason = d.method, reason[:300]
        counts[p.route_method] += 1
    return counts


def _grids_remembered(idx: UnitIndex, wanted: dict, known: dict) -> dict:
    """``grids_by_building`` asking the database only about (unit, building, house) not asked before."""
    keys = {pid: (parent.id, building, house) for pid, (parent, building, house) in wanted.items()}
    ask = {key: wanted[pid] for pid, key in keys.items() if key not in known}
    if ask:
        found = grids_by_building(idx, ask)
        for key in ask:
            known[key] = found.get(key)
    return {pid: known[key] for pid, key in keys.items() if known[key] is not None}


def _write_decisions(people: list[PushedPerson]) -> None:
    update_rows(PushedPerson, people, ["resident", "unit", "path", "route_method", "route_reason", "routed_at"])


# --- the verification loops, set-based -------------------------------------------------------------------

def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _dt(value: datetime | None):
    return connection.ops.adapt_datetimefield_value(value) if value else None


def _defaults_select(model, overrides: dict[str, tuple[str, list]]) -> tuple[list[str], list[str], list]:
    """Columns, SELECT expressions and their parameters for every concrete column of ``model``: the SQL given
    in ``overrides`` (column -> (expression, parameters)), else the field's default as a parameter, so a field
    added later with a default keeps working."""
    cols, exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        cols.append(_q(f.column))
        if f.column in overrides:
            expr, values = overrides[f.column]
            exprs.append(expr)
            params += values
        else:
            value = f.get_default()
            exprs.append("%s")
            params.append(f.get_db_prep_save(value, connection) if value is not None else None)
    return cols, exprs, params



def open_verifications(people: list, *, acting_user, deadline: str | None = None) -> None:
    """One VERIFICATION loop per routed person (owned by their unit, started by the uploading unit), opened by
    the loop engine in one INSERT … SELECT per deadline (their owners told at once), and each person's
    verification row joined to it. Idempotent (unique constraints)."""
    unit_t, person_t, batch_t, ver_t, loop_t = (
        _q(Unit._meta.db_table), _q(PushedPerson._meta.db_table), _q(PushBatch._meta.db_table),
        _q(Verification._meta.db_table), _q(Loop._meta.db_table))
    now = timezone.now()
    groups: dict[datetime, list[int]] = defaultdict(list)
    due_of: dict[datetime, datetime] = {}  # a list's people share their push time
    for p in people:
        # Push times floored to the minute: one INSERT per minute of pushes, not per person (a deadline at
        # most 59 s early).
        pushed = p.first_pushed_at
        due = due_of.get(pushed)
        if due is None:
            due = due_of[pushed] = verification_due(pushed.replace(second=0, microsecond=0), deadline)
        groups[due].append(p.pk)
    for due, pids in groups.items():
        # No names in the notice: it may go by SMS or to a group robot; the list is on the page.
        notice = engine.Notice("新推送人员待核查",
                               f"请于 {timezone.localtime(due):%m-%d %H:%M} 前完成电话核查（名单见“推送核查”）。")
        for chunk in chunks(pids, OPEN_CHUNK):
            ids_sql, ids_params = any_of("p.id", chunk, "bigint")  # one parameter, not one per person
            engine.open_many(
                VERIFICATION,
                f"SELECT p.id AS subject_id, CAST(%s AS VARCHAR(20)) || p.name AS title, u.id AS owner_unit_id, "
                f"u.path AS owner_path, u.level AS owner_level, b.unit_id AS originator_unit_id, "
                f"{engine.sql_time('NULL')} AS ack_due_at, {engine.sql_time('%s')} AS due_at "
                f"FROM {person_t} p JOIN {unit_t} u ON u.id = p.unit_id JOIN {batch_t} b ON b.id = p.first_batch_id "
                f"WHERE {ids_sql}",
                ["核查：", _dt(due), *ids_params], originator_user=acting_user, notice=notice)
    with connection.cursor() as cur:
        for chunk in chunks([p.pk for p in people], OPEN_CHUNK):
            # The loops' ids first (one indexed read), then the rows from (person, loop) pairs: a join to the loop
            # table in the INSERT was planned from statistics taken before the list's loops were opened (a
            # nested loop over a table thought empty: 40 s on PostgreSQL for 25,000 people).
            ids_sql, ids_params = any_of("subject_id", chunk, "bigint")
            cur.execute(f"SELECT subject_id, id FROM {loop_t} WHERE kind = %s AND {ids_sql}",
                        [VERIFICATION, *ids_params])
            pairs = cur.fetchall()
            if not pairs:
                continue
            pairs_sql, pairs_params = _pairs(pairs)
            cols, exprs, params = _defaults_select(Verification, {
                "person_id": ("p.id", []), "loop_id": ("v.loop_id", []), "origin": ("p.origin", []),
                "arrival_date": ("p.arrival_date", []), "updated_at": ("%s", [_dt(now)])})
            cur.execute(
                f"INSERT INTO {ver_t} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM {pairs_sql} "
                f"JOIN {person_t} p ON p.id = v.person_id WHERE 1 = 1 ON CONFLICT (person_id) DO NOTHING",
                [*params, *pairs_params])


def _pairs(pairs: list[tuple[int, int]]) -> tuple[str, list]:
    """(person id, loop id) pairs as a table ``v(person_id, loop_id)`` given in one or two parameters."""
    if connection.vendor == "postgresql":
        return ("unnest(CAST(%s AS bigint[]), CAST(%s AS bigint[])) AS v(person_id, loop_id)",
                [[p for p, _l in pairs], [lp for _p, lp in pairs]])
    import json

    return ("(SELECT json_extract(value, '$[0]') AS person_id, json_extract(value, '$[1]') AS loop_id "
            "FROM json_each(%s)) v", [json.dumps(pairs)])


def push_day_bounds(day: dt.date) -> tuple[datetime, datetime]:
    """The local day as an aware half-open interval."""
    start = timezone.make_aware(datetime.combine(day, dt.time.min))
    return start, start + timedelta(days=1)
