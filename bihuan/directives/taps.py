"""A resident's one tap on their household's link: the hottest path of the system. When an order goes out,
every household of the district may tap within the same few minutes, so a tap is written in plain SQL,
composed once, and prepared on PostgreSQL (``core.prepared``): the ORM's compiling, and PostgreSQL's planning,
cost more than running the statements.

``tap(reach_id, confirm=True)`` marks the household reached (self-confirmed) if it is not yet and the
directive is still open, writes the audit row, and reads what the page shows:

- on PostgreSQL in **one statement**, one round trip and one implicit transaction: the change and the audit
  row are data-modifying ``WITH`` clauses, the read is the statement's ``SELECT``;
- on SQLite, which has no data-modifying ``WITH`` (and no round trips to save), the same three statements
  in one transaction.

The UPDATE's conditions are all on the row itself (the directive's state through a correlated EXISTS), so
concurrent taps of one household are safe: the second waits for the first, re-reads the row, finds it
reached and changes nothing (a ``WHERE id IN (SELECT …)`` form is not re-checked by PostgreSQL). Repeats
are harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from functools import cache

from django.db import connection, transaction
from django.utils import timezone

from bihuan.core import audit, prepared
from bihuan.register.models import Household

from .models import Directive, DirectiveStatus, Reach, ReachMethod, ReachStatus

ACTION = "directive.self_confirm"


@dataclass(frozen=True)
class Page:
    """What the resident's page shows."""

    directive: Directive  # only the shown fields are loaded
    address: str
    confirmed: bool  # reached, by whatever means
    just_confirmed: bool  # by this tap

    @property
    def is_open(self) -> bool:
        return self.directive.status == DirectiveStatus.ISSUED


@cache
def _statements(vendor: str) -> tuple[str, str, str, str]:
    """(update, audit insert, read, all three as one statement for PostgreSQL), with %(name)s parameters;
    composed once per database vendor."""
    q = connection.ops.quote_name
    reach, directive, household = (q(m._meta.db_table) for m in (Reach, Directive, Household))
    update = (f"UPDATE {reach} SET status = %(reached)s, method = %(self)s, reason = '', marked_by_id = NULL, "
              f"marked_at = %(now)s WHERE id = %(id)s AND status <> %(reached)s AND EXISTS (SELECT 1 FROM "
              f"{directive} d WHERE d.id = {reach}.directive_id AND d.status = %(open)s)")
    insert = audit.insert_sql()
    read = (f"SELECT r.status, d.id, d.title, d.body, d.urgency, d.is_exercise, d.status, d.issued_at, h.address "
            f"FROM {reach} r JOIN {directive} d ON d.id = r.directive_id JOIN {household} h ON h.id = r.household_id "
            f"WHERE r.id = %(id)s")
    # The outer SELECT sees the row as it was before this statement's UPDATE, hence the count of changed rows.
    in_one = (f"WITH changed AS ({update} RETURNING id), audited AS ({insert} FROM changed) "
              f"SELECT (SELECT count(*) FROM changed), page.* FROM ({read}) page")
    return update, insert, read, in_one


def tap(reach_id: int, *, confirm: bool) -> Page | None:
    """Confirm (if ``confirm``) and read the page; None if there is no such reach row."""
    update, insert, read, in_one = _statements(connection.vendor)
    params = {"id": reach_id, "reached": ReachStatus.REACHED, "self": ReachMethod.SELF, "open": DirectiveStatus.ISSUED,
              "now": connection.ops.adapt_datetimefield_value(timezone.now()), "action": ACTION,
              "target_type": "directives.reach", "target_id": str(reach_id)}
    if not confirm:
        return _page(prepared.fetchone(read, params), changed=0)
    if connection.vendor == "postgresql":
        row = prepared.fetchone(in_one, params)
        page = _page(row[1:], changed=row[0]) if row else None
        if page is not None and not page.confirmed and page.is_open:
            # Unchanged yet pending and open: a concurrent tap reached it after this statement's snapshot was
            # taken (the UPDATE waited for it and re-checked). Read again to show it confirmed.
            page = _page(prepared.fetchone(read, params), changed=0)
        return page
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(update, params)
        changed = cur.rowcount
        if changed:
            cur.execute(insert, params)
        cur.execute(read, params)
        return _page(cur.fetchone(), changed=changed)


def _page(row: tuple | None, *, changed: int) -> Page | None:
    """The page from the read's row (None: no such reach row); ``changed``: rows this tap changed."""
    if row is None:
        return None
    status, directive_id, title, body, urgency, is_exercise, directive_status, issued_at, address = row
    if timezone.is_naive(issued_at):  # SQLite hands back naive UTC
        issued_at = timezone.make_aware(issued_at, UTC)
    directive = Directive(id=directive_id, title=title, body=body, urgency=urgency, is_exercise=bool(is_exercise),
                          status=directive_status, issued_at=issued_at)
    return Page(directive=directive, address=address, confirmed=bool(changed) or status == ReachStatus.REACHED,
                just_confirmed=bool(changed))
