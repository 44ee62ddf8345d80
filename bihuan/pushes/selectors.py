"""The reads pages and the API share: a batch's progress and rejections, the day's list of a unit with its
counts (overdue by the loop engine's one definition), a person's verification and transfer history. Access is
decided before these are called (``access.py``); nothing here writes.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Case, Count, Exists, F, IntegerField, Min, OuterRef, Q, Value, When
from django.utils.translation import gettext as _

from bihuan.loops.models import overdue_q
from bihuan.register.access import scoped
from bihuan.register.models import Unit, subtree_q

from .models import (
    BatchState,
    Evidence,
    Outcome,
    PushBatch,
    PushedPerson,
    PushRow,
    RowResult,
    Transfer,
    Verification,
)
from .routing import push_day_bounds

RUNNING = (BatchState.PENDING, BatchState.RUNNING)
DONE_OUTCOMES = [o for o in Outcome.values if o != Outcome.VERIFYING]


# --- batches ---------------------------------------------------------------------------------------------

def batch_progress(batch: PushBatch) -> dict:
    """``percent`` of the rows done, whether the page should keep ``polling``, and whether the finished batch
    is ``reconciled`` (rows = imported + merged + rejected)."""
    if batch.rows_total:
        percent = min(100, round(100 * batch.rows_done / batch.rows_total))
    else:
        percent = 100 if batch.state == BatchState.DONE else 0
    reconciled = (batch.state == BatchState.DONE
                  and batch.rows_total == batch.imported + batch.merged + batch.rejected)
    return {"percent": percent, "polling": batch.state in RUNNING, "reconciled": reconciled}


def rejections(batch: PushBatch, *, limit: int | None = None) -> list[dict]:
    """Rejected rows by reason and column, most frequent first: ``reason``, ``field``, ``n``, ``first`` row."""
    qs = (PushRow.objects.filter(batch=batch, result=RowResult.REJECTED).values("reason", "field")
          .annotate(n=Count("id"), first=Min("row_number")).order_by("-n", "first"))
    return list(qs[:limit] if limit else qs)


def rejected_row_numbers(batch: PushBatch, reason: str, field: str, limit: int) -> list[int]:
    return list(PushRow.objects.filter(batch=batch, result=RowResult.REJECTED, reason=reason, field=field)
                .order_by("row_number").values_list("row_number", flat=True)[:limit])


def id_to_fix_rows(batch: PushBatch, *, limit: int | None = None, within: str | None = None) -> list[dict]:
    """Rows of the batch whose person is still "ID to fix", with the name and masked phone (not only a row
    number): ``row_number``, ``name``, ``phone``, ``problem``, ``person_id``. With ``within`` (a unit's path) only
    people in that part of the district: a row that joined another unit's record does not name it."""
    qs = PushRow.objects.filter(batch=batch, person__id_problem__gt="")
    if within is not None:
        qs = qs.filter(person__path__startswith=within)
    qs = (qs.order_by("row_number")
          .values("row_number", "person_id", name=F("person__name"), phone=F("person__phone_masked"),
                  problem=F("person__id_problem")))
    return list(qs[:limit] if limit else qs)


# --- the day's list --------------------------------------------------------------------------------------

def prefixed(q: Q, prefix: str) -> Q:
    """The same condition about a related model: every lookup of ``q`` behind ``prefix``
    (``prefixed(overdue_q(now), "verification__loop__")``)."""
    out = Q()
    out.connector, out.negated = q.connector, q.negated
    out.children = [prefixed(c, prefix) if isinstance(c, Q) else (prefix + c[0], c[1]) for c in q.children]
    return out


def overdue_people_q(at: dt.datetime) -> Q:
    """People whose verification loop is overdue at ``at`` (``loops.models.overdue_q``, the one definition)."""
    return prefixed(overdue_q(at), "verification__loop__")


def pending_transfer_of_person():
    return Transfer.objects.pending().filter(person=OuterRef("pk"))


def day_list(user, unit: Unit, day: dt.date, now: dt.datetime):
    """(people pushed on ``day`` under ``unit`` with ``transferring`` and a ``rank`` — overdue first, done last —,
    the overdue condition, the done condition)."""
    low, high = push_day_bounds(day)
    overdue = overdue_people_q(now)
    done = Q(verification__outcome__in=DONE_OUTCOMES)
    qs = (scoped(user, PushedPerson.objects).filter(subtree_q(unit.path), first_pushed_at__gte=low,
                                                    first_pushed_at__lt=high)
          .annotate(transferring=Exists(pending_transfer_of_person()),
                    rank=Case(When(overdue, then=Value(0)), When(done, then=Value(2)), default=Value(1),
                              output_field=IntegerField())))
    return qs, overdue, done


def day_counts(qs, overdue: Q, done: Q) -> dict:
    counts = qs.aggregate(total=Count("id"), overdue=Count("id", filter=overdue), done=Count("id", filter=done),
                          transferring=Count("id", filter=Exists(pending_transfer_of_person())))
    counts["open"] = counts["total"] - counts["done"]
    return counts


# --- a person --------------------------------------------------------------------------------------------

def verification_of(person: PushedPerson) -> Verification | None:
    return Verification.objects.select_related("loop", "verified_by").filter(person=person).first()


def transfer_history(person: PushedPerson) -> list[Transfer]:
    """The person's transfers in order, each with its loop (its status) and units: one query."""
    return list(Transfer.objects.filter(person=person)
                .select_related("from_unit", "to_unit", "answered_by", "loop").order_by("id"))


def evidence_of(person: PushedPerson) -> list[dict]:
    """Every piece of evidence of a person, oldest first: the rows of pushed files that named them (大数据) and
    what other sources found (卡口, 报备, 排查). Each: ``source``, ``what``, ``at``, ``reasons``. Two queries."""
    out = [{"source": source, "what": _("%(file)s 第 %(row)s 行") % {"file": name, "row": row}, "at": at, "reasons": reason, "kind": "file"}
           for source, name, row, at, reason in
           PushRow.objects.filter(person=person).exclude(result=RowResult.REJECTED)
           .values_list("batch__source", "batch__file_name", "row_number", "batch__uploaded_at", "reason")]
    out += [{"source": e.source, "what": e.summary, "at": e.found_at, "reasons": e.reasons, "kind": e.ref_type,
             "unit": e.unit.name if e.unit_id else ""}
            for e in Evidence.objects.filter(person=person).select_related("unit")]
    return sorted(out, key=lambda e: e["at"])


# --- what other apps show on a person's page -------------------------------------------------------------
# Apps built on pushes (control: the case a "new control" outcome led to) add their part of the person page
# here, so pushes never imports them: ``register_person_panel(fn)`` with ``fn(scope, person, verification)``
# returning template context.

_PERSON_PANELS: list = []


def register_person_panel(fn):
    if fn not in _PERSON_PANELS:
        _PERSON_PANELS.append(fn)
    return fn


def person_panels(scope, person: PushedPerson, ver: Verification | None) -> dict:
    context: dict = {}
    for panel in _PERSON_PANELS:
        context |= panel(scope, person, ver)
    return context
