"""The registration's hot path: a checkpoint at peak registers a car every few seconds, so the statements of a
registration are plain SQL, composed once per database vendor and prepared on PostgreSQL (``core.prepared``),
as the resident's tap does (``directives.taps``). Building ORM statements cost several times more than running
them (docs/operations.md, "Checkpoint registrations: where the time went").

- ``BearerGate``: the API's bearer-token check for the registration endpoint in ONE statement (token, user,
  staff row and unit together), with the same refusals as ``core.api_auth.BearerToken`` (unknown, revoked or
  inactive: 401). The user's scope is built from the same row; a user without a staff row or in a department
  takes the general path (``register.access.scope_of``).
- ``checkpoint_in_scope``: the checkpoint, if it lies in the caller's subtree (else ``Http404``), and the
  registration already made with this form's token, in one statement.
- ``write``: the registration, its people and its audit row, with the matching against residents, pushed people
  and self-reports (by the lookup hashes, one look-up per kind for the whole car). On PostgreSQL one statement
  (data-modifying ``WITH``: one round trip, one implicit transaction); on SQLite, which has no data-modifying
  ``WITH``, one matching ``SELECT`` and three ``INSERT``s in one transaction.

Only ``actions.do_register`` calls ``write``, for registrations without a receipt code and without an abnormal
person; those take the general path (the receipt's person is read, an alert loop is opened).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from bihuan.core import prepared
from bihuan.core.api_auth import BearerToken
from bihuan.core.models import ApiToken, AuditEntry
from bihuan.core.roles import PERMISSIONS
from bihuan.pushes.models import PushedPerson
from bihuan.register.access import Scope
from bihuan.register.models import ACTIVE_STATUSES, Resident, Staff, Unit, UnitKind, next_path

from .models import Checkpoint, Registration, SelfReport, SelfReportStatus, Traveller

REGISTRATION_COLUMNS = ("checkpoint_id", "path", "token", "vehicle_type", "plate", "registered_by_id",
                        "registered_at", "persons", "from_risk", "to_verify", "abnormal")
TRAVELLER_COLUMNS = ("registration_id", "path", "seat", "name", "id_problem", "origin", "destination",
                     "destination_unit_id", "temperature", "health_code", "test_hours", "note", "risk_level",
                     "risk_area", "reasons", "abnormal", "push_state", "id_sealed", "id_hash", "id_masked", "id_tail",
                     "phone_sealed", "phone_hash", "phone_masked", "phone_tail", "locked_by")
MATCHED_COLUMNS = ("resident_id", "self_report_id", "already_pushed")
# PostgreSQL types of the per-person arrays (TRAVELLER_COLUMNS after registration_id and path)
PG_TYPES = {"seat": "text", "name": "text", "id_problem": "text", "origin": "text", "destination": "text",
            "destination_unit_id": "bigint", "temperature": "numeric", "health_code": "text", "test_hours": "int",
            "note": "text", "risk_level": "text", "risk_area": "text", "reasons": "text", "abnormal": "boolean",
            "push_state": "text", "id_sealed": "bytea", "id_hash": "text", "id_masked": "text", "id_tail": "text",
            "phone_sealed": "bytea", "phone_hash": "text", "phone_masked": "text", "phone_tail": "text",
            "locked_by": "text"}
PERSON_COLUMNS = tuple(PG_TYPES)


def _columns(model) -> list[str]:
    return [f.column for f in model._meta.concrete_fields]


def _q(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# --- authentication ------------------------------------------------------------------------------------------

@cache
def _auth_sql(vendor: str) -> str:
    User = get_user_model()
    cols = ([f"t.{c}" for c in ("id", "revoked", "last_used_at", "can_write", "subtree_unit_id", "expires_at")] + [f"u.{c}" for c in _columns(User)]
            + [f"s.{c}" for c in _columns(Staff)] + [f"n.{c}" for c in _columns(Unit)])
    return (f"SELECT {', '.join(cols)} FROM {_q(ApiToken)} t JOIN {_q(User)} u ON u.id = t.user_id "
            f"LEFT JOIN {_q(Staff)} s ON s.user_id = u.id AND s.deactivated_at IS NULL "
            f"LEFT JOIN {_q(Unit)} n ON n.id = s.unit_id WHERE t.key_hash = %(key)s")


def user_for_key(key: str):
    """(user with its scope cached when it is a staff member of a non-department unit, token row), or
    (None, None) if the key is unknown, revoked, expired or its user inactive."""
    row = prepared.fetchone(_auth_sql(connection.vendor), {"key": ApiToken.hash_key(key)}) if key else None
    if row is None or row[1]:
        return None, None
    expires_at = _aware(row[5])
    if expires_at is not None and expires_at <= timezone.now():
        return None, None
    User = get_user_model()
    user_cols, staff_cols = _columns(User), _columns(Staff)
    i = 6
    user = User.from_db(connection.alias, [f.attname for f in User._meta.concrete_fields], row[i:i + len(user_cols)])
    i += len(user_cols)
    staff_row, unit_row = row[i:i + len(staff_cols)], row[i + len(staff_cols):]
    if not user.is_active:
        return None, None
    token = ApiToken(pk=row[0], user_id=user.pk, revoked=False, last_used_at=_aware(row[2]), can_write=bool(row[3]),
                     subtree_unit_id=row[4], expires_at=expires_at)
    if token.subtree_unit_id is None and staff_row[0] is not None and unit_row[0] is not None:
        # (a token narrowed to a subtree leaves the scope to register.access.scope_of, which narrows it)
        unit = Unit.from_db(connection.alias, [f.attname for f in Unit._meta.concrete_fields], unit_row)
        if unit.kind != UnitKind.DEPARTMENT:
            staff = Staff.from_db(connection.alias, [f.attname for f in Staff._meta.concrete_fields], staff_row)
            staff.unit = unit
            user.staff = staff
            user._bihuan_scope = Scope(user.pk, unit, unit, staff.role, PERMISSIONS.get(staff.role, frozenset()))
    return user, token


def _aware(value):
    if value is not None and isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value


class BearerGate(BearerToken):
    """``core.api_auth.BearerToken`` (its refusals: a key in the query string, read-only tokens writing) with the
    look-up in one statement (see the module doc)."""

    def lookup(self, key: str):
        return user_for_key(key)


# --- the checkpoint ------------------------------------------------------------------------------------------

@cache
def _checkpoint_sql(vendor: str) -> str:
    cols = ", ".join(f"c.{c}" for c in _columns(Checkpoint))
    return (f"SELECT {cols}, (SELECT r.id FROM {_q(Registration)} r WHERE r.checkpoint_id = c.id AND "
            f"r.token = %(token)s) FROM {_q(Checkpoint)} c WHERE c.id = %(id)s AND c.path >= %(low)s AND "
            f"c.path < %(high)s")


def checkpoint_in_scope(scope: Scope, checkpoint_id: int, token: str = "") -> tuple[Checkpoint, int | None]:
    """(the checkpoint, the id of the registration already made with ``token`` or None); Http404 outside the
    subtree of ``scope``."""
    row = prepared.fetchone(_checkpoint_sql(connection.vendor), {
        "id": checkpoint_id, "token": token, "low": scope.root.path, "high": next_path(scope.root.path)})
    if row is None:
        raise Http404("no such checkpoint in your part of the district")
    checkpoint = Checkpoint.from_db(connection.alias, [f.attname for f in Checkpoint._meta.concrete_fields], row[:-1])
    checkpoint._known_token = (token, row[-1])  # read by do_register: no second look-up of the token
    return checkpoint, row[-1]


# --- the write -------------------------------------------------------------------------------------------------

@dataclass
class Written:
    registration_id: int | None  # None: the token was used meanwhile (nothing written)
    traveller_ids: list[int]
    matched: list[tuple]  # per person: (resident_id, self_report_id, already_pushed)


@cache
def _pg_write_sql() -> str:
    reg_cols = ", ".join(REGISTRATION_COLUMNS)
    reg_vals = ", ".join(f"%({c})s" for c in REGISTRATION_COLUMNS)
    arrays = ", ".join(f"CAST(%(p_{c})s AS {t}[])" for c, t in PG_TYPES.items())
    names = ", ".join(PERSON_COLUMNS)
    statuses = ", ".join(f"'{s}'" for s in ACTIVE_STATUSES)
    trav_cols = ", ".join(TRAVELLER_COLUMNS + MATCHED_COLUMNS)
    person_vals = ", ".join(f"m.{c}" if c not in ("id_hash", "phone_hash") else f"coalesce(m.{c}, '')"
                            for c in PERSON_COLUMNS)
    resident, pushed, report = _q(Resident), _q(PushedPerson), _q(SelfReport)
    return (
        f"WITH reg AS (INSERT INTO {_q(Registration)} ({reg_cols}) VALUES ({reg_vals}) "
        f"ON CONFLICT (checkpoint_id, token) DO NOTHING RETURNING id), "
        f"p AS (SELECT * FROM unnest({arrays}) WITH ORDINALITY AS p({names}, ord)), "
        f"m AS (SELECT p.*, "
        f"(SELECT r.id FROM {resident} r WHERE r.id_hash = p.id_hash AND r.status IN ({statuses}) "
        f"ORDER BY r.id DESC LIMIT 1) AS resident_id, "
        f"(SELECT s.id FROM {report} s WHERE s.id_hash = p.id_hash AND s.status = %(reported)s "
        f"ORDER BY s.created_at DESC LIMIT 1) AS self_report_id, "
        f"(EXISTS (SELECT 1 FROM {pushed} x WHERE x.id_hash = p.id_hash AND x.last_pushed_at >= %(since)s) OR "
        f"EXISTS (SELECT 1 FROM {pushed} x WHERE x.phone_hash = p.phone_hash AND x.last_pushed_at >= %(since)s)) "
        f"AS already_pushed FROM p), "
        f"trav AS (INSERT INTO {_q(Traveller)} ({trav_cols}) SELECT reg.id, %(path)s, {person_vals}, "
        f"m.resident_id, m.self_report_id, m.already_pushed FROM reg, m ORDER BY m.ord "
        f"RETURNING id, resident_id, self_report_id, already_pushed), "
        f"arrived AS (UPDATE {report} SET status = %(arrived)s, updated_at = %(registered_at)s WHERE id IN "
        f"(SELECT self_report_id FROM trav) AND status = %(reported)s RETURNING id), "
        f"audited AS (INSERT INTO {_q(AuditEntry)} (created_at, actor_id, actor_unit_id, action, target_type, "
        f"target_id, changes) SELECT %(registered_at)s, %(registered_by_id)s, %(actor_unit_id)s, %(action)s, "
        f"%(target_type)s, CAST(reg.id AS text), CAST(%(changes)s AS jsonb) || jsonb_build_object('self_reports', "
        f"(SELECT count(*) FROM arrived)) FROM reg) "
        f"SELECT reg.id, trav.id, trav.resident_id, trav.self_report_id, trav.already_pushed FROM reg "
        f"JOIN trav ON true ORDER BY trav.id")


def write(values: dict, people: list[dict], *, since: dt.datetime, actor_unit_id: int | None,
          changes: dict) -> Written:
    """Insert the registration (``values``: REGISTRATION_COLUMNS), its people (``people``: PERSON_COLUMNS)
    matched as they go in, and the audit row. Raises nothing on a used token: ``registration_id`` is None."""
    common = {**values, "registered_at": connection.ops.adapt_datetimefield_value(values["registered_at"]),
              "since": connection.ops.adapt_datetimefield_value(since), "actor_unit_id": actor_unit_id,
              "reported": SelfReportStatus.REPORTED, "arrived": SelfReportStatus.ARRIVED,
              "action": "checkpoint.register", "target_type": "checkpoints.registration"}
    if connection.vendor == "postgresql":
        params = {**common, "changes": json.dumps(changes, ensure_ascii=False)}
        for c in PERSON_COLUMNS:
            column = [p[c] for p in people]
            if c in ("id_hash", "phone_hash"):
                column = [v or None for v in column]  # '' matches nothing: NULL
            params[f"p_{c}"] = column
        connection.ensure_connection()
        raw = prepared.PreparedCursor(connection.connection)
        with connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw) as cur:
            cur.execute(_pg_write_sql(), params)
            rows = cur.fetchall()
        if not rows:
            return Written(None, [], [])
        return Written(rows[0][0], [r[1] for r in rows], [(r[2], r[3], r[4]) for r in rows])
    return _sqlite_write(common, people, changes)


@cache
def _sqlite_sql() -> tuple[str, str, str, str]:
    statuses = ", ".join(f"'{s}'" for s in ACTIVE_STATUSES)
    resident, pushed, report = _q(Resident), _q(PushedPerson), _q(SelfReport)
    each = "(SELECT value FROM json_each(%(ids)s))"
    match = (f"SELECT 'r', id_hash, max(id) FROM {resident} WHERE id_hash IN {each} AND status IN ({statuses}) "
             f"GROUP BY id_hash "
             f"UNION ALL SELECT 'i', id_hash, 0 FROM {pushed} WHERE id_hash IN {each} AND last_pushed_at >= %(since)s "
             f"UNION ALL SELECT 'p', phone_hash, 0 FROM {pushed} WHERE phone_hash IN (SELECT value FROM "
             f"json_each(%(phones)s)) AND last_pushed_at >= %(since)s "
             f"UNION ALL SELECT 's', id_hash, id FROM {report} WHERE id_hash IN {each} AND status = %(reported)s "
             f"ORDER BY 1, 3")
    registration = (f"INSERT INTO {_q(Registration)} ({', '.join(REGISTRATION_COLUMNS)}) VALUES "
                    f"({', '.join(f'%({c})s' for c in REGISTRATION_COLUMNS)})")
    arrived = (f"UPDATE {report} SET status = %(arrived)s, updated_at = %(registered_at)s WHERE id IN "
               f"(SELECT value FROM json_each(%(reports)s)) AND status = %(reported)s")
    audit = (f"INSERT INTO {_q(AuditEntry)} (created_at, actor_id, actor_unit_id, action, target_type, target_id, "
             f"changes) VALUES (%(registered_at)s, %(registered_by_id)s, %(actor_unit_id)s, %(action)s, "
             f"%(target_type)s, %(target_id)s, %(changes)s)")
    return match, registration, arrived, audit


@cache
def _sqlite_travellers_sql(n: int) -> str:
    cols = TRAVELLER_COLUMNS + MATCHED_COLUMNS
    row = "(" + ", ".join(["%s"] * len(cols)) + ")"
    return f"INSERT INTO {_q(Traveller)} ({', '.join(cols)}) VALUES {', '.join([row] * n)} RETURNING id"


def _sqlite_write(common: dict, people: list[dict], changes: dict) -> Written:
    from django.db import IntegrityError

    match, registration, arrived, audit = _sqlite_sql()
    ids = json.dumps(sorted({p["id_hash"] for p in people if p["id_hash"]}))
    phones = json.dumps(sorted({p["phone_hash"] for p in people if p["phone_hash"]}))
    residents, pushed_ids, pushed_phones, reports = {}, set(), set(), {}
    with connection.cursor() as cur:
        cur.execute(match, {**common, "ids": ids, "phones": phones})
        for kind, key, pk in cur.fetchall():
            if kind == "r":
                residents[key] = pk
            elif kind == "i":
                pushed_ids.add(key)
            elif kind == "p":
                pushed_phones.add(key)
            else:
                reports[key] = pk  # ordered by id: the latest report wins
    matched = [(residents.get(p["id_hash"]) if p["id_hash"] else None,
                reports.get(p["id_hash"]) if p["id_hash"] else None,
                bool((p["id_hash"] and p["id_hash"] in pushed_ids)
                     or (p["phone_hash"] and p["phone_hash"] in pushed_phones))) for p in people]
    arrived_ids = sorted({m[1] for m in matched if m[1]})
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(registration, common)
            reg_id = cur.lastrowid
            rows = []
            for p, m in zip(people, matched, strict=True):
                rows += [reg_id, common["path"], *(p[c] for c in PERSON_COLUMNS), *m]
            cur.execute(_sqlite_travellers_sql(len(people)), rows)
            traveller_ids = sorted(r[0] for r in cur.fetchall())
            if arrived_ids:
                cur.execute(arrived, {**common, "reports": json.dumps(arrived_ids)})
            cur.execute(audit, {**common, "target_id": str(reg_id), "changes": json.dumps(
                {**changes, "self_reports": len(arrived_ids)}, ensure_ascii=False)})
    except IntegrityError:
        if Registration.objects.filter(checkpoint_id=common["checkpoint_id"], token=common["token"]).exists():
            return Written(None, [], [])
        raise
    return Written(reg_id, traveller_ids, matched)
